"""`hexpulse simulate --zones-out` then `hexpulse zones load | list` end to end (subprocess, real
ClickHouse): the simulated city's crowd zones and districts register, disjoint within each set."""

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
from simulator.places import ZONE_SETS
from tests.support.api import private_settings

pytestmark = pytest.mark.integration

HEXPULSE = str(Path(sys.executable).parent / "hexpulse")


@pytest.fixture(scope="module")
def settings(migrated: Settings) -> Iterator[Settings]:
    cfg = private_settings(migrated, "apiz")
    yield cfg
    drop_database(cfg)


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HEXPULSE_CLICKHOUSE_DATABASE": settings.clickhouse_database,
           "HEXPULSE_STATE_DIR": str(settings.state_dir)}  # fmt: skip
    cmd = [HEXPULSE, *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_simulated_city_zones_load(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "zones.geojson"
    sim = run(settings, "simulate", "--devices", "10", "--duration", "60s", "--dry-run",
              "--truth", str(tmp_path / "truth.json"), "--zones-out", str(path))  # fmt: skip
    assert sim.returncode == 0, sim.stderr
    features = orjson.loads(path.read_bytes())["features"]
    assert {f["properties"]["set"] for f in features} == {"crowd", "district", "corridor"}
    loaded = run(settings, "zones", "load", str(path))
    assert loaded.returncode == 0, loaded.stderr
    # The default plan funds crowd and district zones: the road corridors are skipped, and said so.
    corridors = sum(f["properties"]["set"] == "corridor" for f in features)
    assert f"{corridors} zone(s) of set 'corridor' skipped" in loaded.stdout
    zones = ZoneStore(ClickHousePool(settings, size=1), settings).current()
    funded = {s: areas for s, areas in ZONE_SETS.items() if s in ("crowd", "district")}
    expected = {a.slug for areas in funded.values() for a in areas}
    assert {z.zone_id for z in zones} == expected
    for zone_set in funded:
        cells = [c for z in zones if z.zone_set == zone_set for c in z.cells]
        assert len(cells) == len(set(cells))  # disjoint within the set
    again = run(settings, "zones", "load", str(path))  # idempotent: a re-run of the demo
    assert again.returncode == 0 and "exists" in again.stdout
    listed = run(settings, "zones", "list")
    assert "tianhe-stadium" in listed.stdout and "district-ne" in listed.stdout
    bad = run(settings, "zones", "load", str(tmp_path / "missing.geojson"))
    assert bad.returncode == 2 and "cannot read" in bad.stderr and "Traceback" not in bad.stderr
