"""Pooled speed bins after the plan's edges change, against real ClickHouse: the free-flow and the
trailing pools of a cell or a corridor are those of the newest bins, so the window they serve
(with the new bins) still has a reference, although the old bins hold more windows."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any

import pytest

from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import drop_database
from releases.corridors import quiet_zone_bins, recent_zone_bins
from releases.traffic import quiet_bins, recent_bins
from tests.support.api import CELLS, api_settings, naive, seed

pytestmark = pytest.mark.integration


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


OLD = (13.6, 30.0, 55.0, 85.0)  # four bins, before the change
NEW = (13.6, 27.5, 42.5, 57.5, 72.5, 87.5)  # six bins, the newest windows
NEW_WINDOWS = 3  # the newest windows (the one served included) have NEW; the 9 older ones OLD


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    settings = api_settings(migrated, "apipl", traffic_free_flow_hours_utc=tuple(range(24)))
    seeded = seed(settings)  # windows newest first
    cell = CELLS[8][0]
    cells, zones = [], []
    for k, w in enumerate(seeded["windows"]):
        mids = NEW if k < NEW_WINDOWS else OLD
        bins = [1.0 + k] * len(mids)
        cells.append((naive(w), 8, cell, bins, 2.0, sum(bins), list(mids), 1))
        zones.append((naive(w), "corridor", "c-1", 1, bins, 2.0, sum(bins), list(mids), 7, 1))
    client = connect(settings)
    client.execute(
        "INSERT INTO release_traffic (window_start, res, cell, bins_est, bins_sigma, moving_est, mids_kmh,"
        " plan) VALUES",
        cells,
    )
    client.execute(
        "INSERT INTO release_zone_traffic (window_start, zone_set, zone_id, version, bins_est, bins_sigma,"
        " moving_est, mids_kmh, cells, plan) VALUES",
        zones,
    )
    client.disconnect()
    pool = ClickHousePool(settings, size=1)
    yield {"pool": pool, "windows": seeded["windows"], "cell": cell}
    pool.close()
    drop_database(settings)


def test_the_free_flow_pool_is_that_of_the_newest_bins(data: dict[str, Any]) -> None:
    now = data["windows"][0]
    quiet = run(quiet_bins(data["pool"], now, 8, 1, tuple(range(24))))[data["cell"]]
    # The served window excluded: the two other NEW windows, not the nine OLD ones.
    assert quiet.mids_kmh == NEW and quiet.windows == NEW_WINDOWS - 1
    assert quiet.bins == (2.0 + 3.0,) * len(NEW)  # windows k = 1 and 2: bins of 2 and 3 each
    zone = run(quiet_zone_bins(data["pool"], now, 1, tuple(range(24))))[("corridor", "c-1", 1)]
    assert zone.mids_kmh == NEW and zone.windows == NEW_WINDOWS - 1


def test_a_trailing_pool_across_the_change_keeps_the_newest_bins(data: dict[str, Any]) -> None:
    # The last 8 windows: 3 NEW, 5 OLD — the newest bins win although they are fewer.
    now = data["windows"][0]
    recent = run(recent_bins(data["pool"], now, 8, 8, 60))[data["cell"]]
    assert recent.mids_kmh == NEW and recent.windows == NEW_WINDOWS
    zone = run(recent_zone_bins(data["pool"], now, 8, 60))[("corridor", "c-1", 1)]
    assert zone.mids_kmh == NEW and zone.windows == NEW_WINDOWS
    # Before the change, the window's pool is the old bins (the only ones in its past).
    old = data["windows"][NEW_WINDOWS]
    before = run(quiet_bins(data["pool"], old, 8, 1, tuple(range(24))))[data["cell"]]
    assert before.mids_kmh == OLD
