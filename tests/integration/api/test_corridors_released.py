"""Corridors end to end through the real releaser and the API: exact partials → ``traffic.corridor``
draw in ``release_zone_traffic`` → ``/v1/traffic``'s corridors and ``/v1/traffic/index``, the
contract between the write side (privacy/release/zone_traffic.py) and the read side
(releases/corridors.py): what the API serves is the released bins' arithmetic, never the exact
partials, and the exact speeds are recovered within the released σ."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h3
import numpy as np
import orjson
import pytest
from clickhouse_driver import Client
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyStore
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import scratch_database
from hexpulse.zones import OPEN_END, ZONE_COLUMNS, Zone
from privacy.release.releaser import Releaser
from releases.traffic import bins_speed
from tests.support.api import bbox_of
from tests.support.clickhouse_users import allow_api
from tests.support.release import complete, insert_exact, recent_window, release_settings, ts

pytestmark = pytest.mark.integration

W0 = recent_window(2.0)
WINDOWS = 12
PLAN = ("cells:0.45", "traffic:0.10", "traffic.corridor:0.15", "zones.crowd:0.20", "zones.district:0.05")
EDGES = (20, 40, 70)  # four speed bins, pinned: the fixtures below are written per bin
QUIET = (0, 6, 90, 180)  # devices per speed bin and base cell in every window but the last
JAM = (180, 90, 6, 0)  # the last window on corridor-0: a queue


@pytest.fixture()
def rs(migrated: Settings, unique_name: str, tmp_path: Path) -> Iterator[Settings]:
    db = f"{migrated.clickhouse_database}_cr{unique_name[-6:]}"
    s = release_settings(migrated, db, tmp_path / "keyring.bin", budget_plan=PLAN, api_key_cache_s=0.0,
                         rate_limit_per_min=10_000, traffic_free_flow_hours_utc=tuple(range(24)),
                         traffic_speed_edges_kmh=EDGES)  # fmt: skip
    with scratch_database(s) as scratch:
        allow_api(scratch)
        yield scratch


def register(client: Client, rel: Releaser) -> list[Zone]:
    """Two disjoint corridors (two full res-8 families of base cells), outlines their cells'."""
    fams: dict[int, list[int]] = {}
    for c in (int(x) for x in rel.tree.cells[0]):
        fams.setdefault(h3.str_to_int(h3.cell_to_parent(h3.int_to_str(c), 8)), []).append(c)
    full = [sorted(cs) for cs in fams.values() if len(cs) == 7][:2]
    since = datetime.fromtimestamp(W0 - 600, UTC)
    zones = []
    for i, cs in enumerate(full):
        geo = h3.cells_to_geo([h3.int_to_str(c) for c in cs])
        outline = orjson.dumps(geo).decode()
        zones.append(Zone(f"corridor-{i}", 1, "corridor", f"Corridor {i}", outline, tuple(cs), since,
                          OPEN_END, 1))  # fmt: skip
    client.execute(f"INSERT INTO zones ({ZONE_COLUMNS}) VALUES", [z.row() for z in zones])
    return zones


def partials(s: Settings, zones: list[Zone]) -> list[tuple[Any, ...]]:
    rows = []
    for k in range(WINDOWS):
        w = W0 + 60 * k
        for z in zones:
            bins = JAM if (k == WINDOWS - 1 and z.zone_id == "corridor-0") else QUIET
            for c in z.cells:
                moving = sum(bins)
                rows.append((ts(w), c, c % 3, moving + 5, moving, moving * 40, w, list(bins)))
    return rows


