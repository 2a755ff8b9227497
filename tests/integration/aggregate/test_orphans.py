"""Orphan partials and fenced owners against the real ClickHouse (issue #9, hole 4).

Both cases use the real aggregate state, sink and releaser; only Kafka is left out (the records
are fed in process, as the consume loop would feed them). In each, one device ends up with
partial rows in two cells of one window; the releaser must count it once, in the cell of the
closing that ``progress`` vouches for.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h3
import pytest
from pydantic import SecretStr

from aggregate.exceptions import SinkUnavailableError
from aggregate.sink import PartialsSink
from aggregate.state import Aggregator
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.scratch import create_database, drop_database
from privacy.release.releaser import Releaser
from tests.support.aggregate import TEST_KEY
from tests.support.aggregate_reference import Ping, columns

pytestmark = pytest.mark.integration

W_S = 1_900_000_020  # a window start (s) of 10 s windows, in 2030
W = W_S * 1000
LAT, LON = 23.13, 113.32
C1 = h3.str_to_int(h3.latlng_to_cell(LAT, LON, 9))
C2 = h3.str_to_int(h3.latlng_to_cell(LAT + 0.004, LON, 9))
X, Y = 11, 12  # pseudonyms
NAN = math.nan


@pytest.fixture()
def s(migrated: Settings, unique_name: str, tmp_path: Path) -> Iterator[Settings]:
    own = migrated.model_copy(
        update={
            "master_key": SecretStr(TEST_KEY),  # the releaser's release-noise key ring
            "keyring_path": tmp_path / "keyring.bin",
            "clickhouse_database": f"hexorphan_{unique_name.replace('-', '_')}",
            "topic_pings": f"orphans-{unique_name}",
            "topic_partitions": 1,
            "window_s": 10,
            "lateness_s": 5,
            "windows_per_device_day": 8640,
        }
    )
    create_database(own)
    yield own
    drop_database(own)


class CrashBeforeProgress(PartialsSink):
    """Dies (as a process would) after the partials insert and before the progress insert."""

    def _execute(self, what: str, sql: str, params: Any = None, *, columnar: bool = False) -> Any:
        if what == "insert into progress" and "'claim'" not in repr(params):
            raise SinkUnavailableError("killed between the partials and the progress insert")
        return super()._execute(what, sql, params, columnar=columnar)


def ping(offset: int, device: int, ts: int, cell: int, record_ts: int) -> Ping:
    lat = LAT if cell == C1 else LAT + 0.004
    return Ping(offset, device, ts, lat, LON, NAN, cell, record_ts)


def feed(agg: Aggregator, pings: list[Ping]) -> None:
    cols, stamps = columns(pings)
    agg.add(0, cols, stamps, pings[-1].offset + 1, len(pings), 0)


def released_devices(s: Settings) -> dict[int, int]:
    """What the releaser would noise for the window: devices per cell, from counted closings."""
    rel = Releaser(s)
    exact = rel.read_exact(W_S)
    base = rel.tree.cells[0].tolist()
    return {base[i]: int(v) for i, v in enumerate(exact["count"].tolist()) if v}


def all_rows(s: Settings) -> dict[int, int]:
    """Every stored partial row of the window, summed per cell whichever closing wrote it."""
    client = connect(s)
    rows = client.execute(
        f"SELECT cell, sum(devices) FROM {s.exact_database}.partials FINAL WHERE window_start = %(w)s "
        "GROUP BY cell",
        {"w": datetime.fromtimestamp(W_S, UTC).replace(tzinfo=None)},
    )
    client.disconnect()
    return {int(c): int(d) for c, d in rows}


def test_orphan_partials_do_not_count(s: Settings) -> None:
    """Idle close + crash + late data: owner A idle-closes the window with X in C1, writes the
    partials and dies before the progress row. Then records of X in C2 arrive that the gateway
    stamped (CreateTime) before the window's end + lateness but appended late; owner B replays the
    partition, sees X mostly in C2 and closes the window there. Both sets of rows are stored; only
    B's closing is in progress, so X is counted once, in C2."""
    a = Aggregator(s, CrashBeforeProgress(s), s.topic_pings)
    a.init_partition(0)
    first = [ping(0, X, W + 1000, C1, W + 1500), ping(1, Y, W + 2000, C1, W + 2500)]
    feed(a, first)
    a.idle_close(0, W + 10_000 + 5_000 + 100)  # quiet partition: the wall clock closes the window
    with pytest.raises(SinkUnavailableError):
        a.flush()
    assert all_rows(s) == {C1: 2}  # the orphan rows are in the table

    late = [ping(2, X, W + 3000, C2, W + 3200), ping(3, X, W + 4000, C2, W + 3300)]
    closer = [ping(4, Y, W + 16_000, C2, W + 16_000)]  # moves the clock past the window
    b = Aggregator(s, PartialsSink(s), s.topic_pings)
    assert b.init_partition(0).epoch == 2  # nothing committed: B replays from the start
    feed(b, first + late + closer)
    b.flush()
    assert all_rows(s) == {C1: 2 + 1, C2: 1}  # X has rows in both cells, Y in C1 twice
    assert released_devices(s) == {C1: 1, C2: 1}  # counted: Y in C1, X once, in C2
    assert Releaser(s).complete_before() == W_S + 10


def test_zombie_after_rebalance_does_not_count(s: Settings) -> None:
    """Owner A loses the partition in a rebalance but keeps writing (a zombie) after B claimed
    it. A's idle close of the window is fenced: the window stays incomplete until B closes it, and
    then only B's rows count."""
    a = Aggregator(s, PartialsSink(s), s.topic_pings)
    a.init_partition(0, generation=7)
    early = [ping(0, X, W + 1000, C1, W + 1500), ping(1, Y, W + 2000, C1, W + 2500)]
    feed(a, early)

    b = Aggregator(s, PartialsSink(s), s.topic_pings)
    b.init_partition(0, generation=8)  # the rebalance: B claims, resuming where progress says

    a.idle_close(0, W + 15_100)  # the zombie closes the window and writes partials and progress
    a.flush()
    assert all_rows(s) == {C1: 2}
    rel = Releaser(s)
    assert rel.complete_before() is None and rel.pending_windows() == []
    assert released_devices(s) == {}  # A's rows never count

    # B replays from the commit (nothing committed: offset 0) and sees more of X, in C2.
    more = [ping(2, X, W + 5000, C2, W + 3000), ping(3, X, W + 6000, C2, W + 3100)]
    feed(b, early + more + [ping(4, Y, W + 16_000, C2, W + 16_000)])
    b.flush()
    assert Releaser(s).complete_before() == W_S + 10
    assert released_devices(s) == {C1: 1, C2: 1}  # Y in C1, X once, in C2 (B's closing)
    assert all_rows(s) == {C1: 2 + 1, C2: 1}
