"""``/v1/tourism/areas`` against the real ClickHouse: an admin registers an area from a polygon
(a new zone) or from a registered zone, changes its capacity and time zone, deletes it; a
``tourism:read`` key reads; bad input (polygons too large, invalid or with too many vertices,
unknown zones, time zones, capacities, area ids) is a 4xx with the reason."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from hexpulse.settings import Settings
from hexpulse.store.scratch import drop_database
from tests.support.api import CENTER, api_settings, app_client, bearer, seed

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    settings = api_settings(migrated, "tour" + uuid.uuid4().hex[:4])
    seeded = seed(settings)
    seeded["tokens"]["tourism"] = seeded["store"].create("bureau", ["tourism:read"])[1]
    yield seeded
    drop_database(settings)


@pytest.fixture(scope="module")
def api(data: dict[str, Any]) -> Iterator[TestClient]:
    yield from app_client(data)


def auth(data: dict[str, Any], name: str) -> dict[str, str]:
    return bearer(data, name)


def square(dlon: float, dlat: float, half: float = 0.003) -> dict[str, Any]:
    lat, lon = CENTER[0] + dlat, CENTER[1] + dlon
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
            [lon - half, lat + half], [lon - half, lat - half]]  # fmt: skip
    return {"type": "Polygon", "coordinates": [ring]}


def test_register_read_change_delete(api: TestClient, data: dict[str, Any]) -> None:
    body = {"id": "baiyun", "name": "Baiyun Mountain", "geometry": square(0, 0), "capacity": 5000}
    resp = api.post("/v1/tourism/areas", json=body, headers=auth(data, "admin"))
    assert resp.status_code == 201, resp.text
    area = resp.json()
    assert area["id"] == "baiyun" and area["timezone"] == "Asia/Shanghai" and area["set"] == "crowd"
    assert area["capacity"] == 5000 and area["capacity_warning_at"] == 4000 and area["cells"] >= 2
    zone = api.get(f"/v1/zones/{area['zone']}", headers=auth(data, "admin")).json()
    assert zone["geometry"] == square(0, 0)  # the area's polygon is a registered zone
    # A second area on an existing zone, no capacity stated.
    z = api.post("/v1/zones", json={"set": "district", "name": "Old town", "geometry": square(0.02, 0)},
                 headers=auth(data, "admin")).json()  # fmt: skip
    resp = api.post("/v1/tourism/areas", json={"id": "old-town", "name": "Old town", "zone": z["id"],
                                               "timezone": "UTC"}, headers=auth(data, "admin"))  # fmt: skip
    assert resp.status_code == 201, resp.text
    assert resp.json()["capacity"] is None and resp.json()["capacity_warning_at"] is None
    listed = api.get("/v1/tourism/areas", headers=auth(data, "tourism"))
    assert listed.status_code == 200 and [a["id"] for a in listed.json()["areas"]] == ["baiyun", "old-town"]
    change = {"name": "Baiyun", "capacity": 6000, "timezone": "Asia/Urumqi"}
    put = api.put("/v1/tourism/areas/baiyun", json=change, headers=auth(data, "admin"))
    assert put.status_code == 200 and put.json()["capacity_warning_at"] == 4800
    got = api.get("/v1/tourism/areas/baiyun", headers=auth(data, "tourism")).json()
    assert got["name"] == "Baiyun" and got["timezone"] == "Asia/Urumqi" and got["zone"] == area["zone"]
    assert api.delete("/v1/tourism/areas/old-town", headers=auth(data, "admin")).status_code == 200
    gone = api.get("/v1/tourism/areas/old-town", headers=auth(data, "tourism"))
    assert gone.status_code == 404 and "no tourism area" in gone.json()["detail"]
    again = api.post("/v1/tourism/areas", json={"id": "old-town", "name": "x", "zone": z["id"]},
                     headers=auth(data, "admin"))  # fmt: skip
    assert again.status_code == 409 and "existed" in again.json()["detail"]


def test_scopes(api: TestClient, data: dict[str, Any]) -> None:
    assert api.get("/v1/tourism/areas").status_code == 401
    assert api.get("/v1/tourism/areas", headers=auth(data, "density")).status_code == 403
    body = {"name": "Nope", "geometry": square(0.05, 0.05)}
    assert api.post("/v1/tourism/areas", json=body, headers=auth(data, "tourism")).status_code == 403


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"name": "Huge", "geometry": square(0.04, 0.04, 0.5)}, 400, "cap of 100"),
        ({"name": "Bow", "geometry": {"type": "Polygon", "coordinates": [[[113.31, 23.12], [113.33, 23.14],
          [113.33, 23.12], [113.31, 23.14], [113.31, 23.12]]]}}, 400, "self-intersect"),
        ({"name": "Point", "geometry": {"type": "Point", "coordinates": [113.32, 23.13]}}, 400, "Polygon"),
        ({"name": "Both", "zone": "x", "geometry": square(0.04, 0.04)}, 400, "either 'zone'"),
        ({"name": "Neither"}, 400, "either 'zone'"),
        ({"name": "Ghost", "zone": "no-such-zone"}, 404, "no zone"),
        ({"name": "Tz", "geometry": square(0.04, 0.04), "timezone": "Mars/Olympus"}, 400, "time zone"),
        ({"name": "Cap", "geometry": square(0.04, 0.04), "capacity": 0}, 400, "capacity"),
        ({"name": "Id", "id": "Bad Id!", "geometry": square(0.04, 0.04)}, 400, "area id"),
        ({"name": " ", "geometry": square(0.04, 0.04)}, 400, "name"),
    ],
)  # fmt: skip
def test_bad_areas_are_refused_with_a_reason(
    api: TestClient, data: dict[str, Any], body: dict[str, Any], status: int, message: str
) -> None:
    resp = api.post("/v1/tourism/areas", json=body, headers=auth(data, "admin"))
    assert resp.status_code == status, resp.text
    assert message in resp.json()["detail"], resp.text


def test_too_many_vertices(data: dict[str, Any]) -> None:
    small = data["settings"].model_copy(update={"api_max_polygon_vertices": 4})
    with TestClient(create_app(small)) as client:
        resp = client.post("/v1/tourism/areas", json={"name": "Five", "geometry": square(0.05, 0.05)},
                           headers=auth(data, "admin"))  # fmt: skip
    assert resp.status_code == 400 and "vertices" in resp.json()["detail"], resp.text


def test_unknown_area_ids(api: TestClient, data: dict[str, Any]) -> None:
    for method in ("get", "delete"):
        resp = getattr(api, method)("/v1/tourism/areas/nowhere", headers=auth(data, "admin"))
        assert resp.status_code == 404 and "nowhere" in resp.json()["detail"]
    resp = api.put("/v1/tourism/areas/nowhere", json={"name": "x"}, headers=auth(data, "admin"))
    assert resp.status_code == 404
