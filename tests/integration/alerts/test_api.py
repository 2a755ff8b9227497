"""/v1/alerts against the real ClickHouse: subscriptions validated and owner-scoped, a polygon
registers a zone, history and dead letters readable by their owner only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.keys import KeyStore
from hexpulse.settings import Settings
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import drop_database
from tests.support.api import CENTER, api_settings, app_client, bearer, seed

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    settings = api_settings(migrated, "alertsapi")
    doc = seed(settings)
    store = KeyStore(ClickHousePool(settings, size=1), cache_s=0.0)
    doc["tokens"].update({n: store.create(n, ["alerts:write"])[1] for n in ("police", "venue")})
    yield doc
    drop_database(settings)


@pytest.fixture(scope="module")
def api(data: dict[str, Any]) -> Iterator[TestClient]:
    yield from app_client(data)


def auth(data: dict[str, Any], name: str) -> dict[str, str]:
    return bearer(data, name)


def square(half: float = 0.003, north: float = 0.0) -> dict[str, Any]:
    lat, lon = CENTER[0] + north, CENTER[1]
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
            [lon - half, lat + half], [lon - half, lat - half]]  # fmt: skip
    return {"type": "Polygon", "coordinates": [ring]}


def test_a_polygon_subscription_registers_a_zone_and_is_owner_scoped(
    api: TestClient, data: dict[str, Any]
) -> None:
    body = {"name": "Stadium gates", "geometry": square(), "metric": "crowd_density", "expansion": 2.5,
            "min_windows": 3, "webhook": {"url": "https://hooks.example.org/alerts"}}  # fmt: skip
    resp = api.post("/v1/alerts/subscriptions", json=body, headers=auth(data, "police"))
    assert resp.status_code == 201, resp.text
    sub = resp.json()
    assert sub["secret"].startswith("whsec_") and sub["unit"].startswith("persons")
    assert [lv["name"] for lv in sub["levels"]] == ["caution", "alert", "serious"]
    assert sub["levels"][0]["clear"] == pytest.approx(1.6)
    zone = api.get(f"/v1/zones/{sub['zone_id']}", headers=auth(data, "density"))
    assert zone.status_code == 200 and zone.json()["set"] == "crowd"
    listed = api.get("/v1/zones", headers=auth(data, "density"))
    assert listed.status_code == 200 and "Stadium gates" not in listed.text  # zones are public, names are not

    mine = api.get("/v1/alerts/subscriptions", headers=auth(data, "police")).json()["subscriptions"]
    assert [s["id"] for s in mine] == [sub["id"]] and mine[0]["secret"] is None
    assert api.get("/v1/alerts/subscriptions", headers=auth(data, "venue")).json() == {"subscriptions": []}
    assert api.get(f"/v1/alerts/subscriptions/{sub['id']}", headers=auth(data, "venue")).status_code == 404
    assert api.delete(f"/v1/alerts/subscriptions/{sub['id']}", headers=auth(data, "venue")).status_code == 404
    path = f"/v1/alerts/subscriptions/{sub['id']}"
    assert api.delete(path, headers=auth(data, "police")).status_code == 204
    assert api.get(path, headers=auth(data, "police")).status_code == 404


SPEED_UP = [{"name": "a", "threshold": 15}, {"name": "b", "threshold": 30}]  # ascending: wrong for a speed


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"levels": [{"name": "a", "threshold": 5}, {"name": "b", "threshold": 3}]}, "ascending"),
        ({"webhook": {"url": "ftp://x.example.org/"}}, "https"),
        ({"webhook": {"url": "https://x.example.org/", "secrets": ["plain"]}}, "whsec_"),
        ({"metric": "crowd_count"}, "needs its levels"),
        ({"geometry": None}, "exactly one"),
        ({"zone_id": "nope", "geometry": None}, "no zone"),
        ({"metric": "traffic_speed", "levels": SPEED_UP}, "descending"),
        ({"metric": "traffic_speed", "levels": [{"name": "slow", "threshold": 30, "clear": 25}]},
         "clear must be above"),
        ({"metric": "traffic_speed", "expansion": 2.5}, "crowd metrics only"),
    ],
)
def test_bad_subscriptions_get_a_400_or_404_saying_why(
    api: TestClient, data: dict[str, Any], change: dict[str, Any], words: str
) -> None:
    # The same polygon as the first test's zone: refused subscriptions must fail before registering
    # theirs (an overlap would be a 409).
    body = {"name": "x", "geometry": square(), **change}
    resp = api.post("/v1/alerts/subscriptions", json=body, headers=auth(data, "venue"))
    assert resp.status_code in (400, 404, 422) and words in resp.text, resp.text


def test_a_traffic_speed_subscription_gets_descending_defaults_with_clear_values_above(
    api: TestClient, data: dict[str, Any]
) -> None:
    body = {"name": "Ring road", "geometry": square(north=0.02), "metric": "traffic_speed"}
    resp = api.post("/v1/alerts/subscriptions", json=body, headers=auth(data, "police"))
    assert resp.status_code == 201, resp.text
    sub = resp.json()
    assert sub["unit"].startswith("km/h") and sub["metric"] == "traffic_speed"
    levels = [(lv["name"], lv["threshold"], lv["clear"]) for lv in sub["levels"]]
    assert levels == [("slow", 30.0, pytest.approx(36.0)), ("jam", 15.0, pytest.approx(18.0))]
    got = api.get(f"/v1/alerts/subscriptions/{sub['id']}", headers=auth(data, "police")).json()
    assert got["levels"] == sub["levels"]  # stored and read back as a below-rule
    path = f"/v1/alerts/subscriptions/{sub['id']}"
    assert api.delete(path, headers=auth(data, "police")).status_code == 204


def test_scope_and_reads(api: TestClient, data: dict[str, Any]) -> None:
    assert api.get("/v1/alerts/subscriptions", headers=auth(data, "density")).status_code == 403
    assert api.get("/v1/alerts/events", headers=auth(data, "venue")).json() == {"events": []}
    assert api.get("/v1/alerts/deliveries", headers=auth(data, "venue")).json() == {"deliveries": []}
