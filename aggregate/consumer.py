"""The consume loop: one member of the consumer group, Kafka → ingest → windows → ClickHouse.

Exactly-once reasoning (docs/ARCHITECTURE.md): offsets are committed only up to the first offset
of the oldest window not yet written, after the DLQ is flushed; partials are written before the
progress row; a (re)assigned partition resumes horizon and watermark from its latest progress
row, so whatever a crash, restart or rebalance loses is replayed into identical rows.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kafka import TopicPartition
from kafka.errors import KafkaError

from aggregate import metrics
from aggregate.kafka.client import open_group_consumer
from aggregate.kafka.records import CorruptBatchError, prefetch
from aggregate.loop_state import LoopStats, log
from aggregate.shutdown import Shutdown
from hexpulse.logs import log_event

__all__ = ["ConsumeLoop", "LoopStats"]


class ConsumeLoop(Shutdown):
    """Run with :meth:`run`; stop by setting ``stop`` (signal handlers do) or ``stop_when``.

    This module is the poll side (poll, handle, idle close); the layers below hold commits
    (:mod:`aggregate.commits`), partition ownership (:mod:`aggregate.assignment`), back-pressure
    (:mod:`aggregate.backpressure`) and shutdown (:mod:`aggregate.shutdown`).
    """

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
        self.agg.add(p, accepted, accepted.record_ts, records[-1].offset + 1, pings_in, accepted.rejected)
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
        self.consumer = open_group_consumer(self.settings, self.topic, self)
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
        if self._fatal is not None:
            raise self._fatal
        return self.stats
