"""Partitions stopped at a corrupt record batch: paused, retried now and then, reported.

A batch that fails its CRC or structure check cannot be read, and skipping it would drop pings
without a trace, so its partition stops there (its windows stay open and the releaser waits for
them) while the consumer's other partitions go on. The partition is retried every
``RETRY_S``: once an operator has repaired the log (docs/KAFKA.md, "A corrupt record batch") it
resumes by itself. The error is logged when first seen and then at most every ``REPORT_S``.
"""

from __future__ import annotations

import logging
import time

from aggregate import metrics
from aggregate.kafka.records import CorruptBatchError
from hexpulse.logs import log_event

log = logging.getLogger(__name__)

RETRY_S = 60.0
"""Seconds between attempts to read past a corrupt batch."""
REPORT_S = 600.0
"""Most seconds between two error lines about the same batch."""


class Quarantine:
    """Which partitions wait at a corrupt batch, and when each is tried again (monotonic s)."""

    def __init__(self) -> None:
        self._retry_at: dict[int, float] = {}
        self._reported: dict[tuple[int, int], float] = {}

    def __contains__(self, partition: int) -> bool:
        return partition in self._retry_at

    def hold(self, exc: CorruptBatchError) -> int:
        """Record the failure; return the partition the caller must pause."""
        p = int(exc.topic_partition.partition)
        now = time.monotonic()
        self._retry_at[p] = now + RETRY_S
        metrics.CORRUPT_BATCHES.inc()
        metrics.QUARANTINED.set(len(self._retry_at))
        key = (p, exc.offset)
        if now - self._reported.get(key, -REPORT_S) >= REPORT_S:
            self._reported[key] = now
            log_event(
                log,
                "corrupt record batch; partition stopped",
                logging.ERROR,
                topic=exc.topic_partition.topic,
                partition=p,
                offset=exc.offset,
                # Not the decoder's message: it may quote bytes of the batch (raw ids).
                retry_in_s=RETRY_S,
                help="docs/KAFKA.md, 'A corrupt record batch'",
            )
        return p

    def due(self) -> list[int]:
        """Partitions whose retry time has come (the caller resumes them); forgotten here."""
        now = time.monotonic()
        ready = [p for p, at in self._retry_at.items() if at <= now]
        for p in ready:
            del self._retry_at[p]
        metrics.QUARANTINED.set(len(self._retry_at))
        return ready

    def forget(self, partitions: list[int]) -> None:
        """Revoked partitions: their next owner finds the batch for itself."""
        for p in partitions:
            self._retry_at.pop(p, None)
        metrics.QUARANTINED.set(len(self._retry_at))
