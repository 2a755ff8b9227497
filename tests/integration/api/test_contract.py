"""The API contract against real ClickHouse: fields, released-only reads, caching, auth, limits."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import h3
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import Polygon, shape

from api.app import create_app
from hexpulse.settings import Settings
from privacy.release.accounting import eps_from_rho, rdp_epsilon
from tests.support.api import (
    CELLS,
    CELLS9,
    N_WINDOWS,
    app_client,
    bbox_of,
    bearer,
    seeded,
    speed_at,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    yield from seeded(migrated, "apic")


@pytest.fixture(scope="module")
def api(data: dict[str, Any]) -> Iterator[TestClient]:
    yield from app_client(data)


def auth(data: dict[str, Any], name: str = "density") -> dict[str, str]:
    return bearer(data, name)


WIDE = bbox_of(CELLS9, 0.02)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_density_geojson_contract(api: TestClient, data: dict[str, Any]) -> None:
    resp = api.get("/v1/density", params={"bbox": WIDE, "res": 9}, headers=auth(data))
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("application/geo+json")
    doc = resp.json()
    latest = data["windows"][0]
    assert doc["type"] == "FeatureCollection"
    assert doc["window"]["window_start"] == iso(latest)
    assert doc["window"]["window_end"] == iso(latest + timedelta(seconds=60))
    assert doc["resolution"] == 9
    assert {"guarantee", "mechanism", "rho_window", "note"} <= set(doc["privacy"])
    by_cell = {f["properties"]["cell"]: f for f in doc["features"]}
    assert set(by_cell) == {h3.int_to_str(c) for c in CELLS9}  # the unreleased window's 999s are absent
    for i, cell in enumerate(CELLS9):
        feature = by_cell[h3.int_to_str(cell)]
        props = feature["properties"]
        assert props["count"] == 100 + i
        assert props["res"] == 9
        assert props["window_start"] == iso(latest)
        area = h3.cell_area(props["cell"], "km^2")
        assert props["density_per_km2"] == pytest.approx(props["count"] / area, rel=1e-3)
        assert props["ci95"] == pytest.approx(
            [max(0, props["count"] - 1.96 * (10 + i)), props["count"] + 1.96 * (10 + i)]
        )
        assert props["moving"] == 10 + i
        assert props["mean_speed_kmh"] == (None if i % 2 else 30.0)
        ring = feature["geometry"]["coordinates"][0]
        assert feature["geometry"]["type"] == "Polygon" and ring[0] == ring[-1]
        poly = Polygon(ring)
        assert poly.exterior.is_ccw  # RFC 7946 right-hand rule
        lon, lat = poly.centroid.x, poly.centroid.y  # lon/lat order: the centroid maps back to the cell
        assert h3.latlng_to_cell(lat, lon, 9) == props["cell"]


def test_rows_format_matches_geojson(api: TestClient, data: dict[str, Any]) -> None:
    geo = api.get("/v1/density", params={"bbox": WIDE, "res": 8}, headers=auth(data)).json()
    rows = api.get(
        "/v1/density", params={"bbox": WIDE, "res": 8, "format": "rows"}, headers=auth(data)
    ).json()
    cols = rows["columns"]
    assert {r[cols.index("cell")]: r[cols.index("count")] for r in rows["rows"]} == {
        f["properties"]["cell"]: f["properties"]["count"] for f in geo["features"]
    }
    assert rows["window"] == geo["window"]


def test_only_released_windows_are_served(api: TestClient, data: dict[str, Any]) -> None:
    unreleased = data["unreleased"] + timedelta(seconds=5)
    resp = api.get("/v1/density", params={"bbox": WIDE, "at": iso(unreleased)}, headers=auth(data))
    assert resp.status_code == 404 and "no released window" in resp.json()["detail"]
    past = data["windows"][5] + timedelta(seconds=30)
    doc = api.get("/v1/density", params={"bbox": WIDE, "at": iso(past)}, headers=auth(data)).json()
    assert doc["window"]["window_start"] == iso(data["windows"][5])
    assert doc["features"][0]["properties"]["count"] == 100 + 5 + CELLS9.index(
        h3.str_to_int(doc["features"][0]["id"])
    )


def test_bbox_filters_cells(api: TestClient, data: dict[str, Any]) -> None:
    center = CELLS9[len(CELLS9) // 2]
    lat, lon = h3.cell_to_latlng(h3.int_to_str(center))
    tiny = f"{lon - 1e-5},{lat - 1e-5},{lon + 1e-5},{lat + 1e-5}"
    doc = api.get("/v1/density", params={"bbox": tiny}, headers=auth(data)).json()
    assert [f["id"] for f in doc["features"]] == [h3.int_to_str(center)]
    far = "0.0,0.0,0.01,0.01"
    assert api.get("/v1/density", params={"bbox": far}, headers=auth(data)).json()["features"] == []


def test_etag_and_cache(api: TestClient, data: dict[str, Any]) -> None:
    reader = api.app.state.api.reader  # type: ignore[attr-defined]
    at = iso(data["windows"][7])
    params = {"bbox": WIDE, "res": 7, "at": at}
    before = reader.cell_queries
    first = api.get("/v1/density", params=params, headers=auth(data))
    second = api.get("/v1/density", params=params, headers=auth(data))
    assert first.headers["x-cache"] == "miss" and second.headers["x-cache"] == "hit"
    assert reader.cell_queries == before + 1
    assert first.content == second.content and "immutable" in first.headers["cache-control"]
    assert first.headers["content-encoding"] == "gzip"  # precompressed once, served to gzip clients
    etag = first.headers["etag"]
    again = api.get("/v1/density", params=params, headers={**auth(data), "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""


def test_area_sum_and_sigma(api: TestClient, data: dict[str, Any]) -> None:
    # three res-9 cells that fill no res-8 cell, so the compacted cover is these three cells
    geometry = h3.cells_to_geo([h3.int_to_str(c) for c in CELLS9[:3]])
    start, end = data["windows"][3], data["windows"][0] + timedelta(seconds=60)
    body = {"geometry": geometry, "res": 9, "from": iso(start), "to": iso(end)}
    resp = api.post("/v1/density/area", json=body, headers=auth(data))
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    covered = {h3.str_to_int(c) for c in h3.geo_to_cells(geometry, 9)} & set(CELLS9)  # type: ignore[arg-type]
    assert doc["cells_released"] == len(covered) > 0
    assert [p["window_start"] for p in doc["series"]] == [iso(w) for w in reversed(data["windows"][:4])]
    for point in doc["series"]:
        k = data["windows"].index(datetime.fromisoformat(point["window_start"]))
        idx = [CELLS9.index(c) for c in covered]
        # rows written without a recorded plan (as before plans were recorded): the estimate reads
        # the released count and σ falls back to Σσ², saying so (tests/integration/api/test_sums.py
        # covers windows released with a plan)
        assert point["estimate"] == sum(100 + i + k for i in idx)
        assert point["sigma"] == pytest.approx(math.sqrt(sum((10.0 + i) ** 2 for i in idx)), abs=1e-3)
        assert point["sigma_method"] == "independent cells (no recorded plan)"
        assert point["ci95"][1] == pytest.approx(point["estimate"] + 1.96 * point["sigma"], abs=1e-2)


def test_cell_series(api: TestClient, data: dict[str, Any]) -> None:
    cell = h3.int_to_str(CELLS9[4])
    start, end = data["windows"][-1], data["windows"][0] + timedelta(seconds=60)
    doc = api.get(
        "/v1/density/series", params={"cell": cell, "from": iso(start), "to": iso(end)}, headers=auth(data)
    ).json()
    assert [p["estimate"] for p in doc["series"]] == [100 + 4 + k for k in reversed(range(N_WINDOWS))]
    assert all(p["sigma"] == pytest.approx(14.0) for p in doc["series"])


def test_traffic_congestion(api: TestClient, data: dict[str, Any]) -> None:
    resp = api.get("/v1/traffic", params={"bbox": WIDE, "res": 8}, headers=auth(data, "traffic"))
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    speeds = sorted(speed_at(k) for k in range(N_WINDOWS))
    free_flow = speeds[int(0.85 * len(speeds))]  # ClickHouse quantileExact: element at floor(q·n)
    assert {c["cell"] for c in doc["cells"]} == {h3.int_to_str(c) for c in CELLS[8]}
    for cell in doc["cells"]:
        assert cell["mean_speed_kmh"] == 20.0
        assert cell["free_flow_kmh"] == pytest.approx(free_flow)
        assert cell["free_flow_windows"] == N_WINDOWS
        assert cell["congestion_index"] == pytest.approx(free_flow / 20.0, rel=1e-3)
        assert free_flow / 20.0 == 2.5 and cell["level"] == "heavy"  # 2.0 ≤ index < 3.0
    assert set(doc["levels"]) == {"free", "light", "moderate", "heavy", "severe"}


def test_windows_and_privacy(api: TestClient, data: dict[str, Any]) -> None:
    doc = api.get("/v1/windows", params={"limit": 5}, headers=auth(data)).json()
    assert doc["latest"]["window_start"] == iso(data["windows"][0])
    assert [w["window_start"] for w in doc["recent"]] == [iso(w) for w in data["windows"][:5]]
    assert doc["now_lag_s"] > 0
    priv = api.get("/v1/privacy", headers=auth(data)).json()
    assert priv["day"] == date.today().isoformat() or priv["day"] == datetime.now(UTC).date().isoformat()
    assert priv["rho_spent_today"] == pytest.approx(6 * 0.002)
    assert priv["noise_draws_today"] == 6
    assert priv["epsilon_spent_today"] == pytest.approx(eps_from_rho(0.012, data["settings"].report_delta))
    # The published ε: dp-accounting's RDP figure next to the zCDP conversion, for a day and a week.
    rho, delta = data["settings"].budget_rho_per_day, data["settings"].report_delta
    for key, days in (("epsilon_per_day", 1), ("epsilon_per_week", 7)):
        eps = priv[key]
        assert eps["rho"] == pytest.approx(days * rho)
        assert eps["zcdp_conversion"] == pytest.approx(eps_from_rho(days * rho, delta))
        assert eps["rdp_accountant"] == pytest.approx(rdp_epsilon(days * rho, delta))
        assert eps["rdp_accountant"] < eps["zcdp_conversion"]
    assert priv["epsilon_per_day"]["zcdp_conversion"] == priv["epsilon_budget_per_day"]


def test_probes(api: TestClient, data: dict[str, Any]) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    assert ready.status_code == 200, ready.text
    stale = data["settings"].model_copy(update={"api_fresh_release_s": 1.0})
    with TestClient(create_app(stale)) as other:
        resp = other.get("/readyz")
        assert resp.status_code == 503 and "old" in resp.json()["detail"]
    assert api.get("/").status_code == 200


def test_geometry_is_valid_geojson(api: TestClient, data: dict[str, Any]) -> None:
    doc = api.get("/v1/density", params={"bbox": WIDE, "res": 7}, headers=auth(data)).json()
    for feature in doc["features"]:
        assert shape(feature["geometry"]).is_valid
