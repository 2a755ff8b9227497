"""Writing closed windows to ClickHouse, and back-pressure when it is down: pause every owned
partition, retry after a growing pause, resume and commit once a write succeeds."""

from __future__ import annotations

import logging
import time

from aggregate import metrics
from aggregate.assignment import Assignment
from aggregate.exceptions import SinkUnavailableError
from aggregate.loop_state import log
from hexpulse.logs import log_event


class Backpressure(Assignment):
    """Coalesced flushes of pending closings; partitions paused while ClickHouse refuses them."""

    def _flush(self, behind: bool = False) -> None:
        """Write pending closings; while ``behind`` (a backlog), at most every ``flush_interval_s``.

        Each write is a few ClickHouse round trips whatever its size, so a consumer catching up
        coalesces the windows it closes; one that is caught up writes at once (release latency).
        """
        if time.monotonic() < self._sink_down_until:
            return
        if not self.agg.pending:
            # A rebalance during the outage dropped every pending write, so no successful write
            # would ever lift the pause: lift it now (the next failed write pauses again).
            if self._paused_for_sink:
                self._resume_for_sink("nothing left to write")
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
        if self._paused_for_sink:
            self._resume_for_sink("write succeeded")
        self._commit(force=True)

    def _resume_for_sink(self, why: str) -> None:
        """Resume the partitions paused for ClickHouse (not those initialising or quarantined)."""
        if self.consumer is not None:
            with self._lock:
                ready = [
                    self._tp(p)
                    for p in self.agg.partitions
                    if p not in self._uninit and p not in self._quarantine
                ]
            self.consumer.resume(*ready)
        self._paused_for_sink = False
        metrics.PAUSED.set(0)
        log_event(log, "clickhouse back; partitions resumed", why=why)
