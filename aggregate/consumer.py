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
from aggregate.exceptions import ConsumerStalledError
from aggregate.kafka.client import open_group_consumer
from aggregate.kafka.records import CorruptBatchError, prefetch
from aggregate.loop_state import LoopStats, log
from aggregate.shutdown import Shutdown
from aggregate.watchdog import STALL_EXIT_CODE, probe_interval_s, thread_stacks
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

    # ---- no-progress watchdog (aggregate/watchdog.py) ---------------------------------------
    def _owed(self) -> list[str]:
        """What this member owes: an assignment, unresumed partitions, partitions behind their end
        offset (asked of the broker, so a fetch that silently stopped still shows). Quarantined
        partitions wait for an operator and owe nothing here."""
        if self.consumer is None:
            return []
        with self._lock:
            owed = ["waiting for a partition assignment"] if self._awaiting_assignment else []
            owed += [f"partition {p} not resumed" for p in sorted(self._uninit)]
            owned = [self._tp(p) for p in sorted(self.agg.partitions) if p not in self._quarantine]
        if not owned:
            return owed
        try:
            ends = self.consumer.end_offsets(owned, timeout_ms=5000)
        except KafkaError:
            ends = {}
        for tp in owned:
            try:
                end = ends.get(tp, self.consumer.highwater(tp))
                pos = self.consumer.position(tp, timeout_ms=1000)
            except KafkaError:
                end = pos = None
            if end is None or pos is None:
                owed.append(f"partition {tp.partition}: end offset or position unknown")
            elif end > pos:
                owed.append(f"partition {tp.partition} behind by {end - pos} records")
        return owed

    def _watch(self) -> bool:
        """One round of the watchdog; True once the loop must end (stalled: ``_fatal`` is set)."""
        wd = self.watchdog
        if wd.timeout_s <= 0:
            return False
        now = time.monotonic()
        if self.stats.records != self._records_seen:
            self._records_seen = self.stats.records
            wd.progress()
        elif now >= self._probe_at:
            self._probe_at = now + probe_interval_s(wd.timeout_s)
            wd.report(self._owed())
        quiet = wd.stalled_for()
        if quiet is None:
            return False
        log_event(
            log,
            "consumer stalled; exiting",
            logging.ERROR,
            reason="no progress while work is owed",
            owed=wd.owed[:12],
            quiet_s=round(quiet, 1),
            timeout_s=wd.timeout_s,
            exit_code=STALL_EXIT_CODE,
            stacks=thread_stacks(),
        )
        self._fatal = ConsumerStalledError(
            f"the consumer made no progress for {quiet:.0f} s while it owed work "
            f"({'; '.join(wd.owed[:3])}); it exits so that its supervisor restarts it "
            "(HEXPULSE_CONSUMER_STALL_TIMEOUT_S)"
        )
        self._guard.stalled_at = now  # the guard ends the process if the shutdown hangs too
        return True

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
        if self.watchdog.timeout_s > 0:
            self._guard.start()
        try:
            while not self.stop.is_set():
                self._guard.tick()
                if self._watch():  # first, so that rounds ending in `continue` are watched too
                    break
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
            self._guard.done.set()
        if self._fatal is not None:
            raise self._fatal
        return self.stats
