"""The ``hexpulse alerts`` process: the evaluator (a release-feed follower) and the delivery worker,
each in its own thread, both working only while this process holds the lease (lease.py).

Evaluation never waits for delivery: the evaluator only enqueues; the worker sends.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from alerts.delivery import DeliveryWorker
from alerts.evaluator import Evaluator
from alerts.lease import Lease
from alerts.metrics import EVAL_SECONDS, HOLDER
from alerts.retention import AlertRetention
from alerts.ssrf import parse_networks
from hexpulse.errors import ServiceUnavailableError, StoreError
from hexpulse.logs import log_event
from hexpulse.settings import Settings
from hexpulse.store.pool import ClickHousePool
from releases.follower import Follower
from releases.models import Window

log = logging.getLogger("hexpulse.alerts")
FOLLOWER = "alerts"


class AlertsService:
    def __init__(self, settings: Settings, *, holder: str | None = None, follower: str = FOLLOWER) -> None:
        self._settings = settings
        self.pool = ClickHousePool(settings, size=4)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}"
        self.lease = Lease(self.pool, self.holder, term_s=settings.alerts_lease_term_s,
                           settle_s=settings.alerts_lease_term_s / 5)  # fmt: skip
        self.evaluator = Evaluator(self.pool, settings.alerts_expiry_s, settings.traffic_resolution)
        self.follower = Follower(self.pool, follower, start="earliest", poll_s=settings.alerts_poll_s)
        self.worker = DeliveryWorker(self.pool, parse_networks(settings.alerts_allow_networks),
                                     timeout_s=settings.alerts_delivery_timeout_s,
                                     concurrency=settings.alerts_delivery_concurrency)  # fmt: skip
        self.retention = AlertRetention(self.pool, settings.release_retention_days)
        self._held = threading.Event()

    def _handle(self, window: Window) -> None:
        with EVAL_SECONDS.time():
            self.evaluator.handle(window)

    def _loop(self, stop: threading.Event, body: str) -> None:
        while not stop.is_set():
            try:
                if body == "evaluate":
                    held = self.lease.holds()
                    HOLDER.set(int(held))
                    if held != self._held.is_set():
                        log_event(log, "alerts lease " + ("taken" if held else "lost"), holder=self.holder)
                    (self._held.set if held else self._held.clear)()
                    if held:
                        self.follower.poll_once(self._handle, stop)
                        self.retention.maybe_run()
                elif self._held.is_set():
                    self.worker.run_once()
            except (StoreError, ServiceUnavailableError) as exc:
                log_event(log, "alerts loop failed; retrying", logging.WARNING, loop=body,
                          error=type(exc).__name__)  # fmt: skip
            poll = self._settings.alerts_poll_s
            stop.wait(poll if body == "evaluate" else min(0.25, poll))

    def run(self, stop: threading.Event) -> None:
        """Evaluate and deliver until ``stop`` is set."""
        threads = [threading.Thread(target=self._loop, args=(stop, b), name=f"alerts-{b}", daemon=True)
                   for b in ("evaluate", "deliver")]  # fmt: skip
        for t in threads:
            t.start()
        log_event(log, "alerts started", holder=self.holder)
        while not stop.is_set():
            stop.wait(0.5)
        for t in threads:
            t.join(timeout=30)
        self.worker.close()
        self.pool.close()

    def wait_held(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._held.wait(0.1):
                return True
        return False
