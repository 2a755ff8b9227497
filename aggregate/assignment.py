"""Partition ownership: what a rebalance revokes or assigns, and resuming a partition from its
commit and ``progress`` (claiming it there first, which fences off a previous owner's writes)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time

from kafka.errors import KafkaError

from aggregate.commits import Commits
from aggregate.exceptions import SinkUnavailableError
from aggregate.kafka.client import group_generation, hold_rejoin, partition_count_mismatch
from aggregate.loop_state import log
from hexpulse.errors import ConfigError
from hexpulse.logs import log_event


class Assignment(Commits):
    """The rebalance callbacks (kafka-python may run them on its IO thread) and partition resume."""

    def on_revoked(self, partitions: list[int], *, lost: bool = False) -> None:
        """Write what is closed, commit, forget the rest (the next owner replays it)."""
        hold_rejoin(self.consumer)  # a rebalance round begins: see that it is finished
        with self._lock:
            self._generation += 1
            self._awaiting_assignment = True
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
        """Pause new partitions until their progress row is read (see :meth:`_init_partitions`).

        A partition beyond the configured count means partitions were added while running: stop
        rather than dead-letter every record keyed under the new count (docs/DEPLOY.md).
        """
        beyond = [p for p in partitions if p >= self.settings.topic_partitions]
        if beyond:
            msg = partition_count_mismatch(
                self.topic, max(beyond) + 1, self.settings.topic_partitions, at_least=True
            )
            self._fatal = ConfigError(msg)
            log_event(log, "partition count changed; stopping", logging.ERROR, partitions=sorted(beyond))
            self.stop.set()
            partitions = [p for p in partitions if p not in beyond]
        with self._lock:
            self._generation += 1
            self._awaiting_assignment = False
            fresh = [p for p in partitions if p not in self.agg.partitions]
            self._uninit.update(fresh)
            if self.consumer is not None:
                self._group_generation = group_generation(self.consumer)
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
                    self.agg.init_partition(p, self._group_generation)
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
