"""Sums over released estimates against real ClickHouse: windows released the releaser's way (real
plan, its JSON on an intent, every cell of the service area), read through the API.

Area, cell series and city totals must add the unbiased estimates, report the σ the plan's
covariance gives, and cover polygons with the coarsest released cells that fit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.keys import KeyStore
from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import drop_database
from privacy.release.budget import plan_from_settings, speed_bound_kmh
from privacy.release.consistency import Hierarchy, build_hierarchy
from privacy.release.covariance import level_variances, selection_variance
from privacy.release.plans import PlanRecord, area_digest
from privacy.release.seeds import seeded_keys
from privacy.release.values import CELL_COLUMNS, cell_rows, release_values
from tests.support.api import CENTER, api_settings, app_client, floor_window, naive, publish

pytestmark = pytest.mark.integration
N = 3


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    settings = api_settings(migrated, "apisum")
    plan = plan_from_settings(settings)
    tree = build_hierarchy(load_service_area(settings), plan.resolutions)
    record = PlanRecord(plan, speed_bound_kmh(settings.speed_clamp_mps), area_digest(tree))
    client = connect(settings)
    latest = floor_window(datetime.now(UTC)) - timedelta(seconds=120)
    windows = [latest - timedelta(seconds=60 * k) for k in range(N)]
    rng = np.random.default_rng(5)  # test data only
    truth = (rng.integers(0, 300, tree.sizes[0]) * (rng.random(tree.sizes[0]) < 0.1)).astype(np.int64)
    for k, w in enumerate(windows):
        exact = {"count": truth, "moving": truth // 2, "speed": truth // 2 * 30}
        values = release_values(plan, tree, exact, seeded_keys(100 + k))
        rows = cell_rows(naive(w), tree, values, record.speed_cap_kmh, plan=record.hash)
        client.execute(f"INSERT INTO release_cells ({CELL_COLUMNS}) VALUES", rows)
        client.execute(
            "INSERT INTO release_intents (window_start, plan, releaser, plan_json, at) VALUES",
            [(naive(w), record.hash, "test", record.to_json(), naive(w))],
        )
        publish(client, w)
    client.disconnect()
    store = KeyStore(ClickHousePool(settings, size=1), cache_s=0.0)
    token = store.create("sums", ["density:read"])[1]
    yield {"settings": settings, "plan": plan, "tree": tree, "windows": windows, "truth": truth,
           "token": token}  # fmt: skip
    drop_database(settings)


@pytest.fixture(scope="module")
def api(data: dict[str, Any]) -> Iterator[TestClient]:
    yield from app_client(data)


def _auth(data: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {data['token']}"}


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _range(data: dict[str, Any]) -> dict[str, str]:
    return {"from": _iso(data["windows"][-1]), "to": _iso(data["windows"][0] + timedelta(seconds=60))}


def _ring(cell: str) -> list[list[float]]:
    ring = [[lon, lat] for lat, lon in h3.cell_to_boundary(cell)]
    return [*ring, ring[0]]


def _released(data: dict[str, Any], res: int, cells: set[int]) -> dict[str, float]:
    """Σ count_est per window of the given released cells, read straight from ClickHouse."""
    client = connect(data["settings"])
    rows = client.execute(
        "SELECT window_start, sum(count_est) FROM release_cells FINAL WHERE res = %(r)s AND cell IN %(c)s"
        " GROUP BY window_start",
        {"r": res, "c": tuple(sorted(cells))},
    )
    client.disconnect()
    return {_iso(w.replace(tzinfo=UTC)): float(s) for w, s in rows}


def _plan_sigma(data: dict[str, Any], selection: dict[int, set[int]]) -> float:
    tree: Hierarchy = data["tree"]
    idx = {}
    for res, cells in selection.items():
        k = tree.resolutions.index(res)
        idx[k] = np.searchsorted(tree.cells[k], np.array(sorted(cells), dtype=np.uint64)).astype(np.int64)
    return math.sqrt(selection_variance(tree, level_variances(data["plan"], tree), idx))


def test_whole_res8_cell_reads_the_res8_row(api: TestClient, data: dict[str, Any]) -> None:
    parent = h3.latlng_to_cell(CENTER[0], CENTER[1], 8)
    base = set(data["tree"].cells[0].tolist())
    assert all(h3.str_to_int(c) in base for c in h3.cell_to_children(parent, 9))
    body = {"geometry": {"type": "Polygon", "coordinates": [_ring(parent)]}, "res": 9, **_range(data)}
    resp = api.post("/v1/density/area", json=body, headers=_auth(data))
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["source"] == "cells" and doc["cover"]["cells"] == {"8": 1}
    cover = doc["cover"]
    assert cover["cover_to_polygon"] == pytest.approx(
        cover["cover_area_km2"] / cover["polygon_area_km2"], rel=1e-3
    )
    pid = h3.str_to_int(parent)
    sums = _released(data, 8, {pid})
    sigma = _plan_sigma(data, {8: {pid}})
    assert len(doc["series"]) == N
    for point in doc["series"]:
        assert point["estimate"] == pytest.approx(sums[point["window_start"]], abs=1e-3)
        assert point["sigma"] == pytest.approx(sigma, abs=1e-3)
        assert point["sigma_method"] == "plan covariance"
        lo, hi = point["ci95"]
        assert lo == pytest.approx(point["estimate"] - 1.96 * sigma, abs=1e-2)
        assert hi == pytest.approx(point["estimate"] + 1.96 * sigma, abs=1e-2)
        assert point["ci95_nonneg"] == [max(lo, 0.0), max(hi, 0.0)]


def test_mixed_cover_sums_estimates_with_the_plan_covariance(api: TestClient, data: dict[str, Any]) -> None:
    lat, lon = CENTER
    box = [[lon - 0.03, lat - 0.025], [lon + 0.03, lat - 0.025], [lon + 0.03, lat + 0.025],
           [lon - 0.03, lat + 0.025], [lon - 0.03, lat - 0.025]]  # fmt: skip
    body = {"geometry": {"type": "Polygon", "coordinates": [box]}, "res": 9, **_range(data)}
    doc = api.post("/v1/density/area", json=body, headers=_auth(data)).json()
    assert set(doc["cover"]["cells"]) >= {"9", "8"}  # coarse inside, fine at the boundary
    fine = {h3.str_to_int(c) for c in h3.geo_to_cells({"type": "Polygon", "coordinates": [box]}, 9)}
    fine &= {int(c) for c in data["tree"].cells[0].tolist()}
    assert doc["cells_released"] < len(fine)  # fewer rows read than the res-9 cover has
    per_base = _released(data, 9, fine)
    sigma = _plan_sigma(data, {9: fine})  # the same base cells, so the same variance
    truth = float(sum(int(t) for c, t in zip(data["tree"].cells[0].tolist(), data["truth"].tolist(),
                                             strict=True) if int(c) in fine))  # fmt: skip
    for point in doc["series"]:
        # estimates add up across resolutions, so the compacted cover sums to the res-9 sum
        assert point["estimate"] == pytest.approx(per_base[point["window_start"]], abs=1e-3)
        assert point["sigma"] == pytest.approx(sigma, rel=1e-6, abs=1e-3)
        assert abs(point["estimate"] - truth) < 4 * sigma
    assert sigma < math.sqrt(len(fine)) * data["plan"].measured("count")[9].params.sigma  # not Σσ²


def test_cell_series_uses_the_estimate_and_its_sigma(api: TestClient, data: dict[str, Any]) -> None:
    cell = int(data["tree"].cells[0][3])
    doc = api.get("/v1/density/series", params={"cell": h3.int_to_str(cell), **_range(data)},
                  headers=_auth(data)).json()  # fmt: skip
    client = connect(data["settings"])
    rows = {
        _iso(w.replace(tzinfo=UTC)): (est, sigma)
        for w, est, sigma in client.execute(
            "SELECT window_start, count_est, count_sigma FROM release_cells FINAL"
            " WHERE res = 9 AND cell = %(c)s",
            {"c": cell},
        )
    }
    client.disconnect()
    assert len(doc["series"]) == N
    for point in doc["series"]:
        est, sigma = rows[point["window_start"]]
        assert point["estimate"] == pytest.approx(est, abs=1e-3)
        assert point["sigma"] == pytest.approx(sigma, abs=1e-3)


def test_city_total_is_the_same_at_every_resolution(api: TestClient, data: dict[str, Any]) -> None:
    docs = {
        res: api.get("/v1/density/total", params={"res": res, **_range(data)}, headers=_auth(data)).json()
        for res in (9, 8, 7)
    }
    default = api.get("/v1/density/total", params=_range(data), headers=_auth(data)).json()
    assert default["resolution"] == 7 and default["series"] == docs[7]["series"]
    truth = float(data["truth"].sum())
    tree: Hierarchy = data["tree"]
    sigma = _plan_sigma(data, {7: {int(c) for c in tree.cells[2].tolist()}})
    for res, doc in docs.items():
        assert doc["cells"] == tree.sizes[tree.resolutions.index(res)]
        for point, p7 in zip(doc["series"], docs[7]["series"], strict=True):
            assert point["estimate"] == pytest.approx(p7["estimate"], abs=0.05)
            assert point["sigma"] == pytest.approx(sigma, rel=1e-6)
            assert abs(point["estimate"] - truth) < 4 * sigma


@pytest.mark.parametrize(
    ("geometry", "message"),
    [
        ({"type": "Polygon", "coordinates": [[[113.30, 23.10], [113.34, 23.14], [113.34, 23.10],
                                              [113.30, 23.14], [113.30, 23.10]]]}, "invalid"),
        ({"type": "Polygon", "coordinates": [[[113.32, 23.13], [113.32001, 23.13], [113.32001, 23.13001],
                                              [113.32, 23.13]]]}, "no H3 cell centre"),
        ({"type": "Point", "coordinates": [113.32, 23.13]}, "Polygon"),
    ],
)  # fmt: skip
def test_bad_polygons_are_refused(api: TestClient, data: dict[str, Any], geometry: Any, message: str) -> None:
    body = {"geometry": geometry, "res": 9, **_range(data)}
    resp = api.post("/v1/density/area", json=body, headers=_auth(data))
    assert 400 <= resp.status_code < 500 and message in resp.text, resp.text


def test_density_features_carry_the_estimate(api: TestClient, data: dict[str, Any]) -> None:
    lat, lon = CENTER
    bbox = f"{lon - 0.01},{lat - 0.01},{lon + 0.01},{lat + 0.01}"
    at = _iso(data["windows"][0])
    doc = api.get("/v1/density", params={"bbox": bbox, "res": 9, "at": at}, headers=_auth(data)).json()
    client = connect(data["settings"])
    rows = dict(
        client.execute(
            "SELECT cell, count_est FROM release_cells FINAL WHERE res = 9 AND window_start = %(w)s",
            {"w": naive(data["windows"][0])},
        )
    )
    client.disconnect()
    assert doc["features"]
    for f in doc["features"]:
        props = f["properties"]
        assert props["count_est"] == pytest.approx(rows[h3.str_to_int(props["cell"])], abs=1e-3)
        assert props["count"] >= 0 and props["moving_est"] is not None
