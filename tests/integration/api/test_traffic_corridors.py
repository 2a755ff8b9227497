"""Corridors in ``/v1/traffic`` and ``/v1/traffic/index`` against real ClickHouse: rows of
``release_zone_traffic`` (inserted the releaser's way) read only for published windows, free flow
pooled over the corridor's quiet windows before dividing, σ and levels by the cells' arithmetic,
the bbox and set filters, the index weighing corridors where a window measured them."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.scratch import drop_database
from hexpulse.traffic_levels import level_of
from hexpulse.zones import OPEN_END, ZONE_COLUMNS, Zone
from tests.support.api import CELLS, CELLS9, CENTER, api_settings, app_client, bbox_of, naive, seed

pytestmark = pytest.mark.integration

WIDE = bbox_of(CELLS9, 0.02)
MIDS = (13.6, 30.0, 55.0, 85.0)
SIGMA = 3.0
JAM = (60.0, 30.0, 10.0, 0.0)  # the newest window on the incident corridor: 100 devices, mostly slow
FREE = (0.0, 5.0, 35.0, 60.0)  # every other window and corridor: free flow
UNRELEASED = (0.0, 0.0, 0.0, 999.0)  # written ahead of its window's publication: never read
NO_CORRIDORS = (2,)  # windows (k windows ago) that measured cells only, as does the oldest


def _square(lat: float, lon: float, d: float = 0.004) -> str:
    ring = [[lon + x * d, lat + y * d] for x, y in ((-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1))]
    return orjson.dumps({"type": "Polygon", "coordinates": [ring]}).decode()


CORRIDORS = {  # id → (name, geometry, base cells)
    "ring-1": ("Ring road 1", _square(CENTER[0], CENTER[1] - 0.005), CELLS9[:10]),
    "ring-2": ("Ring road 2", _square(CENTER[0], CENTER[1] + 0.005), CELLS9[10:20]),
    "far-1": ("Far road", _square(CENTER[0] + 0.5, CENTER[1] + 0.5), CELLS9[20:25]),
}


def zone_rows() -> list[tuple[Any, ...]]:
    since = datetime(2020, 1, 1, tzinfo=UTC)
    rows = [Zone(z, 1, "corridor", n, g, tuple(c), since, OPEN_END).row()
            for z, (n, g, c) in CORRIDORS.items()]  # fmt: skip
    # Another set measured for traffic: served with its set, never weighed by the corridor index.
    rows.append(Zone("d-1", 1, "district", "District", _square(*CENTER, d=0.02), tuple(CELLS9[25:]), since,
                     OPEN_END).row())  # fmt: skip
    return rows


def traffic_row(window: datetime, zone_set: str, zone_id: str, bins: tuple[float, ...]) -> tuple[Any, ...]:
    cells = len(CORRIDORS[zone_id][2]) if zone_id in CORRIDORS else 12
    return (naive(window), zone_set, zone_id, 1, list(bins), SIGMA, sum(bins), list(MIDS), cells, 7)


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    # Every hour is a quiet hour here, so the seeded windows (minutes ago) pool into free flow.
    settings = api_settings(migrated, "apitc", traffic_free_flow_hours_utc=tuple(range(24)))
    seeded = seed(settings)
    windows = seeded["windows"]  # newest first; two measured no corridors (cells only): index 2, the oldest
    rows, cell_rows = [], []
    for k, w in enumerate(windows):
        cell_rows += [(naive(w), 8, c, list(FREE), SIGMA, sum(FREE), list(MIDS), 7) for c in CELLS[8]]
        if k in NO_CORRIDORS or k == len(windows) - 1:
            continue
        rows.append(traffic_row(w, "corridor", "ring-1", JAM if k == 0 else FREE))
        rows += [traffic_row(w, "corridor", z, FREE) for z in ("ring-2", "far-1")]
        rows.append(traffic_row(w, "district", "d-1", FREE))
    rows += [traffic_row(seeded["unreleased"], "corridor", z, UNRELEASED) for z in CORRIDORS]
    client = connect(settings)
    client.execute(f"INSERT INTO zones ({ZONE_COLUMNS}) VALUES", zone_rows())
    client.execute(
        "INSERT INTO release_zone_traffic (window_start, zone_set, zone_id, version, bins_est, bins_sigma,"
        " moving_est, mids_kmh, cells, plan) VALUES",
        rows,
    )
    client.execute(
        "INSERT INTO release_traffic (window_start, res, cell, bins_est, bins_sigma, moving_est, mids_kmh,"
        " plan) VALUES",
        cell_rows,
    )
    client.disconnect()
    yield seeded
    drop_database(settings)


@pytest.fixture(scope="module")
def api(data: dict[str, Any]) -> Iterator[TestClient]:
    yield from app_client(data)


def auth(data: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {data['tokens']['traffic']}"}


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def speed_of(bins: tuple[float, ...]) -> tuple[float, float]:
    n = sum(bins)
    mean = sum(b * m for b, m in zip(bins, MIDS, strict=True)) / n
    return mean, math.sqrt(sum(((m - mean) * SIGMA) ** 2 for m in MIDS)) / n


def test_corridors_with_pooled_free_flow(api: TestClient, data: dict[str, Any]) -> None:
    doc = api.get("/v1/traffic", params={"bbox": WIDE}, headers=auth(data)).json()
    by_id = {c["zone_id"]: c for c in doc["corridors"]}
    assert sorted(by_id) == ["d-1", "ring-1", "ring-2"]  # far-1 lies outside the bbox
    jam = by_id["ring-1"]
    assert jam["zone_set"] == "corridor" and jam["name"] == "Ring road 1" and jam["version"] == 1
    assert jam["cells"] == 10 and jam["geometry"] == orjson.loads(CORRIDORS["ring-1"][1])
    assert jam["moving"] == 100
    assert jam["moving_ci95"] == pytest.approx([100 - 1.96 * 6.0, 100 + 1.96 * 6.0], abs=1e-3)
    pooled = len(data["windows"]) - 3  # not the window shown, nor the two without corridors
    speed, speed_sigma = speed_of(JAM)
    free = speed_of(FREE)[0]  # Σ over the pooled windows cancels in the mean
    free_sigma = math.sqrt(sum(((m - free) * SIGMA * math.sqrt(pooled)) ** 2 for m in MIDS)) / (100 * pooled)
    index = free / speed
    index_sigma = index * math.hypot(free_sigma / free, speed_sigma / speed)
    assert jam["mean_speed_kmh"] == pytest.approx(speed, abs=0.01)
    lo, hi = jam["speed_ci95_kmh"]
    assert (hi - lo) / 2 == pytest.approx(1.96 * speed_sigma, abs=2e-3)
    assert jam["free_flow_kmh"] == pytest.approx(free, abs=0.01)  # the unreleased 999 never mixes in
    assert jam["free_flow_windows"] == pooled
    lo, hi = jam["free_flow_ci95_kmh"]
    assert (hi - lo) / 2 == pytest.approx(1.96 * free_sigma, abs=2e-3)
    assert jam["congestion_index"] == pytest.approx(index, abs=1e-3)
    lo, hi = jam["congestion_index_ci95"]
    assert (hi - lo) / 2 == pytest.approx(1.96 * index_sigma, abs=2e-3)
    assert jam["level"] == level_of(index) == "severe"
    ends = [level_of(max(index - 1.96 * index_sigma, 0)), level_of(index + 1.96 * index_sigma)]
    assert jam["level_range"] == ends
    calm = by_id["ring-2"]
    assert calm["congestion_index"] == pytest.approx(1.0, abs=1e-3) and calm["level"] == "free"


def test_set_filter_and_an_earlier_window(api: TestClient, data: dict[str, Any]) -> None:
    at = iso(data["windows"][1])
    params = {"bbox": WIDE, "at": at, "set": "corridor"}
    doc = api.get("/v1/traffic", params=params, headers=auth(data)).json()
    assert [c["zone_id"] for c in doc["corridors"]] == ["ring-1", "ring-2"]
    assert all(c["level"] == "free" and c["free_flow_windows"] == len(data["windows"]) - 4
               for c in doc["corridors"])  # fmt: skip
    oldest = api.get("/v1/traffic", params={"bbox": WIDE, "at": iso(data["windows"][-1])}, headers=auth(data))
    assert oldest.json()["corridors"] == [] and oldest.json()["cells"]  # no corridors measured: cells only


def test_bad_set_is_a_client_error(api: TestClient, data: dict[str, Any]) -> None:
    for path in ("/v1/traffic", "/v1/traffic/index"):
        bad = api.get(path, params={"bbox": WIDE, "set": "no spaces; please"}, headers=auth(data))
        assert 400 <= bad.status_code < 500 and "set" in bad.text


def test_index_weighs_corridors_where_measured(api: TestClient, data: dict[str, Any]) -> None:
    windows = data["windows"]  # newest first
    params = {"from": iso(windows[5]), "to": iso(windows[0] + timedelta(seconds=59))}
    doc = api.get("/v1/traffic/index", params=params, headers=auth(data)).json()
    assert doc["zone_set"] == "corridor"
    series = doc["series"]
    assert [p["window_start"] for p in series] == [iso(w) for w in reversed(windows[:6])]
    # One free-flow reference for the series, pooled before its first window; a window that
    # measured no corridors weighs its cells.
    sources = [(p["source"], p["corridors"], p["cells"]) for p in series]
    assert sources == [("corridors", 3, 0)] * 3 + [("cells", 0, len(CELLS[8]))] + [("corridors", 3, 0)] * 2
    assert all(p["level"] == "free" and p["index"] == pytest.approx(1.0, abs=1e-4) for p in series[:-1])
    # Travel-time weighted over the three corridors (the district set is not weighed).
    free_pace = sum(b / m for b, m in zip(FREE, MIDS, strict=True)) / sum(FREE)
    jam_now = sum(b / m for b, m in zip(JAM, MIDS, strict=True))
    calm_now = sum(b / m for b, m in zip(FREE, MIDS, strict=True))
    expected = (jam_now + 2 * calm_now) / ((sum(JAM) + 2 * sum(FREE)) * free_pace)
    now = series[-1]
    assert now["index"] == pytest.approx(expected, abs=1e-3) and now["level"] == level_of(expected)
    assert 0 < now["sigma"] < 0.1 * now["index"]
    district = api.get("/v1/traffic/index", params={**params, "bbox": WIDE}, headers=auth(data)).json()
    last = district["series"][-1]
    assert last["source"] == "corridors" and last["corridors"] == 2  # far-1 is outside
    expected = (jam_now + calm_now) / ((sum(JAM) + sum(FREE)) * free_pace)
    assert last["index"] == pytest.approx(expected, abs=1e-3)
    cells = api.get("/v1/traffic/index", params={**params, "set": "none"}, headers=auth(data)).json()
    assert {p["source"] for p in cells["series"]} == {"cells"}  # a set never measured: cells throughout
