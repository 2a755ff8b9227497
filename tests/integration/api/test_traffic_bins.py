"""``/v1/traffic`` from released speed bins and ``/v1/traffic/index`` against real ClickHouse:
free flow pooled from quiet windows before dividing, σ and levels, fallback to cell speeds."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import h3
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.scratch import drop_database
from hexpulse.traffic_levels import level_of
from tests.support.api import CELLS, CELLS9, api_settings, app_client, bbox_of, naive, seed

pytestmark = pytest.mark.integration

WIDE = bbox_of(CELLS9, 0.02)
MIDS = (10.0, 30.0, 55.0, 85.0)
SIGMA = 2.0
NOW_BINS = (20.0, 10.0, 0.0, 0.0)  # the newest window: a queue, 30 devices mostly slow
QUIET_BINS = (0.0, 0.0, 10.0, 30.0)  # every earlier window: free flow
UNRELEASED_BINS = (0.0, 0.0, 0.0, 999.0)  # written ahead of its window's publication: never read


def traffic_rows(window: datetime, bins: tuple[float, ...]) -> list[tuple[Any, ...]]:
    return [(naive(window), 8, cell, list(bins), SIGMA, sum(bins), list(MIDS), 1) for cell in CELLS[8]]


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    # Every hour is a quiet hour here, so the seeded windows (minutes ago) pool into free flow.
    settings = api_settings(migrated, "apitb", traffic_free_flow_hours_utc=tuple(range(24)))
    seeded = seed(settings)
    bins = [NOW_BINS if k == 0 else QUIET_BINS for k in range(len(seeded["windows"]))]
    rows = [r for w, b in zip(seeded["windows"], bins, strict=True) for r in traffic_rows(w, b)]
    rows += traffic_rows(seeded["unreleased"], UNRELEASED_BINS)
    client = connect(settings)
    client.execute(
        "INSERT INTO release_traffic (window_start, res, cell, bins_est, bins_sigma, moving_est, mids_kmh,"
        " plan) VALUES",
        rows,
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


def test_cells_from_bins_with_pooled_free_flow(api: TestClient, data: dict[str, Any]) -> None:
    doc = api.get("/v1/traffic", params={"bbox": WIDE, "res": 8}, headers=auth(data)).json()
    assert {c["cell"] for c in doc["cells"]} == {h3.int_to_str(c) for c in CELLS[8]}
    pooled_windows = len(data["windows"]) - 1  # the window shown is not its own reference
    speed = (20 * 10 + 10 * 30) / 30
    speed_sigma = math.sqrt(sum(((m - speed) * SIGMA) ** 2 for m in MIDS)) / 30
    free = (10 * 55 + 30 * 85) / 40  # Σ over the pooled windows cancels: 11·bins / 11·40
    q_sigma = SIGMA * math.sqrt(pooled_windows)
    free_sigma = math.sqrt(sum(((m - free) * q_sigma) ** 2 for m in MIDS)) / (40 * pooled_windows)
    index = free / speed
    index_sigma = index * math.hypot(free_sigma / free, speed_sigma / speed)
    for cell in doc["cells"]:
        assert cell["source"] == "bins"
        assert cell["moving"] == 30
        assert cell["moving_ci95"] == pytest.approx([30 - 1.96 * 4.0, 30 + 1.96 * 4.0], abs=1e-3)
        assert cell["mean_speed_kmh"] == pytest.approx(speed, abs=0.01)
        lo, hi = cell["speed_ci95_kmh"]
        assert (hi - lo) / 2 == pytest.approx(1.96 * speed_sigma, abs=2e-3)
        assert cell["free_flow_kmh"] == pytest.approx(free, abs=0.01)  # the unreleased 999 never mixes in
        assert cell["free_flow_windows"] == pooled_windows
        lo, hi = cell["free_flow_ci95_kmh"]
        assert (hi - lo) / 2 == pytest.approx(1.96 * free_sigma, abs=2e-3)
        assert cell["congestion_index"] == pytest.approx(index, abs=1e-3)
        lo, hi = cell["congestion_index_ci95"]
        assert (hi - lo) / 2 == pytest.approx(1.96 * index_sigma, abs=2e-3)
        assert cell["level"] == "severe" and index >= 3.0
        ends = (level_of(max(index - 1.96 * index_sigma, 0.0)), level_of(index + 1.96 * index_sigma))
        assert cell["level_range"] == list(ends) and ends[0] != ends[1]  # 30 devices: a wide interval


def test_earlier_window_is_free_flow(api: TestClient, data: dict[str, Any]) -> None:
    at = iso(data["windows"][1])
    doc = api.get("/v1/traffic", params={"bbox": WIDE, "res": 8, "at": at}, headers=auth(data)).json()
    for cell in doc["cells"]:
        assert cell["source"] == "bins" and cell["free_flow_windows"] == len(data["windows"]) - 2
        assert cell["congestion_index"] == pytest.approx(1.0, abs=1e-3)
        assert cell["level"] == "free"


def test_resolution_without_bins_falls_back_to_cell_speeds(api: TestClient, data: dict[str, Any]) -> None:
    doc = api.get("/v1/traffic", params={"bbox": WIDE, "res": 9}, headers=auth(data)).json()
    assert doc["cells"] and all(c["source"] == "cells" for c in doc["cells"])
    assert all(c["free_flow_ci95_kmh"] is None and c["level_range"] is None for c in doc["cells"])


def test_bins_served_when_only_res_9_is_a_density_resolution(data: dict[str, Any]) -> None:
    """The speed bins' resolution need not be released for density: with res 9 alone, res 8 is
    still answered from the bins, while another unreleased resolution is a 400 naming the released ones."""
    only9 = {**data, "settings": data["settings"].model_copy(update={"release_resolutions": (9,)})}
    with TestClient(create_app(only9["settings"])) as client:
        doc = client.get("/v1/traffic", params={"bbox": WIDE, "res": 8}, headers=auth(data)).json()
        assert doc["cells"] and all(c["source"] == "bins" for c in doc["cells"])
        bad = client.get("/v1/traffic", params={"bbox": WIDE, "res": 7}, headers=auth(data))
        assert bad.status_code == 400 and "res 7 is not released" in bad.text


def test_city_and_district_index_series(api: TestClient, data: dict[str, Any]) -> None:
    windows = data["windows"]  # newest first
    params = {"from": iso(windows[5]), "to": iso(windows[0].replace(second=59))}
    doc = api.get("/v1/traffic/index", params=params, headers=auth(data)).json()
    assert doc["bbox"] is None and doc["free_flow_days"] == 7
    assert [p["window_start"] for p in doc["series"]] == [iso(w) for w in reversed(windows[:6])]
    # Travel-time weighted: Σ b/mid now over Σ b · free pace, the pace pooled from the quiet bins.
    free_pace = (10 / 55 + 30 / 85) / 40
    expected = (20 / 10 + 10 / 30) / (30 * free_pace)
    *quiet, now = doc["series"]
    for p in quiet:
        assert p["index"] == pytest.approx(1.0, abs=1e-4) and p["level"] == "free"
        assert p["cells"] == len(CELLS[8])
    assert now["index"] == pytest.approx(expected, abs=1e-3) and now["level"] == "severe"
    assert 0 < now["sigma"] < 0.1 * now["index"]
    district = api.get("/v1/traffic/index", params={**params, "bbox": WIDE}, headers=auth(data)).json()
    assert [p["index"] for p in district["series"]] == [p["index"] for p in doc["series"]]
    away = api.get("/v1/traffic/index", params={**params, "bbox": "113.0,22.5,113.01,22.51"},
                   headers=auth(data)).json()  # fmt: skip
    assert all(p["index"] is None and p["cells"] == 0 for p in away["series"])


def test_index_bad_input(api: TestClient, data: dict[str, Any]) -> None:
    bad = api.get("/v1/traffic/index", params={"bbox": "nonsense"}, headers=auth(data))
    assert bad.status_code == 400 and bad.json()
    assert api.get("/v1/traffic/index").status_code == 401
