"""Corridors measured directly (issue #12, ``traffic.<set>``) through the real releaser and ClickHouse:
each window's zones × speed bins drawn once with the plan's σ and written to
``release_zone_traffic`` before the window is public, charged in the ledger, not drawn for windows
whose partials predate the bins, noised once under a crash at every statement, and a changed
exact input after the draw was recorded refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h3
import numpy as np
import pytest
from clickhouse_driver import Client

from hexpulse.settings import Settings, load_settings
from hexpulse.store import connect
from hexpulse.store.scratch import scratch_database
from hexpulse.zones import OPEN_END, ZONE_COLUMNS, Zone
from privacy.release.exceptions import DoubleDrawError
from privacy.release.ledger import fingerprint, spent_on
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
# Corridors funded by their speed bins alone: the set is measured for its bins, not its devices.
PLAN = ("cells:0.45", "traffic:0.10", "traffic.corridor:0.15", "zones.crowd:0.20", "zones.district:0.05")


@pytest.fixture()
def rs(migrated: Settings, unique_name: str, tmp_path: Path) -> Iterator[Settings]:
    db = f"{migrated.clickhouse_database}_zt{unique_name[-6:]}"
    s = release_settings(migrated, db, tmp_path / "keyring.bin", budget_plan=PLAN, release_metrics=("count",))
    with scratch_database(s) as scratch:
        yield scratch


K = len(load_settings().traffic_speed_edges_kmh) + 1  # the default edges' bins, as `migrated` has them


def bins_of(cell: int) -> list[int]:
    """A deterministic moving crowd per base cell and partition, one count per bin of the default
    edges."""
    return ([3 + cell % 5, 2, 1 + cell % 3, 1] + [1] * K)[:K]


def insert(
    client: Client, s: Settings, windows: list[int], cells: list[int], *, legacy: bool = False
) -> None:
    """Partials in each of the 3 partitions; ``legacy``: written before 0011 (no bins)."""
    rows = [row(w, c, p, [] if legacy else bins_of(c)) for w in windows for c in cells for p in range(3)]
    insert_exact(client, s, rows)


def row(w: int, c: int, p: int, bins: list[int]) -> tuple[object, ...]:
    """One partial of cell ``c``, partition ``p``: 4 still devices besides the moving ones."""
    moving = sum(bins_of(c))
    return (ts(w), c, p, moving + 4, moving, moving * 30, w, bins)


def corridors(client: Client, rel: Releaser) -> list[Zone]:
    """Two disjoint corridors (two res-8 families of base cells), in effect since before W0."""
    base = [int(c) for c in rel.tree.cells[0]]
    fams: dict[int, list[int]] = {}
    for c in base:
        fams.setdefault(int(h3.str_to_int(h3.cell_to_parent(h3.int_to_str(c), 8))), []).append(c)
    full = [sorted(cs) for cs in fams.values() if len(cs) == 7][:2]
    since = datetime.fromtimestamp(W0 - 600, UTC)
    zones = [Zone(f"corridor-{i}", 1, "corridor", f"Corridor {i}", "{}", tuple(cs), since, OPEN_END, 1)
             for i, cs in enumerate(full)]  # fmt: skip
    client.execute(f"INSERT INTO zones ({ZONE_COLUMNS}) VALUES", [z.row() for z in zones])
    return zones


def released(client: Client, db: str) -> dict[tuple[int, str], tuple[Any, ...]]:
    rows = client.execute(
        "SELECT toUInt32(window_start), zone_id, version, bins_est, bins_sigma, moving_est, mids_kmh, cells, "
        f"plan FROM {db}.release_zone_traffic FINAL WHERE zone_set = 'corridor'"
    )
    return {(int(r[0]), str(r[1])): tuple(r[2:]) for r in rows}


def test_corridors_through_the_releaser(rs: Settings) -> None:
    s, db = rs, rs.clickhouse_database
    client = connect(s)
    rel = Releaser(s, client=client)
    draw = rel.plan.zone_traffic_draw("corridor")
    assert draw is not None and rel.plan.zone_draw("corridor") is None
    zones = corridors(client, rel)
    cells = [c for z in zones for c in z.cells]
    windows = [W0 + 60 * k for k in range(12)]
    legacy = W0 + 60 * 12
    insert(client, s, windows, cells)
    insert(client, s, [legacy], cells, legacy=True)
    complete(client, s, legacy + 60)
    assert rel.run_once() == 13

    rows = released(client, db)
    assert {w for w, _ in rows} == set(windows)  # none for the window without bins
    assert client.execute(f"SELECT count() FROM {db}.release_zones") == [(0,)]  # bins only: no devices draw
    for z in zones:
        truth = 3 * np.sum([bins_of(c) for c in z.cells], axis=0)  # 3 partitions
        got = np.sum([rows[(w, z.zone_id)][1] for w in windows], axis=0)
        for w in windows:
            version, bins, sigma, moving, mids, n_cells, _ = rows[(w, z.zone_id)]
            assert version == 1 and n_cells == len(z.cells) == 7 and len(bins) == K
            assert sigma == pytest.approx(draw.params.sigma)  # one draw's σ for the whole corridor
            assert moving == pytest.approx(sum(bins))
            assert list(mids) == pytest.approx(rel.plan.traffic_mids_kmh)
        # Pooled over 12 windows the estimates are unbiased: within 4σ√12 of 12 × the truth.
        assert np.all(np.abs(got - truth * len(windows)) <= 4 * draw.params.sigma * np.sqrt(len(windows)))

    # Ledger: one corridor draw per window with bins, its fingerprint the published draw (zone-id
    # order, zones-major); the legacy window is charged neither bins draw.
    prints = dict(client.execute(
        f"SELECT toUInt32(window_start), groupUniqArray(fingerprint) FROM {db}.release_ledger "
        "WHERE metric = 'traffic.corridor' GROUP BY window_start"
    ))  # fmt: skip
    assert set(prints) == set(windows)
    for w in windows:
        published = np.array([rows[(w, z.zone_id)][1] for z in sorted(zones, key=lambda z: z.zone_id)])
        assert prints[w] == [fingerprint(np.rint(published).astype(np.int64).ravel())]
    charged = dict(client.execute(f"SELECT toUInt32(window_start), rho FROM {db}.release_windows FINAL"))
    assert charged[windows[0]] == pytest.approx(rel.plan.window_charge(("corridor",)))
    assert charged[windows[0]] - charged[legacy] == pytest.approx(draw.charge + rel.plan.traffic_draw.charge)  # type: ignore[union-attr]
    assert charged[legacy] == pytest.approx(rel.plan.window_charge(("corridor",), traffic=False))
    assert spent_on(client, db, ts(W0).date()) <= rel.plan.rho_per_day
    assert double_draws(client, db) == []
    client.disconnect()


def test_corridors_noised_once_under_a_crash_at_every_statement(rs: Settings) -> None:
    """A releaser dying after each statement in turn and a fresh one finishing leave one bin vector
    per (window, corridor) and one fingerprint per ledger family."""
    s, db = rs, rs.clickhouse_database
    client = connect(s)
    rel = Releaser(s, client=client)
    zones = corridors(client, rel)
    cells = [c for z in zones for c in z.cells]
    insert(client, s, [W0], cells)
    complete(client, s, W0 + 60 * 40)
    counter = CrashAfter(client, 10**9)
    assert Releaser(s, client=counter).release_window(W0)  # type: ignore[arg-type]
    statements = counter.calls
    windows = [W0 + 60 * k for k in range(1, statements)]
    insert(client, s, windows, cells)
    for k, w in enumerate(windows, start=1):
        with pytest.raises(Crash):
            Releaser(s, client=CrashAfter(client, k)).release_window(w)  # type: ignore[arg-type]
        assert Releaser(s, client=client).release_window(w)
    doubles = client.execute(
        "SELECT window_start, zone_id, uniqExact(bins_est, bins_sigma, plan) AS n "
        f"FROM {db}.release_zone_traffic GROUP BY window_start, zone_id HAVING n > 1 LIMIT 5"
    )
    assert doubles == [] and double_draws(client, db) == []
    assert len(released(client, db)) == len(zones) * statements  # every window has every corridor
    client.disconnect()


class Recording(CrashAfter):
    """Runs every statement and remembers each one's SQL."""

    def __init__(self, client: Client) -> None:
        super().__init__(client, 10**9)
        self.sql: list[str] = []

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self.sql.append(str(args[0]))
        return super().execute(*args, **kwargs)


