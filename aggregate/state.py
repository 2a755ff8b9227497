"""The aggregate state of one consumer process: owned partitions, pending writes, counters.

No Kafka client in here: the consumer loop (aggregate/consumer.py) feeds it one poll at a time and
asks it what may be committed. Keeping Kafka out makes replay determinism testable on its own.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field

from aggregate import metrics
from aggregate.bounding import Bounds
from aggregate.exceptions import SinkUnavailableError
from aggregate.sink import PartialsSink
from aggregate.windows import NO_TIME, Closing, PartitionWindows
from hexpulse.logs import log_event
from hexpulse.pings import I64, PingColumns
from hexpulse.settings import Settings
from hexpulse.times import window_start

log = logging.getLogger(__name__)


@dataclass
class Stats:
    """Ping accounting of this process (pings): in = accepted + rejected + late + duplicate,
    where accepted counts pings of windows already closed and written."""

    pings_in: int = 0
    rejected: int = 0
    late: int = 0
    duplicate: int = 0
    accepted: int = 0
    open_pings: int = 0
    dropped_open: int = 0
    closings: int = 0
    partial_rows: int = 0


@dataclass
class Aggregator:
    settings: Settings
    sink: PartialsSink
    topic: str
    partitions: dict[int, PartitionWindows] = field(default_factory=dict)
    pending: deque[Closing] = field(default_factory=deque)
    stats: Stats = field(default_factory=Stats)

    def __post_init__(self) -> None:
        self.bounds = Bounds.from_settings(self.settings)

    def init_partition(self, partition: int, generation: int = 0) -> PartitionWindows:
        """Take a newly owned partition over: resume from progress and claim it with a new epoch
        (``generation``: the Kafka group generation it was assigned in). Raises
        SinkUnavailableError, and then owns nothing: the caller retries."""
        resume = self.sink.load_resume(self.topic, partition)
        epoch = self.sink.claim(self.topic, partition, resume, generation)
        pw = PartitionWindows(
            partition,
            self.settings.window_ms,
            self.settings.lateness_ms,
            self.bounds,
            horizon_ms=NO_TIME if resume.horizon_ms is None else resume.horizon_ms,
            watermark_ms=NO_TIME if resume.watermark_ms is None else resume.watermark_ms,
            epoch=epoch,
            generation=generation,
        )
        self.partitions[partition] = pw
        log_event(
            log, "partition resumed", partition=partition, resumed=resume.horizon_ms is not None, epoch=epoch
        )
        return pw

    def drop_partition(self, partition: int) -> None:
        """Forget a partition (revoked or rewound); its open windows are replayed by the next owner."""
        pw = self.partitions.pop(partition, None)
        dropped = pw.buffered if pw is not None else 0
        dropped += sum(c.pings for c in self.pending if c.partition == partition)
        self.stats.dropped_open += dropped
        self.stats.open_pings -= dropped
        self.pending = deque(c for c in self.pending if c.partition != partition)
        self._gauge()

    def add(
        self,
        partition: int,
        pings: PingColumns,
        record_ts: I64,
        next_offset: int,
        pings_in: int,
        rejected: int,
    ) -> None:
        """Feed one poll of one partition: accepted pings from ingest, the record timestamp (ms) of
        each ping's record, and the poll's counts."""
        pw = self.partitions[partition]
        res = pw.add(pings, record_ts, next_offset)
        self.stats.pings_in += pings_in
        self.stats.rejected += rejected
        self.stats.late += res.late
        self.stats.open_pings += res.accepted
        metrics.count_outcome("late", res.late)
        self._take(pw)

    def idle_close(self, partition: int, now_ms: int) -> None:
        """Close windows of a quiet partition up to the wall-clock floor of ``now_ms`` − lateness."""
        pw = self.partitions[partition]
        w = self.settings.window_ms
        if pw.idle_advance(window_start(now_ms - self.settings.lateness_ms, w)):
            self._take(pw)

    def _take(self, pw: PartitionWindows) -> None:
        closing = pw.take_closing()
        if closing is not None:
            self.pending.append(closing)
        self._gauge()

    def _gauge(self) -> None:
        metrics.BUFFERED_PINGS.set(self.stats.open_pings)

    def flush(self) -> None:
        """Write every pending closing (partials first, then progress); raises SinkUnavailableError."""
        if not self.pending:
            return
        batch = list(self.pending)
        started = time.monotonic()
        try:
            self.sink.write(self.topic, batch)
        except SinkUnavailableError:
            metrics.SINK_FAILURES.inc()
            raise
        metrics.FLUSH_SECONDS.observe(time.monotonic() - started)
        for closing in batch:
            self.pending.popleft()
            metrics.WINDOWS_FLUSHED.labels(closed_by=closing.closed_by).inc()
            metrics.PARTIAL_ROWS.inc(len(closing.partials))
            dup = closing.partials.duplicates
            self.stats.duplicate += dup
            self.stats.accepted += closing.pings - dup
            self.stats.open_pings -= closing.pings
            self.stats.closings += 1
            self.stats.partial_rows += len(closing.partials)
            metrics.count_outcome("duplicate", dup)
            metrics.count_outcome("accepted", closing.pings - dup)
            metrics.WATERMARK_LAG.labels(partition=str(closing.partition)).set(
                max(0.0, time.time() - closing.watermark_ms / 1000)
            )
        self._gauge()

    def committable(self) -> dict[int, int]:
        """Offsets safe to commit: the first offset of the oldest unwritten window per partition."""
        blocked = {c.partition for c in self.pending}
        out: dict[int, int] = {}
        for p, pw in self.partitions.items():
            if p in blocked:
                continue
            off = pw.first_open_offset()
            if off is not None:
                out[p] = off
        return out
