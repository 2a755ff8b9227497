"""The consume loop: one member of the consumer group, Kafka → ingest → windows → ClickHouse.

Exactly-once reasoning (docs/ARCHITECTURE.md): offsets are committed only up to the first offset
of the oldest window not yet written, after the DLQ is flushed; partials are written before the
progress row; a (re)assigned partition resumes horizon and watermark from its latest progress
row, so whatever a crash, restart or rebalance loses is replayed into identical rows.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from aggregate import metrics
from aggregate.columns import Pings
from aggregate.exceptions import SinkUnavailableError
from aggregate.quarantine import Quarantine
from aggregate.rebalance import RebalanceListener
from aggregate.sink import PartialsSink
from aggregate.state import Aggregator
from hexpulse.kafka import make_consumer
from hexpulse.kafka_records import CorruptBatchError, guard_corrupt_batches, prefetch, use_fast_records
from hexpulse.logs import log_event
from hexpulse.settings import Settings
from ingest import Ingestor
from ingest.exceptions import DeadLetterError

log = logging.getLogger(__name__)

COMMIT_INTERVAL_S = 2.0
"""Most time between commits while offsets move without a window closing, seconds."""


@dataclass
class LoopStats:
    """Throughput of one run (monotonic seconds; records and pings seen)."""

    records: int = 0
    pings: int = 0
    first_record_s: float | None = None
    last_record_s: float | None = None
    last_flush_s: float | None = None


class ConsumeLoop:
    """Run with :meth:`run`; stop by setting ``stop`` (signal handlers do) or ``stop_when``."""

    def __init__(
        self,
        settings: Settings,
        ingestor: Ingestor,
        sink: PartialsSink | None = None,
        *,
        stop: threading.Event | None = None,
        stop_when: Callable[[ConsumeLoop], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.topic = settings.topic_pings
        self.ingestor = ingestor
        self.sink = sink or PartialsSink(settings)
        self.agg = Aggregator(settings, self.sink, self.topic)
        self.stop = stop or threading.Event()
        self.stop_when = stop_when
        self.stats = LoopStats()
        self.closers: list[Callable[[], None]] = []  # run by the owner after run() returns
        self.consumer: KafkaConsumer | None = None
        self._uninit: set[int] = set()
        self._last_seen: dict[int, float] = {}
        self._committed: dict[int, int] = {}
        self._sink_down_until = 0.0
        self._flush_started = 0.0
        self._backoff_s = 0.0
        self._paused_for_sink = False
        self._last_commit = 0.0
        self._init_retry_at = 0.0
        # kafka-python 3 runs rebalance callbacks on its IO thread, possibly while this thread is
        # between two calls: one lock guards the aggregate state; Kafka network calls are made
        # outside it (a callback holding the IO loop would otherwise wait for us, and we for it).
        self._lock = threading.RLock()
        self._generation = 0
        self._dlq_backoff_s = 0.0
        self._deadline: float | None = None  # set at shutdown: every wait after it ends by then
        self._run_thread: threading.Thread | None = None
        self._quarantine = Quarantine()

    # ---- Kafka ---------------------------------------------------------------------------------
    def _tp(self, p: int) -> TopicPartition:
        return TopicPartition(self.topic, p)

    def _open(self) -> KafkaConsumer:
        c = make_consumer(
            self.settings,
            group_id=self.settings.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.settings.consumer_max_poll_records,
            max_partition_fetch_bytes=self.settings.consumer_fetch_bytes,
            fetch_max_bytes=max(self.settings.consumer_fetch_bytes, 52_428_800),
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
        )
        if not (self.settings.consumer_fast_decode and use_fast_records(c)):
            guard_corrupt_batches(c)
        c.subscribe([self.topic], listener=RebalanceListener(self))
        return c

    def on_revoked(self, partitions: list[int], *, lost: bool = False) -> None:
        """Write what is closed, commit, forget the rest (the next owner replays it)."""
        with self._lock:
            self._generation += 1
            if not lost:
                # On failure nothing is committed: the next owner replays and rewrites the rows.
                with contextlib.suppress(SinkUnavailableError):
                    self.agg.flush()
                # kafka-python 3 may run this callback on its IO thread, which refuses blocking
                # calls such as commit(); then the next owner replays from the last commit instead.
                if threading.current_thread() is self._run_thread:
                    self._commit(force=True, only=set(partitions), rewind=False)
            self._quarantine.forget(partitions)
            for p in partitions:
                self.agg.drop_partition(p)
                self._uninit.discard(p)
                self._last_seen.pop(p, None)
                self._committed.pop(p, None)
        log_event(log, "partitions revoked", partitions=sorted(partitions), lost=lost)

    def on_assigned(self, partitions: list[int]) -> None:
        """Pause new partitions until their progress row is read (see :meth:`_init_partitions`)."""
        with self._lock:
            self._generation += 1
            fresh = [p for p in partitions if p not in self.agg.partitions]
            self._uninit.update(fresh)
            if fresh and self.consumer is not None:
                self.consumer.pause(*[self._tp(p) for p in fresh])
        log_event(log, "partitions assigned", partitions=sorted(partitions))

    def _init_partitions(self) -> None:
        """Resume newly assigned partitions: seek to the committed offset, then read progress.

        The seek matters: kafka-python keeps the fetch position of a partition that a rebalance
        revoked and handed straight back, but we dropped its open windows, so it must re-read them
        from the commit. Committed offset first, progress second: a commit never runs ahead of the
        progress row written before it.
        """
        if not self._uninit or time.monotonic() < self._init_retry_at or self.consumer is None:
            return
        with self._lock:
            todo = sorted(self._uninit)
            generation = self._generation
        for p in todo:
            tp = self._tp(p)
            try:
                committed = self.consumer.committed(tp, timeout_ms=5000)
            except KafkaError:
                self._init_retry_at = time.monotonic() + 1.0
                return
            with self._lock:
                if self._generation != generation or p not in self._uninit:
                    return
                try:
                    self.agg.init_partition(p)
                except SinkUnavailableError:
                    self._init_retry_at = time.monotonic() + 1.0
                    return
                if committed is None:
                    self.consumer.seek_to_beginning(tp)
                else:
                    self.consumer.seek(tp, committed)
                self._uninit.discard(p)
                self._last_seen[p] = time.monotonic()
                if not self._paused_for_sink:
                    self.consumer.resume(tp)

    def _commit(
        self,
        *,
        force: bool = False,
        only: set[int] | None = None,
        timeout_s: float = 10.0,
        rewind: bool = True,
    ) -> None:
        """Commit what :meth:`Aggregator.committable` allows, after the DLQ is acknowledged.

        ``rewind=False`` (rebalance callback, shutdown): a DLQ failure only skips the commit.
        """
        if self.consumer is None:
            return
        now = time.monotonic()
        if not force and now - self._last_commit < COMMIT_INTERVAL_S:
            return
        if self._deadline is not None:
            timeout_s = max(0.1, min(timeout_s, self._deadline - now))
        with self._lock:
            offsets = {
                p: off
                for p, off in self.agg.committable().items()
                if (only is None or p in only) and off > self._committed.get(p, -1)
            }
        if not offsets:
            return
        try:
            self.ingestor.flush(timeout_s)
        except DeadLetterError as exc:
            if not rewind:
                log_event(log, "dlq flush failed; not committing", logging.WARNING, error=str(exc))
                return
            # Without the dead letters acknowledged the offsets must not move: re-read from the
            # commit, after a growing pause so a broken DLQ does not turn into a tight replay loop.
            self._dlq_backoff_s = min(self.settings.sink_retry_max_s, max(0.5, self._dlq_backoff_s * 2))
            log_event(
                log,
                "dlq flush failed; rewinding",
                logging.WARNING,
                error=str(exc),
                retry_in_s=round(self._dlq_backoff_s, 2),
            )
            self._rewind()
            self._init_retry_at = time.monotonic() + self._dlq_backoff_s
            return
        self._dlq_backoff_s = 0.0
        try:
            self.consumer.commit(
                {self._tp(p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()},
                timeout_ms=int(timeout_s * 1000),
            )
        except KafkaError as exc:
            log_event(log, "commit failed", logging.WARNING, error=type(exc).__name__)
            return
        with self._lock:
            self._committed.update({p: o for p, o in offsets.items() if p in self.agg.partitions})
        self._last_commit = now

    def _rewind(self) -> None:
        """Drop all state and re-read from the last commit (used when a DLQ write is lost)."""
        if self.consumer is None:
            return
        with self._lock:
            self._generation += 1
            owned = list(self.agg.partitions)
            for p in owned:
                self.agg.drop_partition(p)
                self._uninit.add(p)
                self._committed.pop(p, None)
            self.consumer.pause(*[self._tp(p) for p in owned])
        for p in owned:
            tp = self._tp(p)
            try:
                committed = self.consumer.committed(tp, timeout_ms=5000)
                if committed is None:
                    self.consumer.seek_to_beginning(tp)
                else:
                    self.consumer.seek(tp, committed)
            except (KafkaError, AssertionError, ValueError):
                pass  # no longer ours: the new owner starts from the commit anyway

    # ---- ClickHouse backpressure ---------------------------------------------------------------
    def _flush(self, behind: bool = False) -> None:
        """Write pending closings; while ``behind`` (a backlog), at most every ``flush_interval_s``.

        Each write is a few ClickHouse round trips whatever its size, so a consumer catching up
        coalesces the windows it closes; one that is caught up writes at once (release latency).
        """
        if not self.agg.pending or time.monotonic() < self._sink_down_until:
            return
        if behind and time.monotonic() - self._flush_started < self.settings.flush_interval_s:
            return
        self._flush_started = time.monotonic()
        try:
            with self._lock:
                self.agg.flush()
            self.stats.last_flush_s = time.monotonic()
        except SinkUnavailableError as exc:
            self._backoff_s = min(self.settings.sink_retry_max_s, max(0.25, self._backoff_s * 2))
            self._sink_down_until = time.monotonic() + self._backoff_s
            if not self._paused_for_sink and self.consumer is not None:
                self.consumer.pause(*[self._tp(p) for p in self.agg.partitions])
                self._paused_for_sink = True
                metrics.PAUSED.set(1)
            log_event(
                log,
                "clickhouse write failed; partitions paused",
                logging.WARNING,
                error=str(exc),
                retry_in_s=round(self._backoff_s, 2),
            )
            return
        self._backoff_s = 0.0
        if self._paused_for_sink and self.consumer is not None:
            self.consumer.resume(*[self._tp(p) for p in self.agg.partitions])
            self._paused_for_sink = False
            metrics.PAUSED.set(0)
            log_event(log, "clickhouse back; partitions resumed")
        self._commit(force=True)

    # ---- corrupt batches ---------------------------------------------------------------------
    def _hold(self, exc: CorruptBatchError) -> None:
        """Stop the partition at the corrupt batch; the others go on (aggregate/quarantine.py)."""
        p = self._quarantine.hold(exc)
        if self.consumer is not None and p in self.agg.partitions:
            self.consumer.pause(self._tp(p))

    def _retry_held(self) -> None:
        for p in self._quarantine.due():
            # Partitions being initialised or paused for ClickHouse are resumed by that path.
            ours = p in self.agg.partitions and p not in self._uninit
            if self.consumer is not None and ours and not self._paused_for_sink:
                self.consumer.resume(self._tp(p))

    # ---- idle close ----------------------------------------------------------------------------
    def _idle(self) -> None:
        if self.consumer is None or self._paused_for_sink:
            return
        now = time.monotonic()
        with self._lock:
            quiet = [
                p
                for p in self.agg.partitions
                if now - self._last_seen.get(p, now) >= self.settings.idle_timeout_s
            ]
            generation = self._generation
        for p in quiet:
            tp = self._tp(p)
            high = self.consumer.highwater(tp)
            if high is None:
                continue
            try:
                pos = self.consumer.position(tp, timeout_ms=1000)
            except KafkaError:
                continue
            metrics.CONSUMER_LAG.labels(partition=str(p)).set(max(0, high - pos))
            if pos is None or pos < high:
                continue  # records are waiting: the partition is behind, not quiet
            with self._lock:
                if self._generation != generation or p not in self.agg.partitions:
                    return
                if time.monotonic() - self._last_seen.get(p, now) < self.settings.idle_timeout_s:
                    continue
                self.agg.idle_close(p, int(time.time() * 1000))
                self._last_seen[p] = now

    # ---- main loop -----------------------------------------------------------------------------
    def _handle(self, tp: TopicPartition, records: list[Any]) -> bool:
        """Ingest and aggregate one poll of one partition; True if more records are waiting."""
        p = tp.partition
        if p not in self.agg.partitions:
            # Not resumed yet: _init_partitions seeks to the commit, so these are read again.
            return False
        metrics.POLL_RECORDS.observe(len(records))
        high = self.consumer.highwater(tp) if self.consumer is not None else None
        lag = 0 if high is None else max(0, high - records[-1].offset - 1)
        if high is not None:
            metrics.CONSUMER_LAG.labels(partition=str(p)).set(lag)
        accepted = self.ingestor.ingest(self.topic, p, records, None)
        pings_in = accepted.pings_in
        self.agg.add(p, Pings.of(accepted), records[-1].offset + 1, pings_in, accepted.rejected)
        now = time.monotonic()
        self._last_seen[p] = now
        st = self.stats
        st.records += len(records)
        st.pings += pings_in
        if st.first_record_s is None:
            st.first_record_s = now
        st.last_record_s = now
        return lag > 0

    def run(self) -> LoopStats:
        self._run_thread = threading.current_thread()
        self.consumer = self._open()
        log_event(log, "consumer started", topic=self.topic, group=self.settings.consumer_group)
        try:
            while not self.stop.is_set():
                self._init_partitions()
                with self._lock:
                    generation = self._generation
                try:
                    batch = self.consumer.poll(timeout_ms=200)
                    if batch and self.settings.consumer_fast_decode:
                        prefetch(self.consumer)
                except CorruptBatchError as exc:
                    self._hold(exc)
                    continue
                except KafkaError as exc:  # broker trouble: kafka-python reconnects; back off, no crash
                    log_event(
                        log, "poll failed", logging.WARNING, error=type(exc).__name__, detail=str(exc)[:200]
                    )
                    self.stop.wait(1.0)
                    continue
                with self._lock:
                    # After a rebalance during or since this poll every owned partition is re-read
                    # from its commit (see _init_partitions), so a batch from before it is dropped.
                    behind = False
                    if self._generation == generation:
                        for tp, records in batch.items():
                            if records:
                                behind |= self._handle(tp, records)
                self._flush(behind)
                self._idle()
                self._flush(behind)
                self._commit()
                self._retry_held()
                if self.stop_when is not None and self.stop_when(self):
                    break
        finally:
            self._shutdown()
        return self.stats

    def _shutdown(self) -> None:
        """Write closed windows and commit within ``shutdown_timeout_s`` (one monotonic deadline)."""
        deadline = self._deadline = time.monotonic() + self.settings.shutdown_timeout_s
        while self.agg.pending and time.monotonic() < deadline:
            try:
                with self._lock:
                    self.agg.flush()
            except SinkUnavailableError:
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        if not self.agg.pending:
            self._commit(force=True, rewind=False)
        if self.consumer is not None:
            # close() revokes our partitions through on_revoked, which honours the same deadline.
            with contextlib.suppress(KafkaError):
                self.consumer.close(
                    autocommit=False, timeout_ms=max(0, int((deadline - time.monotonic()) * 1000))
                )
            self.consumer = None
        self.sink.close()
        log_event(log, "consumer stopped", **vars(self.agg.stats))

    def remaining_s(self) -> float:
        """Seconds left before the shutdown deadline (a default bound before shutdown starts)."""
        if self._deadline is None:
            return self.settings.shutdown_timeout_s
        return max(0.0, self._deadline - time.monotonic())
