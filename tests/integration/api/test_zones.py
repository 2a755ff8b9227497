"""Registered zones through the API against the real ClickHouse: CRUD, validation, scopes, series,
and the budget plan of /v1/privacy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.zones import ZoneStore
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.pool import ClickHousePool
from hexpulse.zones import next_boundary
from privacy.release.budget import plan_from_settings, plan_rows
from tests.support.api import CENTER, app_client, bearer, naive, publish, seeded

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    yield from seeded(migrated, "zones")


@pytest.fixture(scope="module")
def api(data: dict[str, Any]) -> Iterator[TestClient]:
    yield from app_client(data)


def auth(data: dict[str, Any], name: str = "admin") -> dict[str, str]:
    return bearer(data, name)


def square(dlon: float, dlat: float, half: float = 0.003) -> dict[str, Any]:
    """A square of side 2·half degrees centred ``(dlon, dlat)`` degrees from CENTER."""
    lat, lon = CENTER[0] + dlat, CENTER[1] + dlon
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
            [lon - half, lat + half], [lon - half, lat - half]]  # fmt: skip
    return {"type": "Polygon", "coordinates": [ring]}


def test_create_read_change_end(api: TestClient, data: dict[str, Any]) -> None:
    before = datetime.now(UTC)
    body = {"id": "plaza", "set": "crowd", "name": "Plaza", "geometry": square(0, 0)}
    resp = api.post("/v1/zones", json=body, headers=auth(data))
    assert resp.status_code == 201, resp.text
    zone = resp.json()
    assert zone["id"] == "plaza" and zone["version"] == 1 and zone["set"] == "crowd" and zone["cells"] >= 2
    start = datetime.fromisoformat(zone["valid_from"])
    assert start == next_boundary(before, 60) or start == next_boundary(datetime.now(UTC), 60)
    assert start > before and zone["valid_to"] is None  # from the next window, never a started one

    listed = api.get("/v1/zones", headers=auth(data, "density")).json()["zones"]
    assert [z["id"] for z in listed] == ["plaza"]
    none = api.get("/v1/zones", params={"set": "district"}, headers=auth(data, "density")).json()
    assert none == {"zones": []}
    got = api.get("/v1/zones/plaza", headers=auth(data, "density")).json()
    assert got["geometry"] == square(0, 0) and len(got["versions"]) == 1

    # Another zone of the set sharing a base cell: 409 naming the zone it overlaps.
    clash = api.post("/v1/zones", json={"set": "crowd", "name": "Clash", "geometry": square(0.002, 0)},
                     headers=auth(data))  # fmt: skip
    assert clash.status_code == 409 and "plaza" in clash.json()["detail"], clash.text
    # The same polygon in another set is fine: sets are measured separately.
    other = api.post("/v1/zones", json={"id": "tianhe", "set": "district", "name": "Tianhe",
                                        "geometry": square(0, 0, 0.01)}, headers=auth(data))  # fmt: skip
    assert other.status_code == 201, other.text
    taken = {"id": "plaza", "set": "crowd", "name": "x", "geometry": square(0.05, 0)}
    assert api.post("/v1/zones", json=taken, headers=auth(data)).status_code == 409

    # PUT: version 2 from the next boundary; version 1 ends there.
    put = api.put("/v1/zones/plaza", json={"set": "crowd", "name": "Plaza (larger)",
                                           "geometry": square(0, 0, 0.004)}, headers=auth(data))  # fmt: skip
    assert put.status_code == 200, put.text
    assert put.json()["version"] == 2
    versions = api.get("/v1/zones/plaza", headers=auth(data, "density")).json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0]["valid_to"] == versions[1]["valid_from"]

    # DELETE ends the zone at the next boundary; a second DELETE finds nothing to end.
    ended = api.delete("/v1/zones/plaza", headers=auth(data))
    assert ended.status_code == 200 and ended.json()["valid_to"] is not None, ended.text
    assert api.delete("/v1/zones/plaza", headers=auth(data)).status_code == 404
    assert api.delete("/v1/zones/nope", headers=auth(data)).status_code == 404
    assert [z["id"] for z in api.get("/v1/zones", headers=auth(data)).json()["zones"]] == ["tianhe"]


def test_only_admin_changes_zones(api: TestClient, data: dict[str, Any]) -> None:
    body = {"set": "crowd", "name": "Nope", "geometry": square(0.03, 0.03)}
    assert api.post("/v1/zones", json=body, headers=auth(data, "density")).status_code == 403
    assert api.post("/v1/zones", json=body).status_code == 401
    assert api.delete("/v1/zones/tianhe", headers=auth(data, "density")).status_code == 403


@pytest.mark.parametrize(
    ("geometry", "zone_set", "message"),
    [
        ({"type": "Polygon", "coordinates": [[[113.32, 23.13], [113.33, 23.14], [113.33, 23.13],
                                              [113.32, 23.14], [113.32, 23.13]]]}, "crowd", "self-intersect"),
        (square(0.04, 0.04, 0.5), "crowd", "cap of 100"),
        (square(0.04, 0.04, 0.0002), "crowd", "no base cell"),
        (square(40.0, 0.0), "crowd", "no base cell"),  # outside the service area
        (square(0.04, 0.04), "stadiums", "unknown zone set"),
        ({"type": "Point", "coordinates": [113.32, 23.13]}, "crowd", "Polygon"),
    ],
)  # fmt: skip
def test_bad_zones_are_refused_with_a_reason(
    api: TestClient, data: dict[str, Any], geometry: dict[str, Any], zone_set: str, message: str
) -> None:
    body = {"set": zone_set, "name": "Bad", "geometry": geometry}
    resp = api.post("/v1/zones", json=body, headers=auth(data))
    assert resp.status_code == 400, resp.text
    assert message in resp.json()["detail"]


def test_too_many_vertices(data: dict[str, Any]) -> None:
    small = data["settings"].model_copy(update={"api_max_polygon_vertices": 4})
    with TestClient(create_app(small)) as client:
        resp = client.post("/v1/zones", json={"set": "crowd", "name": "Five", "geometry": square(0.05, 0.05)},
                           headers=auth(data))  # fmt: skip
    assert resp.status_code == 400 and "vertices" in resp.json()["detail"], resp.text


def test_series_serves_published_windows_only(api: TestClient, data: dict[str, Any]) -> None:
    client = connect(data["settings"])
    w0 = data["windows"][0]
    hidden = data["unreleased"]
    rows = [(naive(w), "district", "tianhe", 1, 90, float(v), 53.7, max(0.0, v - 105.2), v + 105.2, 20, 7)
            for w, v in ((w0, 90.4), (w0 - timedelta(minutes=1), -12.0), (hidden, 5.0))]  # fmt: skip
    client.execute(
        "INSERT INTO release_zones (window_start, zone_set, zone_id, version, count, count_est, count_sigma,"
        " count_lo, count_hi, cells, plan) VALUES",
        rows,
    )
    doc = api.get("/v1/zones/tianhe/series", params={"from": (w0 - timedelta(minutes=5)).isoformat(),
                                                    "to": (hidden + timedelta(minutes=5)).isoformat()},
                  headers=auth(data, "density")).json()  # fmt: skip
    assert doc["id"] == "tianhe" and doc["set"] == "district"
    points = doc["series"]
    assert [p["estimate"] for p in points] == [-12.0, 90.4]  # the unpublished window is not served
    assert points[1]["sigma"] == 53.7 and points[1]["version"] == 1 and points[1]["count"] == 90
    assert api.get("/v1/zones/nope/series", headers=auth(data, "density")).status_code == 404
    bad = api.get("/v1/zones/tianhe/series", params={"from": "yesterday"}, headers=auth(data, "density"))
    assert bad.status_code == 400
    publish(client, hidden)  # now it is public
    again = api.get("/v1/zones/tianhe/series", params={"from": (w0 - timedelta(minutes=5)).isoformat(),
                                                      "to": (hidden + timedelta(minutes=5)).isoformat()},
                    headers=auth(data, "density")).json()  # fmt: skip
    assert len(again["series"]) == 3
    client.disconnect()


def test_area_of_a_registered_zone_answers_from_its_measurement(
    api: TestClient, data: dict[str, Any]
) -> None:
    """POST /v1/density/area with a zone's polygon: the windows the zone was measured in come from
    its own draw (release_zones rows of test_series_serves_published_windows_only), the others
    from the cell sum; any other polygon stays a cell sum."""
    zone = api.get("/v1/zones/tianhe", headers=auth(data, "density")).json()
    w0 = data["windows"][0]
    until = datetime.fromisoformat(zone["valid_from"]) + timedelta(minutes=1)
    body = {"geometry": zone["geometry"], "res": 9, "from": (w0 - timedelta(minutes=5)).isoformat(),
            "to": until.isoformat()}  # fmt: skip
    resp = api.post("/v1/density/area", json=body, headers=auth(data, "density"))
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["source"] == "zone+cells"
    assert doc["zone"]["id"] == "tianhe" and doc["zone"]["set"] == "district"
    by_window = {p["window_start"]: p for p in doc["series"]}
    measured = by_window[w0.strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert measured["source"] == "zone" and measured["estimate"] == 90.4 and measured["sigma"] == 53.7
    assert measured["sigma_method"] == "zone measurement"
    older = by_window[(w0 - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")]
    assert older["source"] == "cells" and older["sigma_method"] != "zone measurement"

    smaller = api.post("/v1/density/area", json=body | {"geometry": square(0, 0, 0.006)},
                       headers=auth(data, "density")).json()  # fmt: skip
    assert smaller["source"] == "cells" and smaller["zone"] is None
    assert {p["source"] for p in smaller["series"]} == {"cells"}


def test_zone_matching_exact_cells(data: dict[str, Any]) -> None:
    """The hook for the area endpoint: a polygon whose base cells are exactly a zone's."""
    store = ZoneStore(ClickHousePool(data["settings"], size=1), data["settings"])
    zone = next(z for z in store.current() if z.zone_id == "tianhe")
    later = zone.valid_from + timedelta(seconds=1)
    assert store.matching(frozenset(zone.cells), later) == zone
    assert store.matching(frozenset(zone.cells) | {0x89411C0000FFFFF}, later) == zone  # outside the area
    assert store.matching(frozenset(zone.cells[1:]), later) is None
    assert store.matching(frozenset(zone.cells), zone.valid_from - timedelta(seconds=1)) is None


def test_privacy_publishes_the_budget_plan(api: TestClient, data: dict[str, Any]) -> None:
    priv = api.get("/v1/privacy", headers=auth(data, "density")).json()
    expected = plan_rows(plan_from_settings(data["settings"]))
    products = [r["product"] for r in priv["budget_plan"]]
    assert products == ["cells", "traffic", "traffic.corridor", "zones.crowd", "zones.district",
                        "tourism.visitors", "tourism.dwell"]  # fmt: skip
    assert [r["per"] for r in priv["budget_plan"]] == ["window"] * 5 + ["day"] * 2
    for got, want in zip(priv["budget_plan"], expected, strict=True):
        assert got == pytest.approx(want)
    assert priv["unallocated_share"] == pytest.approx(0.0, abs=1e-9)