def test_released_corridors_are_served(rs: Settings) -> None:
    s = rs
    client = connect(s)
    rel = Releaser(s, client=client)
    draw = rel.plan.zone_traffic_draw("corridor")
    assert draw is not None
    zones = register(client, rel)
    insert_exact(client, s, partials(s, zones))
    complete(client, s, W0 + 60 * WINDOWS)
    assert rel.run_once() == WINDOWS
    rows = {str(r[0]): r[1:] for r in client.execute(
        "SELECT zone_id, bins_est, bins_sigma, mids_kmh FROM release_zone_traffic FINAL"
        " WHERE window_start = toDateTime(%(w)s)", {"w": W0 + 60 * (WINDOWS - 1)})}  # fmt: skip
    pooled = client.execute(
        "SELECT zone_id, sumForEach(bins_est), count() FROM release_zone_traffic FINAL"
        " WHERE window_start < toDateTime(%(w)s) GROUP BY zone_id", {"w": W0 + 60 * (WINDOWS - 1)})
    last3 = client.execute(
        "SELECT zone_id, sumForEach(bins_est), count() FROM release_zone_traffic FINAL"
        " WHERE window_start >= toDateTime(%(w)s) GROUP BY zone_id", {"w": W0 + 60 * (WINDOWS - 3)})
    trailing = {str(z): (list(b), int(n)) for z, b, n in last3}
    client.disconnect()
    _, token = KeyStore(ClickHousePool(s, size=1), cache_s=0.0).create("corridors", ["traffic:read"])
    auth = {"Authorization": f"Bearer {token}"}
    bbox = bbox_of([c for z in zones for c in z.cells], 0.01)
    with TestClient(create_app(s)) as api:
        doc = api.get("/v1/traffic", params={"bbox": bbox}, headers=auth).json()
        three = api.get("/v1/traffic", params={"bbox": bbox, "windows": 3}, headers=auth).json()
        bad = api.get("/v1/traffic", params={"bbox": bbox, "windows": 0}, headers=auth)
        # The series' free-flow reference is pooled before its first window: start at the last.
        last_w = ts(W0 + 60 * (WINDOWS - 1)).isoformat() + "Z"
        index = api.get("/v1/traffic/index", params={"from": last_w}, headers=auth).json()
    served = {c["zone_id"]: c for c in doc["corridors"]}
    assert sorted(served) == ["corridor-0", "corridor-1"]
    free_pool = {str(z): (list(b), int(n)) for z, b, n in pooled}
    for z in zones:
        c = served[z.zone_id]
        bins, sigma, mids = rows[z.zone_id]
        assert sigma == pytest.approx(draw.params.sigma) and c["cells"] == 7 and c["version"] == 1
        assert c["name"] == z.name and c["geometry"]["type"] == "Polygon"
        # Served = the released bins' arithmetic (one home: releases.traffic.bins_speed).
        speed, _ = bins_speed(bins, mids, sigma)
        assert c["mean_speed_kmh"] == pytest.approx(float(speed), abs=0.01)
        q, n = free_pool[z.zone_id]
        assert c["free_flow_windows"] == n == WINDOWS - 1
        free, _ = bins_speed(q, mids, sigma * math.sqrt(n))
        assert c["free_flow_kmh"] == pytest.approx(float(free), abs=0.01)
        # And the released bins hold the exact ones within 5σ (false alarm < 1e-5 per entry).
        exact = 7 * np.array(JAM if z.zone_id == "corridor-0" else QUIET)
        assert np.all(np.abs(np.array(bins) - exact) <= 5 * sigma)
        # windows=3: the speed of the last three windows' bins summed, the moving devices this window's.
        t = {c["zone_id"]: c for c in three["corridors"]}[z.zone_id]
        tb, tn = trailing[z.zone_id]
        assert t["speed_windows"] == tn == 3 and c["speed_windows"] == 1 and t["moving"] == c["moving"]
        t_speed, _ = bins_speed(tb, mids, sigma * math.sqrt(3))
        assert t["mean_speed_kmh"] == pytest.approx(float(t_speed), abs=0.01)
    assert served["corridor-0"]["level"] in ("heavy", "severe") and served["corridor-1"]["level"] == "free"
    assert bad.status_code == 422
    (last,) = index["series"]
    assert last["source"] == "corridors" and last["corridors"] == 2 and last["index"] > 1.25
