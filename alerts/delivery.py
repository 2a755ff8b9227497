"""The webhook delivery worker: the queue in ``alert_deliveries``, sent apart from evaluation.

Per subscription one request at a time, in event order (a receiver sees its levels in order);
different subscriptions in parallel (``concurrency`` threads), so a slow or failing endpoint delays
only its own subscriber. A failure is retried on a seconds-scale schedule with ±20% jitter; a
``Retry-After`` (seconds) longer than the next delay is honoured. A delivery still failing when it
expires (``HEXPULSE_ALERTS_EXPIRY_S`` after its window's release) is dead-lettered
(``GET /v1/alerts/deliveries``). Every attempt is a new queue row with a higher version.
"""

from __future__ import annotations

import http.client
import logging
import random
import socket
import ssl
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import orjson

from alerts.events import DELIVERY_COLUMNS, EVENT_COLUMNS, event_doc
from alerts.metrics import DELIVERIES, DELIVERY_SECONDS, QUEUE
from alerts.signing import headers
from alerts.ssrf import Network, RefusedTarget, Target, resolve
from alerts.subscriptions import SubscriptionStore
from hexpulse.logs import log_event
from hexpulse.store.pool import ClickHousePool

log = logging.getLogger("hexpulse.alerts.delivery")
#: Seconds before attempt n+1 (the last repeats): a safety alert is worth little minutes late.
SCHEDULE_S = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
MAX_RETRY_AFTER_S = 300.0


def next_delay(attempts: int, retry_after_s: float | None, rng: random.Random) -> float:
    """Seconds to wait after ``attempts`` failed attempts (≥ 1)."""
    base = SCHEDULE_S[min(attempts, len(SCHEDULE_S)) - 1] * rng.uniform(0.8, 1.2)
    if retry_after_s is not None:
        base = max(base, min(retry_after_s, MAX_RETRY_AFTER_S))
    return base


def retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (HTTP dates are ignored: the schedule applies)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a pinned address, verifying the certificate against the URL's host name."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.address, target.port, timeout=timeout, context=ssl.create_default_context())
        self._sni = target.host

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self._sni)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status: int
    error: str
    retry_after_s: float | None


def post(target: Target, body: bytes, hdrs: dict[str, str], timeout_s: float) -> Outcome:
    """One POST to the pinned address; redirects are not followed (a 3xx is a failure)."""
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = _PinnedHTTPS(target, timeout_s)
    else:
        conn = http.client.HTTPConnection(target.address, target.port, timeout=timeout_s)
    try:
        port = "" if target.port in (80, 443) else f":{target.port}"
        conn.request("POST", target.path, body, {**hdrs, "Host": f"{target.host}{port}",
                                                 "Content-Type": "application/json"})  # fmt: skip
        resp = conn.getresponse()
        resp.read(65536)
        if 200 <= resp.status < 300:
            return Outcome(True, resp.status, "", None)
        error = "redirect not followed" if 300 <= resp.status < 400 else f"HTTP {resp.status}"
        return Outcome(False, resp.status, error, retry_after(resp.getheader("Retry-After")))
    except (OSError, http.client.HTTPException) as exc:
        return Outcome(False, 0, type(exc).__name__, None)
    finally:
        conn.close()


def payload(event: dict[str, Any]) -> bytes:
    """The Standard Webhooks body: ``type``, ``timestamp`` and the event as ``data``."""
    return orjson.dumps({"type": f"alert.{event['kind']}", "timestamp": event["created_at"], "data": event})


