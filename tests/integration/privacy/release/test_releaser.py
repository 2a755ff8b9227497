"""The releaser against the real ClickHouse: completeness, zeros, noise once, ledger, refusals.

Noise once under crashes, concurrency and configuration changes has its own file
(test_noise_once.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from clickhouse_driver import Client

from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.scratch import scratch_database
from hexpulse.times import naive_utc as _ts
from privacy.release.exceptions import BudgetError
from privacy.release.releaser import Releaser
from tests.support.release import complete, insert_exact, progress, recent_window, release_settings

pytestmark = pytest.mark.integration

W0 = recent_window()  # release-noise keys exist only for recent days


@pytest.fixture(scope="module")
def rel_settings(
    migrated: Settings, unique_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """A private database (other suites write release rows into the shared one)."""
    db = f"{migrated.clickhouse_database}_rel{unique_name[-6:]}"
    ring = tmp_path_factory.mktemp("ring") / "keyring.bin"
    with scratch_database(release_settings(migrated, db, ring)) as settings:
        yield settings


@pytest.fixture(scope="module")
def unique_name() -> str:  # module scope: one database for the whole story below
    import uuid

    return uuid.uuid4().hex[:8]


def _cells(client: Client, s: Settings, w: int) -> dict[tuple[int, int], tuple[Any, ...]]:
    rows = client.execute(
        f"SELECT res, cell, count, count_sigma, count_lo, count_hi, moving, speed_kmh "
        f"FROM {s.clickhouse_database}.release_cells FINAL WHERE window_start = %(w)s",
        {"w": _ts(w)},
    )
    return {(r[0], r[1]): r[2:] for r in rows}


def test_release_story(rel_settings: Settings) -> None:
    s = rel_settings
    db = s.clickhouse_database
    client = connect(s)
    rel = Releaser(s, client=client)
    base = rel.tree.cells[0]
    busy, quiet = int(base[100]), int(base[200])
    # Window W0: a crowd of 1200 split over two partitions, 700 of them moving at ~30 km/h, each
    # moving device in one speed bin (as the aggregate layer writes them since migration 0011).
    insert_exact(client, s, [(_ts(W0), busy, 0, 700, 400, 400 * 30, 10, [100, 250, 50, 0]),
                             (_ts(W0), busy, 1, 500, 300, 300 * 30, 20, [60, 200, 40, 0])])  # fmt: skip
    # Only partitions 0 and 1 reported progress: partition 2 has no row, so nothing is complete.
    progress(client, s, 0, W0 + 180)
    progress(client, s, 1, W0 + 180)
    assert rel.complete_before() is None
    assert rel.run_once() == 0

    # Partition 2 closes W0 only (horizon = W0 + 60): exactly one window is complete.
    progress(client, s, 2, W0 + 60)
    assert rel.pending_windows() == [W0]
    assert rel.run_once() == 1
    cells = _cells(client, s, W0)
    assert len(cells) == sum(rel.tree.sizes)  # every public partition, every resolution
    count, sigma, lo, hi, moving, speed = cells[(9, busy)]
    assert abs(int(count) - 1200) <= 6 * float(sigma)
    assert float(lo) <= int(count) <= float(hi)
    assert speed is None or 0 <= float(speed) <= 180
    assert cells[(9, quiet)][0] >= 0  # a quiet cell is released (a noisy zero), not missing
    ledger = client.execute(
        f"SELECT res, metric, rho, plan, fingerprint FROM {db}.release_ledger WHERE window_start = %(w)s",
        {"w": _ts(W0)},
    )
    # The default plan funds traffic: one row per (resolution, metric) of the cells and the bins.
    assert len(ledger) == len(rel.plan.resolutions) * len(rel.plan.metrics) + 1
    assert [r[:2] for r in ledger if r[1] == "traffic"] == [(8, "traffic")]
    assert sum(r[2] for r in ledger) == pytest.approx(rel.record.charge)  # no zones: cells + bins
    assert {r[3] for r in ledger} == {rel.record.hash}  # every row names the plan
    assert len({r[4] for r in ledger}) == len(ledger)  # one fingerprint per family
    ((n_pub, lag, plan),) = client.execute(
        f"SELECT count(), max(lag_s), any(plan) FROM {db}.release_windows FINAL"
    )
    assert n_pub == 1 and lag >= 0 and plan == rel.record.hash
    assert client.execute(f"SELECT DISTINCT plan FROM {db}.release_cells") == [(rel.record.hash,)]

    # Noise once: another run draws nothing and the published numbers do not change.
    assert rel.run_once() == 0
    assert Releaser(s).run_once() == 0
    assert _cells(client, s, W0) == cells

    # W0+60 has no partials at all: once complete it is released with (noisy) zeros everywhere.
    progress(client, s, 2, W0 + 120)
    assert rel.run_once() == 1
    assert len(_cells(client, s, W0 + 60)) == sum(rel.tree.sizes)

    # Windows are released oldest first, all that are complete in one run.
    complete(client, s, W0 + 240)
    assert rel.run_once() == 2

    # The day's ledger never exceeds the daily budget.
    (spent,), = client.execute(f"SELECT sum(rho) FROM {db}.release_ledger WHERE day = %(d)s",
                               {"d": _ts(W0).date()})  # fmt: skip
    assert spent == pytest.approx(4 * rel.record.charge)
    assert spent <= s.budget_rho_per_day


def test_budget_refusal(rel_settings: Settings, unique_name: str) -> None:
    """A ledger that already holds today's budget (e.g. from a costlier configuration) stops the releaser."""
    with scratch_database(rel_settings, clickhouse_database=f"{rel_settings.clickhouse_database}_b") as s:
        client = connect(s)
        rel = Releaser(s, client=client)
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        client.execute(
            f"INSERT INTO {s.clickhouse_database}.release_ledger (day, window_start, res, metric, plan, "
            "fingerprint, mechanism, sensitivity, scale, rho, releaser, recorded_at) VALUES",
            [(now.date(), now, 9, "count", 1, 1, "gaussian", 1.0, 1.0, s.budget_rho_per_day, "x", now)],
        )
        with pytest.raises(BudgetError, match="exceed the budget"):
            rel.check_budget_today()
        # A window of today is refused too, before anything is drawn for it.
        w = int(now.timestamp()) // 60 * 60 - 600
        complete(client, s, w + 60)
        client.execute(
            f"INSERT INTO {s.exact_database}.partials "
            "(window_start, cell, partition, devices, moving, speed_sum, close_offset) VALUES",
            [(_ts(w), int(rel.tree.cells[0][0]), 0, 5, 0, 0, 1)],
        )
        with pytest.raises(BudgetError, match="exceed the daily budget"):
            rel.run_once()
        assert client.execute(f"SELECT count() FROM {s.clickhouse_database}.release_cells") == [(0,)]


def test_cli_refuses_bad_budget_split(rel_settings: Settings) -> None:
    env = {
        **os.environ,
        "HEXPULSE_CLICKHOUSE_DATABASE": rel_settings.clickhouse_database,
        "HEXPULSE_MASTER_KEY": "ab" * 32,
        "HEXPULSE_BUDGET_RESOLUTION_SHARES": "9:0.8,8:0.7",
    }
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "hexpulse"), "release", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert "more than the whole budget" in proc.stderr
    assert "Traceback" not in proc.stderr
