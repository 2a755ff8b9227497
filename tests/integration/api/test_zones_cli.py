"""`hexpulse simulate --zones-out` then `hexpulse zones load | list` end to end (subprocess, real
ClickHouse): the simulated city's crowd zones, districts and road corridors register, disjoint within
each set; a set the budget plan does not fund is skipped and said so."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from api.zones import ZoneStore
from hexpulse.settings import Settings
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import drop_database
from simulator.places import CORRIDORS, ZONE_SETS
from tests.support.api import private_settings

pytestmark = pytest.mark.integration

HEXPULSE = str(Path(sys.executable).parent / "hexpulse")


@pytest.fixture(scope="module")
def settings(migrated: Settings) -> Iterator[Settings]:
    cfg = private_settings(migrated, "apiz")
    yield cfg
    drop_database(cfg)


def run(settings: Settings, *args: str, plan: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HEXPULSE_CLICKHOUSE_DATABASE": settings.clickhouse_database,
           "HEXPULSE_STATE_DIR": str(settings.state_dir)}  # fmt: skip
    if plan is not None:
        env["HEXPULSE_BUDGET_PLAN"] = plan
    cmd = [HEXPULSE, *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_simulated_city_zones_load(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "zones.geojson"
    sim = run(settings, "simulate", "--devices", "10", "--duration", "60s", "--dry-run",
              "--truth", str(tmp_path / "truth.json"), "--zones-out", str(path))  # fmt: skip
    assert sim.returncode == 0, sim.stderr
    features = orjson.loads(path.read_bytes())["features"]
    assert {f["properties"]["set"] for f in features} == {"crowd", "district", "corridor"}
    # A plan funding crowd and district zones only: the road corridors are skipped, and said so.
    loaded = run(settings, "zones", "load", str(path), plan="cells:0.7,zones.crowd:0.25,zones.district:0.05")
    assert loaded.returncode == 0, loaded.stderr
    corridors = sum(f["properties"]["set"] == "corridor" for f in features)
    assert f"{corridors} zone(s) of set 'corridor' skipped" in loaded.stdout
    store = ZoneStore(ClickHousePool(settings, size=1), settings)
    crowd_district = {a.slug for s, areas in ZONE_SETS.items() if s in ("crowd", "district") for a in areas}
    assert {z.zone_id for z in store.current()} == crowd_district
    # The default plan funds the corridors' speed bins (traffic.corridor): loading again adds them.
    loaded = run(settings, "zones", "load", str(path))
    assert loaded.returncode == 0, loaded.stderr
    assert "skipped" not in loaded.stdout
    zones = store.current()
    assert {z.zone_id for z in zones} == crowd_district | {c.slug for c in CORRIDORS}
    assert corridors == len(CORRIDORS)
    funded = {**ZONE_SETS, "corridor": CORRIDORS}
    for zone_set in funded:
        cells = [c for z in zones if z.zone_set == zone_set for c in z.cells]
        assert len(cells) == len(set(cells))  # disjoint within the set
    again = run(settings, "zones", "load", str(path))  # idempotent: a re-run of the demo
    assert again.returncode == 0 and "exists" in again.stdout
    listed = run(settings, "zones", "list")
    assert "tianhe-stadium" in listed.stdout and "district-ne" in listed.stdout
    bad = run(settings, "zones", "load", str(tmp_path / "missing.geojson"))
    assert bad.returncode == 2 and "cannot read" in bad.stderr and "Traceback" not in bad.stderr
