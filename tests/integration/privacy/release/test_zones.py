"""Registered zones through the real releaser and ClickHouse (issue #11): zones registered with the
API's store are measured from the next window only, editing a zone changes neither released rows
nor the plan of a released window, a second releaser finishes a claimed window with the zones it
was begun with, and the ledger of a day with zones stays within the budget."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h3
import numpy as np
import orjson
import pytest
from clickhouse_driver import Client

from api.zones import ZoneStore
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import scratch_database
from hexpulse.zones import OPEN_END, ZONE_COLUMNS, Zone
from privacy.release.ledger import fingerprint, spent_on
from privacy.release.releaser import Releaser
from tests.support.clickhouse_users import allow_api
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


@pytest.fixture()
def rs(migrated: Settings, unique_name: str, tmp_path: Path) -> Iterator[Settings]:
    db = f"{migrated.clickhouse_database}_zn{unique_name[-6:]}"
    with scratch_database(release_settings(migrated, db, tmp_path / "keyring.bin")) as s:
        allow_api(s)  # the API's store writes the zones as the API user
        yield s


def outline(cell: int) -> dict[str, Any]:
    """The GeoJSON polygon of an H3 cell's boundary."""
    ring = [[lng, lat] for lat, lng in h3.cell_to_boundary(h3.int_to_str(cell))]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def parent(cell: int, res: int) -> int:
    return int(h3.str_to_int(h3.cell_to_parent(h3.int_to_str(cell), res)))


def devices(cell: int) -> int:
    return 100 + cell % 7


def insert_crowds(client: Client, s: Settings, windows: list[int], cells: set[int]) -> None:
    # Nobody moving: all-zero speed bins, as the aggregate layer writes a still crowd.
    rows = [(ts(w), c, c % 3, devices(c), 0, 0, w, [0, 0, 0, 0]) for w in windows for c in sorted(cells)]
    insert_exact(client, s, rows)


def released(client: Client, db: str) -> dict[tuple[int, str], tuple[Any, ...]]:
    rows = client.execute(
        "SELECT toUInt32(window_start), zone_id, version, count, count_est, count_sigma, count_lo, count_hi, "
        f"cells, plan FROM {db}.release_zones FINAL"
    )
    return {(int(r[0]), str(r[1])): tuple(r[2:]) for r in rows}


def ledger(client: Client, db: str) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    for w, metric, rho in client.execute(
        f"SELECT toUInt32(window_start), metric, sum(rho) FROM {db}.release_ledger "
        "GROUP BY window_start, metric"
    ):
        out.setdefault(int(w), {})[str(metric)] = float(rho)
    return out


def windows_table(client: Client, db: str) -> dict[int, tuple[float, int]]:
    rows = client.execute(f"SELECT toUInt32(window_start), rho, plan FROM {db}.release_windows FINAL")
    return {int(w): (float(rho), int(plan)) for w, rho, plan in rows}


def intents(client: Client, db: str) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for w, text in client.execute(f"SELECT toUInt32(window_start), plan_json FROM {db}.release_intents"):
        out.setdefault(int(w), set()).add(str(text))
    return out


