"""Shutdown: write closed windows and commit within one monotonic deadline, then leave the group."""

from __future__ import annotations

import contextlib
import time

from kafka.errors import KafkaError

from aggregate.backpressure import Backpressure
from aggregate.exceptions import SinkUnavailableError
from aggregate.loop_state import log
from hexpulse.logs import log_event


class Shutdown(Backpressure):
    """Ends a run within ``shutdown_timeout_s``; every wait after shutdown starts ends by then."""

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
