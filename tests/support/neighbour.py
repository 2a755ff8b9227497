"""Machinery of the neighbour test (issue #9): a gateway, a partitioned log and the consume loop,
all in process, around the real ingest and aggregate code.

A stream is a list of :class:`Upload` (one device message reaching the gateway). The gateway
stamps each record with its arrival time, like the broker's LogAppendTime, and places it where
Kafka's default partitioner would, unless the upload names another partition (a producer with
another partitioner). :func:`consume` then plays the consume loop against that log on a wall
clock that ticks every ``tick_ms``: poll what has arrived (in small polls), ingest, add to the
windows, close quiet partitions on the idle timeout, write, commit; and, at scheduled instants,
crash (before the write, between the partials and the progress insert, before the commit) or
lose the partitions to a new owner while the old one goes on writing once (a zombie). The tables
are kept in memory by :class:`MemorySink`, whose resume and claim logic is the real sink's. The
result is what the releaser would sum: per (window, cell), the partials of each partition's
counted closing (hexpulse/store/progress.py).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import orjson
from kafka.partitioner.default import murmur2

from aggregate.presence import NO_TOURISM, TourismZones
from aggregate.sink import PartialsSink, moving_columns, progress_row
from aggregate.state import Aggregator
from aggregate.windows import Closing
from hexpulse.pings import PingColumns
from hexpulse.settings import Settings
from hexpulse.store.progress import Coverage, ProgressRow
from ingest import Ingestor
from privacy.release.traffic_bound import DayCounts, MovingRows, bins_of_rows, bound_window
from tests.support.aggregate_reference import Ping, reference
from tests.support.ingest import INSIDE

Key = tuple[int, int]  # (window_start_ms, cell)
Sums = dict[Key, tuple[int, int, int]]  # (devices, moving, speed_sum km/h)
Bins = dict[Key, tuple[int, ...]]  # moving devices per speed bin
Crash = Literal["before_flush", "partials_only", "before_commit", "zombie"]
TOPIC = "pings"


@dataclass(frozen=True)
class Upload:
    """One message reaching the gateway at ``arrival_ms`` (its record timestamp)."""

    arrival_ms: int
    device: str
    value: bytes
    partition: int | None = None  # where a producer with another partitioner put it


@dataclass(frozen=True)
class Record:
    """A record of the log, with the fields ingest reads."""

    partition: int
    offset: int
    timestamp: int
    key: bytes
    value: bytes


def home(device: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (kafka-python's murmur2) picks for a device."""
    return (murmur2(device.encode()) & 0x7FFFFFFF) % partitions


def place(uploads: Iterable[Upload], partitions: int) -> list[Record]:
    """The log: records in arrival order, offsets counted per partition."""
    next_offset: dict[int, int] = defaultdict(int)
    out = []
    for u in sorted(uploads, key=lambda u: u.arrival_ms):
        p = home(u.device, partitions) if u.partition is None else u.partition
        out.append(Record(p, next_offset[p], u.arrival_ms, u.device.encode(), u.value))
        next_offset[p] += 1
    return out


def ping(ts: int, k: int = 0, spd: float | None = None) -> dict[str, object]:
    """A ping in the k-th (mod 7) of a row of cells ~350 m apart, inside the service area."""
    p: dict[str, object] = {"ts": ts, "lat": round(INSIDE[0] + 0.0032 * (k % 7), 6), "lon": INSIDE[1]}
    if spd is not None:
        p["spd"] = spd
    return p


def message(device: str, pings: list[dict[str, object]]) -> bytes:
    """A single-ping message for one ping, a batch for more."""
    if len(pings) == 1:
        return orjson.dumps({"v": 1, "device": device, **pings[0]})
    return orjson.dumps({"v": 1, "device": device, "pings": pings})