def test_zones_through_the_releaser(rs: Settings) -> None:
    s, db = rs, rs.clickhouse_database
    client = connect(s)
    rel = Releaser(s, client=client)
    plan = rel.plan
    base = [int(c) for c in rel.tree.cells[0]]
    p8 = parent(base[len(base) // 2], 8)
    r7 = parent(p8, 7)
    far8 = parent(base[len(base) // 5], 8)
    assert parent(far8, 7) != r7

    now = [W0 + 30]
    store = ZoneStore(ClickHousePool(s, size=1), s, clock=lambda: datetime.fromtimestamp(now[0], UTC))
    p1 = store.create("crowd", "Plaza", outline(p8), "p1")
    dist = store.create("district", "District", outline(r7), "dist")
    assert int(p1.valid_from.timestamp()) == W0 + 60  # from the next window boundary
    windows = [W0 + 60 * k for k in range(6)]
    far_cells = {c for c in base if parent(c, 8) == far8}
    insert_crowds(client, s, windows, set(dist.cells) | set(p1.cells) | far_cells)

    complete(client, s, W0 + 180)
    assert rel.run_once() == 3
    rows = released(client, db)
    assert {w for w, _ in rows} == {W0 + 60, W0 + 120}  # nothing for W0: the zones came later
    crowd, district = plan.zone_draw("crowd"), plan.zone_draw("district")
    assert crowd is not None and district is not None
    for w in (W0 + 60, W0 + 120):
        for zone, draw in ((p1, crowd), (dist, district)):
            version, count, est, sigma, lo, hi, cells, plan_hash = rows[(w, zone.zone_id)]
            exact = sum(devices(c) for c in zone.cells)
            assert version == 1 and cells == len(zone.cells)
            assert sigma == pytest.approx(draw.params.sigma)  # σ does not grow with the zone's size
            assert abs(est - exact) <= 6 * sigma
            assert count == max(0, int(est)) and lo <= est <= hi
            assert hi - lo == pytest.approx(2 * 1.959963984540054 * sigma)
    # The ledger charges what each window drew: W0 only the cells, later windows both zone sets.
    charged = ledger(client, db)
    assert "zones.crowd" not in charged[W0]
    assert charged[W0 + 60]["zones.crowd"] == pytest.approx(crowd.charge)
    assert charged[W0 + 60]["zones.district"] == pytest.approx(district.charge)
    pub = windows_table(client, db)
    assert pub[W0][0] == pytest.approx(plan.window_charge(()))
    assert pub[W0 + 60][0] == pytest.approx(plan.window_charge(("crowd", "district")))  # no corridors here
    assert pub[W0][1] != pub[W0 + 60][1]  # the zones are part of the plan
    assert rows[(W0 + 60, "p1")][-1] == pub[W0 + 60][1]
    # The ledger's zone fingerprint is the draw that was published (noisy totals, zone-id order).
    for family, zone_set in (("zones.crowd", "crowd"), ("zones.district", "district")):
        ((fp,),) = client.execute(
            f"SELECT any(fingerprint) FROM {db}.release_ledger WHERE window_start = %(w)s AND metric = %(m)s",
            {"w": ts(W0 + 60), "m": family},
        )
        ests = client.execute(
            f"SELECT count_est FROM {db}.release_zones FINAL WHERE window_start = %(w)s AND zone_set = %(s)s "
            "ORDER BY zone_id", {"w": ts(W0 + 60), "s": zone_set},
        )  # fmt: skip
        assert fp == fingerprint(np.array([round(e) for (e,) in ests], dtype=np.int64))
    assert double_draws(client, db) == []
    plan_doc = orjson.loads(next(iter(intents(client, db)[W0 + 60])))
    assert [(z["id"], z["version"]) for z in plan_doc["zones"]] == [("p1", 1), ("dist", 1)]

    # Editing a zone: a new version from the next boundary; released rows and plans do not move.
    before = (released(client, db), windows_table(client, db), intents(client, db))
    now[0] = W0 + 150
    p1v2 = store.replace("p1", "crowd", "Plaza and around", outline(r7))
    assert p1v2.version == 2 and int(p1v2.valid_from.timestamp()) == W0 + 180
    assert rel.run_once() == 0
    assert (released(client, db), windows_table(client, db), intents(client, db)) == before

    # A releaser dies right after claiming W0+180 (its intent names p1 v2 and dist v1). Then a zone
    # appears that would be in effect at W0+180 (a racing registration, written here directly):
    # the next releaser finishes the window with the zones it was begun with, not with its own.
    complete(client, s, W0 + 240)
    with pytest.raises(Crash):
        Releaser(s, client=CrashAfter(client, 7)).release_window(W0 + 180)  # type: ignore[arg-type]
    late = Zone("late", 1, "crowd", "Late", orjson.dumps(outline(far8)).decode(), tuple(sorted(far_cells)),
                datetime.fromtimestamp(W0 + 180, UTC), OPEN_END, 1)  # fmt: skip
    client.execute(f"INSERT INTO zones ({ZONE_COLUMNS}) VALUES", [late.row()])
    assert Releaser(s, client=client).release_window(W0 + 180)
    rows = released(client, db)
    assert {z for w, z in rows if w == W0 + 180} == {"p1", "dist"}
    assert rows[(W0 + 180, "p1")][0] == 2  # version 2, as claimed
    assert abs(rows[(W0 + 180, "p1")][2] - sum(devices(c) for c in p1v2.cells)) <= 6 * crowd.params.sigma
    # The next window, claimed afresh, measures the late zone too.
    complete(client, s, W0 + 300)
    assert rel.run_once() == 1
    assert {z for w, z in released(client, db) if w == W0 + 240} == {"p1", "dist", "late"}
    assert double_draws(client, db) == []  # the finishing releaser reproduced, never re-drew

    # The day's ledger: each window charged what it drew, never above the budget.
    day = ts(W0).date()
    spent = spent_on(client, db, day)
    assert spent == pytest.approx(sum(rho for w, (rho, _) in windows_table(client, db).items()
                                      if ts(w).date() == day))  # fmt: skip
    assert spent <= s.budget_rho_per_day
    client.disconnect()


def test_overlapping_zones_registered_at_once_are_measured_once(rs: Settings) -> None:
    """Two zones of one set overlapping (a race the API's check cannot see): the releaser measures
    the first only, so the set's draw keeps its sensitivity, and says so in the log."""
    s, db = rs, rs.clickhouse_database
    client = connect(s)
    rel = Releaser(s, client=client)
    base = [int(c) for c in rel.tree.cells[0]]
    p8 = parent(base[len(base) // 2], 8)
    cells = tuple(sorted(c for c in base if parent(c, 8) == p8))
    start = datetime.fromtimestamp(W0 - 60, UTC)
    first = Zone("first", 1, "crowd", "First", "{}", cells, start, OPEN_END, 1)
    second = Zone("second", 1, "crowd", "Second", "{}", cells[:3], start.replace(second=1), OPEN_END, 1)
    client.execute(f"INSERT INTO zones ({ZONE_COLUMNS}) VALUES", [first.row(), second.row()])
    insert_crowds(client, s, [W0], set(cells))
    complete(client, s, W0 + 60)
    assert rel.run_once() == 1
    assert {z for _, z in released(client, db)} == {"first"}
    client.disconnect()


def test_noise_once_with_zones_under_a_crash_at_every_statement(rs: Settings) -> None:
    """With zones in effect a window takes one more statement (the release_zones insert); a releaser
    dying after each statement in turn and a fresh one finishing leave one value per (window, zone)
    and one fingerprint per ledger family."""
    s, db = rs, rs.clickhouse_database
    client = connect(s)
    rel = Releaser(s, client=client)
    base = [int(c) for c in rel.tree.cells[0]]
    p8 = parent(base[len(base) // 2], 8)
    cells = tuple(sorted(c for c in base if parent(c, 8) == p8))
    start = datetime.fromtimestamp(W0 - 60, UTC)
    client.execute(f"INSERT INTO zones ({ZONE_COLUMNS}) VALUES",
                   [Zone("z", 1, "crowd", "Z", "{}", cells, start, OPEN_END, 1).row()])  # fmt: skip
    statements = 23  # test_noise_once.STATEMENTS + the zones' read and insert
    windows = [W0 + 60 * k for k in range(statements)]
    insert_crowds(client, s, windows, set(cells))
    complete(client, s, windows[-1] + 60)
    counter = CrashAfter(client, 10**9)
    assert Releaser(s, client=counter).release_window(windows[-1])  # type: ignore[arg-type]
    assert counter.calls == statements
    for k, w in zip(range(1, statements), windows, strict=False):
        with pytest.raises(Crash):
            Releaser(s, client=CrashAfter(client, k)).release_window(w)  # type: ignore[arg-type]
        assert Releaser(s, client=client).release_window(w)
    doubles = client.execute(
        f"SELECT window_start, zone_id, uniqExact(count_est, count_sigma, plan) AS n FROM {db}.release_zones "
        "GROUP BY window_start, zone_id HAVING n > 1"
    )
    assert doubles == [] and double_draws(client, db) == []
    assert len(released(client, db)) == statements  # every window has its zone value
    client.disconnect()
