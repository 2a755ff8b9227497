"""Bad input is a 400/422 with a sentence naming the problem, never a 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from hexpulse.settings import Settings
from hexpulse.store.scratch import drop_database
from tests.support.api import CELLS9, bbox_of, private_settings, seed

pytestmark = pytest.mark.integration

BBOX = bbox_of(CELLS9, 0.01)
SQUARE = {"type": "Polygon", "coordinates": [[[113.3, 23.1], [113.33, 23.1], [113.33, 23.13], [113.3, 23.1]]]}
FROM, TO = "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"


@pytest.fixture(scope="module")
def api(migrated: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = private_settings(
        migrated, "apib", api_key_cache_s=0.0, rate_limit_per_min=10_000, api_max_polygon_vertices=50,
        api_max_range_h=24.0, api_max_bbox_km2=1000.0,
    )  # fmt: skip
    data = seed(settings)
    # raise_server_exceptions: any unhandled error fails the test instead of becoming a 500
    with TestClient(create_app(settings), raise_server_exceptions=True) as client:
        yield client, {"Authorization": f"Bearer {data['tokens']['admin']}"}
    drop_database(settings)


def ring(n: int) -> list[list[float]]:
    import math

    pts = [
        [113.3 + 0.01 * math.cos(2 * math.pi * i / n), 23.1 + 0.01 * math.sin(2 * math.pi * i / n)]
        for i in range(n)
    ]
    return [*pts, pts[0]]


GET_CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("/v1/density", {"bbox": "1,2,3"}, 400, "four numbers"),
    ("/v1/density", {"bbox": "a,b,c,d"}, 400, "four numbers"),
    ("/v1/density", {"bbox": "113.4,23.1,113.3,23.2"}, 400, "minLon < maxLon"),
    ("/v1/density", {"bbox": "113,95,114,96"}, 400, "minLat < maxLat"),
    ("/v1/density", {"bbox": "nan,23,114,24"}, 400, "finite"),
    ("/v1/density", {"bbox": "100,10,120,30"}, 400, "above the cap"),
    ("/v1/density", {"bbox": BBOX, "res": 5}, 400, "not released"),
    ("/v1/density", {"bbox": BBOX, "res": "nine"}, 422, "res"),
    ("/v1/density", {"bbox": BBOX, "at": "yesterday"}, 400, "ISO 8601"),
    ("/v1/density", {"bbox": BBOX, "at": "1999-01-01T00:00:00Z"}, 404, "no released window"),
    ("/v1/density", {"bbox": BBOX, "format": "csv"}, 422, "format"),
    ("/v1/density", {}, 422, "bbox"),
    ("/v1/traffic", {"bbox": BBOX, "res": 10}, 400, "not released"),
    ("/v1/density/series", {"cell": "zzzz"}, 400, "not a valid H3 cell"),
    ("/v1/density/series", {"cell": "8a41aa5a8d37fff"}, 400, "resolution 10"),
    ("/v1/density/series", {"cell": "8941aa5a8d3ffff", "from": TO, "to": FROM}, 400, "after"),
    ("/v1/density/series", {"cell": "8941aa5a8d3ffff", "from": FROM, "to": "2026-01-03T00:00:00Z"}, 400,
     "longer than the cap"),
    ("/v1/density/stream", {"bbox": "x"}, 400, "four numbers"),
    ("/v1/windows", {"limit": 0}, 422, "limit"),
]  # fmt: skip


@pytest.mark.parametrize(("path", "params", "status", "words"), GET_CASES)
def test_bad_query(api: tuple[TestClient, dict[str, str]], path: str, params: dict[str, Any], status: int,
                   words: str) -> None:  # fmt: skip
    client, headers = api
    resp = client.get(path, params=params, headers=headers)
    assert resp.status_code == status, resp.text
    assert words in resp.json()["detail"]


AREA_CASES: list[tuple[Any, int, str]] = [
    ({"geometry": {"type": "Point", "coordinates": [113.3, 23.1]}, "from": FROM, "to": TO}, 400, "Polygon"),
    ({"geometry": {"type": "Polygon", "coordinates": "nope"}, "from": FROM, "to": TO}, 400, "coordinates"),
    ({"geometry": {"type": "Polygon", "coordinates": [ring(80)]}, "from": FROM, "to": TO}, 400, "vertices"),
    ({"geometry": {"type": "Polygon", "coordinates": [[[113.3, 23.1], [113.33, 23.13], [113.33, 23.1],
                                                       [113.3, 23.13], [113.3, 23.1]]]},
      "from": FROM, "to": TO}, 400, "self-intersect"),
    ({"geometry": {"type": "Polygon", "coordinates": [[[100, 10], [120, 10], [120, 30], [100, 10]]]},
      "from": FROM, "to": TO}, 400, "above the cap"),
    ({"geometry": SQUARE, "from": TO, "to": FROM}, 400, "after"),
    ({"geometry": SQUARE, "from": FROM, "to": "2026-03-01T00:00:00Z"}, 400, "longer than the cap"),
    ({"geometry": SQUARE, "res": 3, "from": FROM, "to": TO}, 400, "not released"),
    ({"geometry": SQUARE, "from": "soon", "to": TO}, 422, "from"),
    ({"geometry": SQUARE}, 422, "from"),
    ({"geometry": {"type": "Polygon", "coordinates": [[[113.3, 23.1], [113.30001, 23.1], [113.3, 23.10001],
                                                       [113.3, 23.1]]]}, "res": 7, "from": FROM, "to": TO},
     400, "no H3 cell"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "status", "words"), AREA_CASES)
def test_bad_area(api: tuple[TestClient, dict[str, str]], body: Any, status: int, words: str) -> None:
    client, headers = api
    resp = client.post("/v1/density/area", json=body, headers=headers)
    assert resp.status_code == status, resp.text
    assert words in resp.json()["detail"]


def test_malformed_json(api: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = api
    resp = client.post(
        "/v1/density/area", content=b'{"geometry": ', headers={**headers, "Content-Type": "application/json"}
    )
    assert resp.status_code == 422 and "not valid JSON" in resp.json()["detail"]


def test_valid_area_in_a_quiet_period(api: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = api
    resp = client.post("/v1/density/area", json={"geometry": SQUARE, "from": FROM, "to": TO}, headers=headers)
    assert resp.status_code == 200 and resp.json()["series"] == []
