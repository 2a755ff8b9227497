"""Retention of the alert tables: history as long as the releases it was derived from, state bounded.

Events, their deliveries and the states are derived from released windows, so they are kept as long
as those (``release_retention_days``, whole months, :func:`hexpulse.times.release_cutoff`). A state
row is written only when a subscription's state changes, so a quiet subscription's latest state may
be older than the cut-off: before old state partitions are dropped, each live subscription's latest
state before the cut-off is carried to the cut-off instant (the state "before any later window" is
the same), unless a row at that instant exists already. A crash between carrying and dropping leaves
identical duplicates, which the readers' ``argMax`` and ``FINAL`` absorb.

Lease claims (one per process per term) matter only for the current and next term; a day is kept
for the record.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from hexpulse.errors import ServiceUnavailableError, StoreError
from hexpulse.logs import log_event
from hexpulse.store.pool import ClickHousePool
from hexpulse.times import epoch_s, release_cutoff, utc_from_ms

log = logging.getLogger("hexpulse.alerts.retention")
LEASE_KEEP_S = 86_400
"""Seconds of lease claims kept."""

_CARRY = (
    "INSERT INTO alert_states (subscription_id, window_start, level, direction, streak, target)"
    " SELECT subscription_id, toDateTime(%(cut)s), argMax(level, window_start),"
    " argMax(direction, window_start), argMax(streak, window_start), argMax(target, window_start)"
    " FROM alert_states FINAL WHERE window_start < toDateTime(%(cut)s)"
    " AND subscription_id IN (SELECT subscription_id FROM alert_subscriptions FINAL WHERE deleted = 0)"
    " AND subscription_id NOT IN"
    " (SELECT subscription_id FROM alert_states WHERE window_start = toDateTime(%(cut)s))"
    " GROUP BY subscription_id"
)


@dataclass(frozen=True)
class AlertRetentionReport:
    cutoff: datetime
    state_partitions_dropped: tuple[str, ...]
    events_deleted: int
    leases_deleted: int


def _count(pool: ClickHousePool, sql: str, params: dict[str, int]) -> int:
    return int(pool.query(sql, params)[0][0])


def enforce_alert_retention(
    pool: ClickHousePool, retention_days: int, now_ms: int | None = None
) -> AlertRetentionReport:
    """Apply the retention at ``now_ms`` (epoch ms; default now). Idempotent."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    cutoff = release_cutoff(retention_days, utc_from_ms(now_ms))
    cut = {"cut": epoch_s(cutoff)}
    month = cutoff.strftime("%Y%m")
    old = [str(r[0]) for r in pool.query(
        "SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase()"
        " AND table = 'alert_states' AND active", {},
    ) if str(r[0]).isdigit() and str(r[0]) < month]  # fmt: skip
    if old:
        pool.query(_CARRY, cut)
        for part in old:
            pool.query(f"ALTER TABLE alert_states DROP PARTITION {part}")
    events = _count(pool, "SELECT count() FROM alert_events WHERE window_start < toDateTime(%(cut)s)", cut)
    if events:
        # Deliveries first: an event is never visible without knowing whether it was sent.
        pool.query("ALTER TABLE alert_deliveries DELETE WHERE window_start < toDateTime(%(cut)s)", cut)
        pool.query("ALTER TABLE alert_events DELETE WHERE window_start < toDateTime(%(cut)s)", cut)
    lease = {"ns": (now_ms // 1000 - LEASE_KEEP_S) * 1_000_000_000}
    leases = _count(pool, "SELECT count() FROM alert_leases WHERE claimed_ns < %(ns)s", lease)
    if leases:
        pool.query("ALTER TABLE alert_leases DELETE WHERE claimed_ns < %(ns)s", lease)
    return AlertRetentionReport(cutoff, tuple(old), events, leases)


class AlertRetention:
    """Runs :func:`enforce_alert_retention` at most once per ``interval_s`` (monotonic seconds); a
    failure is logged and retried on a later call, never raised into the evaluator."""

    def __init__(self, pool: ClickHousePool, retention_days: int, interval_s: float = 3600.0) -> None:
        self._pool = pool
        self._days = retention_days
        self._interval_s = interval_s
        self._next = 0.0

    def maybe_run(self) -> AlertRetentionReport | None:
        now = time.monotonic()
        if now < self._next:
            return None
        self._next = now + self._interval_s
        try:
            report = enforce_alert_retention(self._pool, self._days)
        except (StoreError, ServiceUnavailableError) as exc:
            self._next = now + min(60.0, self._interval_s)
            log_event(log, "alert retention failed; will retry", logging.WARNING, error=type(exc).__name__)
            return None
        log_event(log, "alert retention enforced", cutoff=report.cutoff.isoformat(),
                  state_partitions=list(report.state_partitions_dropped), events=report.events_deleted,
                  leases=report.leases_deleted)  # fmt: skip
        return report
