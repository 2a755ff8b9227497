"""Committing offsets: only what the aggregate state allows, and only after the DLQ is acknowledged.

When the dead letters cannot be acknowledged the offsets must not move, so the loop rewinds every
owned partition to its last commit (:meth:`Commits._rewind`).
"""

from __future__ import annotations

import logging
import time

from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from aggregate.loop_state import LoopState, log
from hexpulse.logs import log_event
from ingest.exceptions import DeadLetterError

COMMIT_INTERVAL_S = 2.0
"""Most time between commits while offsets move without a window closing, seconds."""


class Commits(LoopState):
    """Offset commits and the rewind that a lost DLQ write forces."""

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
