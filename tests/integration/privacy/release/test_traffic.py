"""The traffic product through the real releaser and ClickHouse: speed bins noised once per window,
charged in the ledger, not drawn for windows whose partials predate the bins (migration 0011)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import h3
import numpy as np
import pytest
from clickhouse_driver import Client

from hexpulse.settings import Settings, load_settings
from hexpulse.store import connect
from hexpulse.store.scratch import scratch_database
from privacy.release.ledger import spent_on
from privacy.release.releaser import Releaser
from tests.support.release import (
    Crash,
    CrashAfter,
    complete,
    double_draws,
    insert_exact,
    recent_window,
    release_settings,
    ts,
)

pytestmark = pytest.mark.integration

W0 = recent_window(2.0)
PLAN = ("cells:0.35", "traffic:0.35", "zones.crowd:0.25", "zones.district:0.05")


@pytest.fixture()
def rs(migrated: Settings, unique_name: str, tmp_path: Path) -> Iterator[Settings]:
    db = f"{migrated.clickhouse_database}_tf{unique_name[-6:]}"
    s = release_settings(migrated, db, tmp_path / "keyring.bin", budget_plan=PLAN, release_metrics=("count",))
    with scratch_database(s) as scratch:
        yield scratch


K = len(load_settings().traffic_speed_edges_kmh) + 1  # the default edges' bins, as `migrated` has them


def bins_of(cell: int) -> list[int]:
    """A deterministic moving crowd per base cell, one count per bin of the default edges, heavy in
    the slow ones."""
    return ([30 + cell % 5, 20, 10 + cell % 3, 5] + [2] * K)[:K]


def insert(
    client: Client, s: Settings, windows: list[int], cells: list[int], *, legacy: bool = False
) -> None:
    """Partials spread over the 3 partitions; ``legacy``: written before 0011 (no bins)."""
    rows = []
    for w in windows:
        for c in cells:
            b = bins_of(c)
            rows.append((ts(w), c, c % 3, sum(b) + 7, sum(b), sum(b) * 30, w, [] if legacy else b))
    insert_exact(client, s, rows)


def res8(cell: int) -> int:
    return int(h3.str_to_int(h3.cell_to_parent(h3.int_to_str(cell), 8)))


def test_traffic_through_the_releaser(rs: Settings) -> None:
    s, db = rs, rs.clickhouse_database
    client = connect(s)
    rel = Releaser(s, client=client)
    draw = rel.plan.traffic_draw
    assert draw is not None and draw.res == 8
    base = [int(c) for c in rel.tree.cells[0]]
    p8 = res8(base[len(base) // 2])
    cells = [c for c in base if res8(c) == p8]
    windows = [W0 + 60 * k for k in range(12)]
    legacy = W0 + 60 * 12
    insert(client, s, windows, cells)
    insert(client, s, [legacy], cells, legacy=True)
    complete(client, s, legacy + 60)
    assert rel.run_once() == 13

    n8 = rel.tree.sizes[rel.tree.resolutions.index(8)]
    per_window = dict(client.execute(
        f"SELECT toUInt32(window_start), count() FROM {db}.release_traffic FINAL GROUP BY window_start"
    ))  # fmt: skip
    assert per_window == {w: n8 for w in windows}  # every res-8 cell, zeros too; none for the legacy window
    # Pooled over windows the estimates are unbiased: the sum of 12 windows is within 4σ√12.
    (got,) = client.execute(
        f"SELECT sumForEach(bins_est), any(bins_sigma), any(mids_kmh) FROM {db}.release_traffic FINAL "
        "WHERE cell = %(c)s", {"c": p8},
    )  # fmt: skip
    truth = np.sum([bins_of(c) for c in cells], axis=0) * len(windows)
    assert got[1] == pytest.approx(draw.params.sigma)
    assert np.all(np.abs(np.array(got[0]) - truth) <= 4 * got[1] * np.sqrt(len(windows)))
    assert list(got[2]) == pytest.approx(list(rel.plan.traffic_mids_kmh))

    # Ledger: one traffic draw per window with bins, none for the legacy one; its window row is
    # charged the rest of the plan only, and the day's spend stays within ρ.
    traffic = dict(client.execute(
        f"SELECT toUInt32(window_start), uniqExact(fingerprint) FROM {db}.release_ledger "
        "WHERE metric = 'traffic' GROUP BY window_start"
    ))  # fmt: skip
    assert traffic == {w: 1 for w in windows}
    charged = dict(client.execute(f"SELECT toUInt32(window_start), rho FROM {db}.release_windows FINAL"))
    assert charged[windows[0]] == pytest.approx(rel.plan.window_charge(()))
    assert charged[legacy] == pytest.approx(rel.plan.window_charge((), traffic=False))
    assert charged[windows[0]] - charged[legacy] == pytest.approx(draw.charge)
    assert spent_on(client, db, ts(W0).date()) <= rel.plan.rho_per_day
    client.disconnect()


def test_traffic_noised_once_under_a_crash_at_every_statement(rs: Settings) -> None:
    """A releaser dying after each statement in turn and a fresh one finishing leave one bin vector
    per (window, cell) and one fingerprint per ledger family."""
    s, db = rs, rs.clickhouse_database
    client = connect(s)
    rel = Releaser(s, client=client)
    base = [int(c) for c in rel.tree.cells[0]]
    p8 = res8(base[len(base) // 2])
    cells = [c for c in base if res8(c) == p8]
    counter = CrashAfter(client, 10**9)
    insert(client, s, [W0], cells)
    complete(client, s, W0 + 60 * 40)
    assert Releaser(s, client=counter).release_window(W0)  # type: ignore[arg-type]
    statements = counter.calls
    windows = [W0 + 60 * k for k in range(1, statements)]
    insert(client, s, windows, cells)
    for k, w in enumerate(windows, start=1):
        with pytest.raises(Crash):
            Releaser(s, client=CrashAfter(client, k)).release_window(w)  # type: ignore[arg-type]
        assert Releaser(s, client=client).release_window(w)
    doubles = client.execute(
        f"SELECT window_start, cell, uniqExact(bins_est, bins_sigma, plan) AS n FROM {db}.release_traffic "
        "GROUP BY window_start, cell HAVING n > 1 LIMIT 5"
    )
    assert doubles == [] and double_draws(client, db) == []
    (n,) = client.execute(f"SELECT uniqExact(window_start) FROM {db}.release_traffic")[0]
    assert n == statements
    client.disconnect()


def test_default_plan_releases_bins_at_res_8_when_only_res_9_is_released(
    migrated: Settings, unique_name: str, tmp_path: Path
) -> None:
    """The default plan funds traffic at res 8; a deployment releasing density at res 9 alone still
    starts and releases the bins of every res-8 cell of its area, summed from the base cells."""
    db = f"{migrated.clickhouse_database}_t9{unique_name[-6:]}"
    only9 = release_settings(migrated, db, tmp_path / "keyring.bin", release_resolutions=(9,))
    with scratch_database(only9) as s:
        client = connect(s)
        rel = Releaser(s, client=client)
        assert rel.plan.resolutions == (9,) and rel.plan.traffic_draw is not None
        base = [int(c) for c in rel.tree.cells[0]]
        p8 = res8(base[len(base) // 2])
        cells = [c for c in base if res8(c) == p8]
        windows = [W0 + 60 * k for k in range(8)]
        insert(client, s, windows, cells)
        complete(client, s, windows[-1] + 60)
        assert rel.run_once() == len(windows)
        n8 = len({res8(c) for c in base})
        per_window = dict(client.execute(
            f"SELECT toUInt32(window_start), count() FROM {db}.release_traffic FINAL WHERE res = 8 "
            "GROUP BY window_start"
        ))  # fmt: skip
        assert per_window == {w: n8 for w in windows}
        assert client.execute(f"SELECT DISTINCT res FROM {db}.release_cells") == [(9,)]
        (got,) = client.execute(
            f"SELECT sumForEach(bins_est), any(bins_sigma) FROM {db}.release_traffic FINAL "
            "WHERE cell = %(c)s",
            {"c": p8},
        )
        truth = np.sum([bins_of(c) for c in cells], axis=0) * len(windows)
        assert np.all(np.abs(np.array(got[0]) - truth) <= 4 * got[1] * np.sqrt(len(windows)))
        client.disconnect()