class DeliveryWorker:
    def __init__(self, pool: ClickHousePool, allowed: tuple[Network, ...], *, timeout_s: float = 5.0,
                 concurrency: int = 8, seed: int | None = None) -> None:  # fmt: skip
        self._pool = pool
        self._subs = SubscriptionStore(pool)
        self._allowed = allowed
        self._timeout_s = timeout_s
        self._pool_exec = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="alerts-delivery")
        self._busy: dict[str, Future[None]] = {}
        self._rng = random.Random(seed)  # noqa: S311 (jitter, not a secret)

    def due(self, now_s: float) -> dict[str, list[tuple[Any, ...]]]:
        rows = self._pool.query(
            f"SELECT {DELIVERY_COLUMNS} FROM alert_deliveries FINAL WHERE status = 'pending'"
            " ORDER BY subscription_id, window_start, event_id"
        )
        by_sub: dict[str, list[tuple[Any, ...]]] = {}
        for r in rows:
            by_sub.setdefault(r[0], []).append(r)
        # Order within a subscription: a later event waits for an earlier one still being retried.
        due = {s: rs for s, rs in by_sub.items() if rs[0][5] <= now_s}
        QUEUE.set(sum(len(rs) for rs in due.values()))
        return due

    def run_once(self, now_s: float | None = None) -> int:
        """Start sending for every subscription with a due delivery and none in flight."""
        for sub_id in [s for s, f in self._busy.items() if f.done()]:
            self._busy.pop(sub_id).result()
        started = 0
        for sub_id, rows in self.due(time.time() if now_s is None else now_s).items():
            if sub_id not in self._busy:
                self._busy[sub_id] = self._pool_exec.submit(self._send_all, sub_id, rows)
                started += 1
        return started

    def drain(self) -> None:
        for f in list(self._busy.values()):
            f.result()
        self._busy.clear()

    def close(self) -> None:
        self._pool_exec.shutdown(wait=True)

    def _send_all(self, sub_id: str, rows: list[tuple[Any, ...]]) -> None:
        subs = {s.subscription_id: s for s in self._subs.active() if s.subscription_id == sub_id}
        sub = subs.get(sub_id)
        for row in rows:
            if time.time() < row[5]:
                return
            if sub is None or not sub.webhook_url:
                self._write(row, "dead", row[4], 0, "subscription deleted")
                continue
            if not self._send_one(sub.webhook_url, sub.secrets, row):
                return  # keep the order: later events wait for this one

    def _send_one(self, url: str, secrets: tuple[str, ...], row: tuple[Any, ...]) -> bool:
        sub_id, event_id, attempts = row[0], row[1], int(row[4]) + 1
        events = self._pool.query(f"SELECT {EVENT_COLUMNS} FROM alert_events FINAL WHERE event_id = %(e)s",
                                  {"e": event_id})  # fmt: skip
        body = payload(event_doc(events[0]))
        now = time.time()
        try:
            target = resolve(url, self._allowed)
        except RefusedTarget as exc:
            DELIVERIES.labels(sub_id, "refused").inc()
            outcome = Outcome(False, 0, str(exc), None)
        else:
            t0 = time.perf_counter()
            outcome = post(target, body, headers(secrets, event_id, int(now), body), self._timeout_s)
            DELIVERY_SECONDS.labels(sub_id).observe(time.perf_counter() - t0)
        if outcome.ok:
            DELIVERIES.labels(sub_id, "delivered").inc()
            self._write(row, "delivered", attempts, outcome.status, "")
            return True
        next_at = time.time() + next_delay(attempts, outcome.retry_after_s, self._rng)
        dead = next_at > row[6]
        DELIVERIES.labels(sub_id, "dead" if dead else "failed").inc()
        self._write(row, "dead" if dead else "pending", attempts, outcome.status, outcome.error, next_at)
        log_event(log, "webhook delivery failed", logging.WARNING, subscription=sub_id, event_id=event_id,
                  attempts=attempts, status=outcome.status, error=outcome.error, dead=dead)  # fmt: skip
        return False

    def _write(self, row: tuple[Any, ...], status: str, attempts: int, http_status: int, error: str,
               next_at: float | None = None) -> None:  # fmt: skip
        self._pool.insert(f"INSERT INTO alert_deliveries ({DELIVERY_COLUMNS}) VALUES", [(
            row[0], row[1], row[2], status, attempts, row[5] if next_at is None else next_at, row[6],
            http_status, error[:200], time.time_ns())])  # fmt: skip