class MemorySink(PartialsSink):
    """``partials``, ``tourism_presence``, ``traffic_moving`` and ``progress`` in memory; resume,
    claim, the presence and the moving rows are the real sink's code."""

    def __init__(self, settings: Settings, tourism: TourismZones = NO_TOURISM) -> None:
        super().__init__(settings, tourism)
        # (window ms, zone, partition, closing, pseudonym)
        self.presence_rows: set[tuple[int, str, int, int, int]] = set()
        self.progress: list[ProgressRow] = []
        self.partials: dict[tuple[int, int, int, int], tuple[int, int, int]] = {}
        self.bins: dict[tuple[int, int, int, int], tuple[int, ...]] = {}
        # (window s, partition, closing, pseudonym, cell) → speed bin
        self.moving: dict[tuple[int, int, int, int, int], int] = {}

    def write(self, topic: str, closings: list[Closing]) -> None:
        self.write_partials(closings)
        self.progress.extend(progress_row(c) for c in closings)

    def write_partials(self, closings: list[Closing]) -> None:
        """The first half of :meth:`write`, as a process killed between its two inserts leaves it."""
        for c in closings:
            rows = zip(c.partials.rows(), c.partials.speed_bins.tolist(), strict=True)
            for (w, cell, d, m, sp), bins in rows:
                self.partials[(w, cell, c.partition, c.closing_id)] = (d, m, sp)
                self.bins[(w, cell, c.partition, c.closing_id)] = tuple(bins)
            pres = self.presence(c)
            wins, devs = pres.window_start_ms.tolist(), pres.device.tolist()
            for w, zone, dev in zip(wins, pres.zone_id, devs, strict=True):
                self.presence_rows.add((w, zone, c.partition, c.closing_id, dev))
            ws, ps, cs, ds, cells, bins_ = moving_columns(c)
            for w, p, closing, dev, cell, b in zip(ws, ps, cs, ds, cells, bins_, strict=True):
                self.moving[(w, p, closing, dev, cell)] = b

    def _progress(self, topic: str, partition: int) -> list[ProgressRow]:
        return [r for r in self.progress if r.partition == partition]

    def close(self) -> None:
        pass

    def counted(self) -> Sums:
        """Per (window, cell), the sum over partitions of each one's counted closing's partials."""
        cov = Coverage(self.progress)
        out: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
        for (w, cell, p, closing), vals in self.partials.items():
            c = cov.counted(p, w)
            if c is not None and c.closing == closing:
                row = out[(w, cell)]
                for i, v in enumerate(vals):
                    row[i] += v
        return {k: (v[0], v[1], v[2]) for k, v in out.items()}

    def counted_presence(self) -> set[tuple[int, str, int]]:
        """The presence rows the daily releaser counts: (window start s, zone, pseudonym)."""
        cov = Coverage(self.progress)
        out = set()
        for w, zone, p, closing, dev in self.presence_rows:
            c = cov.counted(p, w)
            if c is not None and c.closing == closing:
                out.add((w // 1000, zone, dev))
        return out

    def counted_bins(self) -> Bins:
        """Per (window, cell), the speed bins summed over partitions' counted closings."""
        cov = Coverage(self.progress)
        out: dict[Key, np.ndarray] = {}
        for (w, cell, p, closing), vals in self.bins.items():
            c = cov.counted(p, w)
            if c is not None and c.closing == closing:
                out[(w, cell)] = out.get((w, cell), 0) + np.asarray(vals, np.int64)
        return {k: tuple(int(x) for x in v) for k, v in out.items()}


    def counted_moving(self) -> dict[int, MovingRows]:
        """Per window start (s), the ``traffic_moving`` rows of its counted closings."""
        cov = Coverage(self.progress)
        out: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
        for (w, p, closing, dev, cell), b in self.moving.items():
            c = cov.counted(p, w * 1000)
            if c is not None and c.closing == closing:
                out[w].append((dev, cell, b))
        return {w: _moving_rows(rows) for w, rows in out.items()}


def _moving_rows(rows: list[tuple[int, int, int]]) -> MovingRows:
    dev, cell, b = zip(*rows, strict=True)
    return MovingRows(np.array(dev, np.uint64), np.array(cell, np.uint64), np.array(b, np.int64))


def bounded_bins(
    moving: dict[int, MovingRows], base: np.ndarray, bins: int, limit: int, window_s: int
) -> dict[int, np.ndarray]:
    """Per window start (s), the (base cells × bins) matrix the releaser draws the traffic products
    from: the moving rows its per-device-day bound keeps (privacy/release/traffic_bound.py), windows
    taken in time order as the releaser does."""
    out: dict[int, np.ndarray] = {}
    counts: DayCounts | None = None
    for w in sorted(moving):
        if counts is None or counts.day != w // 86_400:
            counts = DayCounts.empty(w // 86_400, w)
        kept = bound_window(counts, moving[w], limit, w + window_s)
        counts = kept.counts
        out[w] = bins_of_rows(base, kept.rows, bins)
    return out


def bins_l2(a: Bins, b: Bins) -> float:
    """The largest per-window L2 norm, over every (cell, bin) entry, of the difference of two
    outputs' speed bins: what one bin vector per cell costs in the accounting (≤ √L)."""
    per_window: dict[int, float] = defaultdict(float)
    for key in a.keys() | b.keys():
        k = len(a.get(key) or b[key])
        diff = np.asarray(a.get(key, (0,) * k)) - np.asarray(b.get(key, (0,) * k))
        per_window[key[0]] += float((diff**2).sum())
    return math.sqrt(max(per_window.values(), default=0.0))


@dataclass
class _Owner:
    """One consumer process holding every partition."""

    agg: Aggregator
    position: dict[int, int]
    last_seen: dict[int, int]


@dataclass(frozen=True)
class Schedule:
    """The wall clock of the consume loop: a tick every ``tick_ms`` (ms) polling ``poll_records``
    records at a time, and the ticks at which the process holding the partitions fails."""

    tick_ms: int = 5_000
    poll_records: int = 3
    crashes: tuple[tuple[int, Crash], ...] = field(default=())


def consume(
    records: list[Record],
    settings: Settings,
    ingestor: Ingestor,
    schedule: Schedule,
    sink: MemorySink | None = None,
) -> MemorySink:
    """Play the consume loop over the log until every window is closed (see the module docstring)."""
    parts = settings.topic_partitions
    sink = sink or MemorySink(settings)
    logs = {p: [r for r in records if r.partition == p] for p in range(parts)}
    committed = dict.fromkeys(range(parts), 0)
    first = min((r.timestamp for r in records), default=0)
    last = max((r.timestamp for r in records), default=0)
    tick = schedule.tick_ms
    start = first // tick * tick
    # Late enough for the final idle close to pass every window a ping may claim (clock skew).
    idle_ms = int(settings.idle_timeout_s * 1000)
    end = last + settings.max_clock_skew_s * 1000 + settings.window_ms + settings.lateness_ms + 2 * idle_ms
    crash_at: dict[int, Crash] = {}
    for at, how in schedule.crashes:
        crash_at.setdefault(max(start, min(at, end)) // tick * tick, how)

    def take_over(now: int, generation: int) -> _Owner:
        agg = Aggregator(settings, sink, TOPIC)
        for p in range(parts):
            agg.init_partition(p, generation)
        return _Owner(agg, dict(committed), dict.fromkeys(range(parts), now))

    owner = take_over(start, 1)
    generation = 1
    for now in range(start, end + tick, tick):
        for p in range(parts):
            pos = owner.position[p]
            ready = [r for r in logs[p][pos:] if r.timestamp <= now]
            for i in range(0, len(ready), schedule.poll_records):
                poll = ready[i : i + schedule.poll_records]
                got = ingestor.ingest(TOPIC, p, poll, None)
                owner.agg.add(
                    p, PingColumns.of(got), got.record_ts, poll[-1].offset + 1, got.pings_in, got.rejected
                )
                owner.last_seen[p] = now
            owner.position[p] = pos + len(ready)
            caught_up = owner.position[p] == len(logs[p]) or logs[p][owner.position[p]].timestamp > now
            if caught_up and now - owner.last_seen[p] >= idle_ms:
                owner.agg.idle_close(p, now)
                owner.last_seen[p] = now
        how = crash_at.get(now)
        if how == "zombie":
            generation += 1
            successor = take_over(now, generation)  # the rebalance: claims land first
            owner.agg.flush()  # the old owner writes once more, then is gone
            owner = successor
            continue
        if how == "before_flush":
            owner = take_over(now, generation)
            continue
        if how == "partials_only":
            sink.write_partials(list(owner.agg.pending))
            owner = take_over(now, generation)
            continue
        owner.agg.flush()
        if how == "before_commit":
            owner = take_over(now, generation)
            continue
        committed.update(owner.agg.committable())
    assert not owner.agg.pending and all(pw.buffered == 0 for pw in owner.agg.partitions.values())
    return sink


def reference_sums(
    records: list[Record],
    settings: Settings,
    ingestor: Ingestor,
    rule: Literal["record", "event_time"],
) -> Sums:
    """The plain reference of tests/support/aggregate_reference.py over the same ingest output:
    one poll per partition, no faults; ``rule="event_time"`` is the windowing before issue #9."""
    out: dict[Key, list[int]] = defaultdict(lambda: [0, 0, 0])
    for p in range(settings.topic_partitions):
        mine = [r for r in records if r.partition == p]
        if not mine:
            continue
        got = ingestor.ingest(TOPIC, p, mine, None)
        rows = [
            Ping(o, d, t, la, lo, sp, c, rt)
            for o, d, t, la, lo, sp, c, rt in zip(
                got.offset.tolist(),
                got.device.tolist(),
                got.ts_ms.tolist(),
                got.lat.tolist(),
                got.lon.tolist(),
                got.speed.tolist(),
                got.cell.tolist(),
                got.record_ts.tolist(),
                strict=True,
            )
        ]
        sums, _, _ = reference(
            rows,
            settings.window_ms,
            settings.lateness_ms,
            cells=settings.cells_per_window,
            wpd=settings.windows_per_device_day,
            clamp=settings.speed_clamp_mps,
            moving=settings.moving_speed_mps,
            rule=rule,
        )
        for k, v in sums.items():
            row = out[k]
            for i, x in enumerate(v):
                row[i] += x
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


@dataclass(frozen=True)
class Distance:
    """How far apart two outputs are, per the accounting's units (see :func:`distance`)."""

    worst_count_l2: float  # largest per-window L2 norm over cells of the devices (or moving) change
    worst_speed_l2: float  # same for speed sums, km/h
    windows: int  # windows in which anything changed
    windows_changed: tuple[int, ...]

    def within(self, settings: Settings) -> bool:
        """True if the change is within what one device-day may cause and the ledger charges."""
        root_l = math.sqrt(settings.cells_per_window)
        speed = root_l * math.floor(settings.speed_clamp_mps * 3.6 + 0.5)
        return (
            self.worst_count_l2 <= root_l + 1e-9
            and self.worst_speed_l2 <= speed + 1e-9
            and self.windows <= settings.windows_per_device_day
        )


def distance(a: Sums, b: Sums) -> Distance:
    """Per window, the L2 norms over cells of the difference of each metric."""
    per_window: dict[int, list[Any]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for key in a.keys() | b.keys():
        va, vb = a.get(key, (0, 0, 0)), b.get(key, (0, 0, 0))
        acc = per_window[key[0]]
        for i in range(3):
            acc[i] += float(va[i] - vb[i]) ** 2
    changed = tuple(sorted(w for w, acc in per_window.items() if any(acc)))
    counts = [math.sqrt(max(acc[0], acc[1])) for acc in per_window.values()]
    speeds = [math.sqrt(acc[2]) for acc in per_window.values()]
    return Distance(max(counts, default=0.0), max(speeds, default=0.0), len(changed), changed)