def test_a_changed_input_after_the_draw_was_recorded_is_refused(rs: Settings) -> None:
    """A releaser records the window's draws in the ledger and dies; the corridor bins then change
    (a bug upstream). The next releaser's keys follow the exact input, so it draws other noise:
    the ledger check refuses to publish it, and no corridor row or window row is written."""
    s, db = rs, rs.clickhouse_database
    client = connect(s)
    rel = Releaser(s, client=client)
    zones = corridors(client, rel)
    cells = [c for z in zones for c in z.cells]
    insert(client, s, [W0, W0 + 60], cells)
    complete(client, s, W0 + 120)
    recording = Recording(client)
    assert Releaser(s, client=recording).release_window(W0)  # type: ignore[arg-type]
    after_ledger = next(i for i, q in enumerate(recording.sql, start=1) if "release_ledger (" in q)
    corridor_insert = next(i for i, q in enumerate(recording.sql, start=1) if "release_zone_traffic" in q)
    assert after_ledger < corridor_insert < len(recording.sql)
    assert "release_windows" in recording.sql[-1]  # corridors are written before the window is public

    w = W0 + 60
    with pytest.raises(Crash):
        Releaser(s, client=CrashAfter(client, after_ledger)).release_window(w)  # type: ignore[arg-type]
    c = zones[0].cells[0]
    # The same devices, all in the fastest bin.
    insert_exact(client, s, [row(w, c, 0, [0] * (K - 1) + [sum(bins_of(c))])])
    with pytest.raises(DoubleDrawError):
        Releaser(s, client=client).release_window(w)
    assert {x for x, _ in released(client, db)} == {W0}
    assert client.execute(
        f"SELECT count() FROM {db}.release_windows FINAL WHERE window_start = %(w)s", {"w": ts(w)}
    ) == [(0,)]
    client.disconnect()
