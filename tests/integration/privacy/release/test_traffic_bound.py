"""The speed bins' per-device-day bound through the real releaser and ClickHouse: a driver moving
in four windows counts in its first W_t = 2 only, whether one releaser goes through the windows
(counts in memory) or each window is released by a fresh process (counts rebuilt from
``traffic_movers``); the ledger charges the bins for W_t windows a day; retention drops the moving
rows by the hour once released, and keeps the movers with the day's partials."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.scratch import scratch_database
from privacy.release.releaser import Releaser
from privacy.release.retention import enforce_retention
from tests.support.release import complete, insert_exact, recent_window, release_settings, ts

pytestmark = pytest.mark.integration

W0 = recent_window(2.0)
WINDOWS = [W0 + 60 * k for k in range(4)]
PLAN = ("cells:0.35", "traffic:0.35", "zones.crowd:0.25", "zones.district:0.05")
DRIVER = 4242
EDGES = (20, 40, 70)  # four speed bins, pinned: the rows below are written per bin


@pytest.fixture()
def rs(migrated: Settings, unique_name: str, tmp_path: Path) -> Iterator[Settings]:
    db = f"{migrated.clickhouse_database}_tb{unique_name[-6:]}"
    s = release_settings(migrated, db, tmp_path / "keyring.bin", budget_plan=PLAN, release_metrics=("count",),
                         traffic_windows_per_device_day=2, traffic_speed_edges_kmh=EDGES)  # fmt: skip
    with scratch_database(s) as scratch:
        yield scratch


def insert(rs: Settings, cell: int) -> None:
    """Per window: the driver (bin 2) and two passers-by seen once each (bin 1), in one cell."""
    client = connect(rs)
    for k, w in enumerate(WINDOWS):
        insert_exact(client, rs, [(ts(w), cell, 0, 3, 3, 3 * 40, w, [0, 2, 1, 0])],
                     [(ts(w), 0, 0, DRIVER, cell, 2), (ts(w), 0, 0, 100 + 2 * k, cell, 1),
                      (ts(w), 0, 0, 101 + 2 * k, cell, 1)])  # fmt: skip
    complete(client, rs, WINDOWS[-1] + 60)


def cell_bins(rel: Releaser, w: int, cell: int) -> list[int]:
    got = rel.read_bins(w, len(rel.plan.traffic_edges_kmh) - 1, rel.plan.traffic_window_bound)
    return got[int(np.searchsorted(rel.tree.cells[0], cell))].tolist()


def test_a_driver_counts_in_its_first_w_t_moving_windows(rs: Settings) -> None:
    client = connect(rs)
    one = Releaser(rs, client=client)
    assert one.plan.traffic_window_bound == 2
    cell = int(one.tree.cells[0][50])
    insert(rs, cell)
    expected = [[0, 2, 1, 0], [0, 2, 1, 0], [0, 2, 0, 0], [0, 2, 0, 0]]
    assert [cell_bins(one, w, cell) for w in WINDOWS] == expected  # one process, counts in memory
    assert [cell_bins(Releaser(rs, client=client), w, cell) for w in WINDOWS] == expected  # rebuilt each time
    assert one.has_bins(WINDOWS[0])  # rows = Σ moving

    assert Releaser(rs, client=client).run_once() == len(WINDOWS)
    db = rs.clickhouse_database
    traffic = one.plan.traffic_draw
    assert traffic is not None
    charged = client.execute(f"SELECT DISTINCT rho FROM {db}.release_ledger WHERE metric = 'traffic'")
    assert charged == [(pytest.approx(traffic.rho * 2 / 1440),)]  # ρ·W_t / windows a day
    assert traffic.rho == pytest.approx(0.35 / 2)

    # Every window of the hour(s) is released: the moving rows go, the movers stay with the day.
    exact = rs.exact_database
    enforce_retention(rs, client=client)
    ((moving,),) = client.execute(f"SELECT count() FROM {exact}.traffic_moving")
    ((movers,),) = client.execute(f"SELECT count() FROM {exact}.traffic_movers")
    ((partials,),) = client.execute(f"SELECT count() FROM {exact}.partials")
    assert moving == 0 and movers == 12 and partials == 4


def test_a_window_without_moving_rows_draws_no_bins(rs: Settings) -> None:
    """Partials written before migration 0019 have moving devices but no moving rows: their bins
    cannot be bounded, so the window releases its cells without bins."""
    client = connect(rs)
    rel = Releaser(rs, client=client)
    cell = int(rel.tree.cells[0][50])
    insert_exact(client, rs, [(ts(W0), cell, 0, 3, 3, 120, 1, [0, 2, 1, 0])], moving=[])
    complete(client, rs, W0 + 60)
    assert not rel.has_bins(W0)
    assert rel.run_once() == 1
    db = rs.clickhouse_database
    assert client.execute(f"SELECT count() FROM {db}.release_traffic") == [(0,)]
    assert client.execute(f"SELECT count() FROM {db}.release_cells") != [(0,)]
