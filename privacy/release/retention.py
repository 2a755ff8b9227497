"""Retention: drop exact partials (and the day's tourism presence rows) once released + grace,
and release data past its retention.

Everything is removed with ``ALTER TABLE … DROP PARTITION`` (ClickHouse 18.16 has no TTL), except
``release_windows``, which has no partition key and is small: its rows older than the release
cut-off are removed with an ``ALTER TABLE … DELETE`` mutation *before* the cells are dropped, so a
window is never public without its cells; the releasers' ``release_intents`` of those months go
with them. The ledgers (``release_ledger``, and the older ``budget_ledger``) are kept: they are the
audit trail of privacy spending and hold nothing about any person.

The releaser calls :func:`enforce_retention` through :class:`RetentionSchedule` (at most once per
``interval_s``); operators run ``hexpulse keyring retention``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from clickhouse_driver import Client

from hexpulse.errors import StoreError
from hexpulse.logs import log_event
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.errors import DRIVER_FAILURES, store_failure
from hexpulse.times import epoch_s, release_cutoff, utc_from_ms

_log = logging.getLogger("hexpulse.retention")
_UTC = dt.UTC
_RETRIED: tuple[type[BaseException], ...] = (StoreError, *DRIVER_FAILURES)


@dataclass(frozen=True)
class RetentionReport:
    """Partition ids (``YYYYMMDD`` for partials, ``YYYYMM`` for release cells) dropped or due."""

    partials_dropped: tuple[str, ...]
    partials_kept_unreleased: tuple[str, ...]
    release_dropped: tuple[str, ...]
    release_cutoff: dt.datetime


def _partitions(client: Client, db: str, table: str) -> list[str]:
    rows = client.execute(
        "SELECT DISTINCT partition FROM system.parts "
        "WHERE database = %(db)s AND table = %(table)s AND active ORDER BY partition",
        {"db": db, "table": table},
    )
    # Partition values of toYYYYMMDD/toYYYYMM keys are plain digits; anything else is not ours.
    return [str(r[0]) for r in rows if str(r[0]).isdigit()]


def _drop(client: Client, table: str, partition: str) -> None:
    """Drop one partition of ``table`` (as SQL names it: bare, or ``<exact>.partials``)."""
    if not partition.isdigit():
        raise StoreError(f"refusing to drop non-numeric partition {partition[:20]!r} of {table}")
    try:
        client.execute(f"ALTER TABLE {table} DROP PARTITION {partition}")
    except DRIVER_FAILURES as exc:
        what = f"dropping partition {partition} of {table}"
        raise store_failure(exc, what, unavailable=StoreError) from None


def _unreleased_windows(
    client: Client, exact: str, start: dt.datetime, end: dt.datetime, released_before: dt.datetime
) -> int:
    """Windows in [``start``, ``end``) with partials that were not released before ``released_before``."""
    # Epoch seconds, not datetime literals: a literal would be read in the server's time zone.
    lo, hi = epoch_s(start), epoch_s(end)
    rows = client.execute(
        f"SELECT uniqExact(window_start) FROM {exact}.partials "
        "WHERE window_start >= toDateTime(%(lo)s) AND window_start < toDateTime(%(hi)s) "
        "AND window_start NOT IN ("
        "  SELECT window_start FROM release_windows WHERE window_start >= toDateTime(%(lo)s) "
        "  AND window_start < toDateTime(%(hi)s) AND released_at <= toDateTime(%(cut)s))",
        {"lo": lo, "hi": hi, "cut": epoch_s(released_before)},
    )
    return int(rows[0][0])


def enforce_retention(
    settings: Settings,
    *,
    client: Client | None = None,
    now_ms: int | None = None,
    dry_run: bool = False,
) -> RetentionReport:
    """Drop partials partitions whose day ended and was fully released ≥ ``partials_grace_h`` ago,
    and release partitions older than :func:`release_cutoff`. ``now_ms`` is epoch milliseconds.
    """
    own = client is None
    cl = client or connect(settings)
    db, exact = settings.clickhouse_database, settings.exact_database
    now = utc_from_ms(now_ms if now_ms is not None else time.time() * 1000)
    grace_edge = now - dt.timedelta(hours=settings.partials_grace_h)
    try:
        dropped: list[str] = []
        kept: list[str] = []
        for part in _partitions(cl, exact, "partials"):
            day = dt.datetime.strptime(part, "%Y%m%d").replace(tzinfo=_UTC)
            if day + dt.timedelta(days=1) > grace_edge:
                continue  # the day (or its grace) is not over: windows may still be written
            if _unreleased_windows(cl, exact, day, day + dt.timedelta(days=1), grace_edge):
                kept.append(part)  # never drop exact data the releaser has not published yet
                continue
            if not dry_run:
                _drop(cl, f"{exact}.partials", part)
            dropped.append(part)
        # The day's tourism pseudonyms go with its partials: the local days that touch a UTC day
        # have all ended within 14 h of its end, before the grace (≥ 1 h, default 24 h) is over.
        # So do the day's movers (pseudonyms per window, no cells: the speed bins' bound).
        for table in ("tourism_presence", "traffic_movers"):
            for part in _partitions(cl, exact, table):
                day = dt.datetime.strptime(part, "%Y%m%d").replace(tzinfo=_UTC)
                if day + dt.timedelta(days=1) <= grace_edge and part not in kept and not dry_run:
                    _drop(cl, f"{exact}.{table}", part)

        # The moving rows link a pseudonym's cells over minutes: kept by the hour, dropped as soon
        # as every window of the hour is released (the releaser reads them only then).
        for part in _partitions(cl, exact, "traffic_moving"):
            hour = dt.datetime.strptime(part, "%Y%m%d%H").replace(tzinfo=_UTC)
            end = hour + dt.timedelta(hours=1)
            if end <= now and not _unreleased_windows(cl, exact, hour, end, now) and not dry_run:
                _drop(cl, f"{exact}.traffic_moving", part)

        cutoff = release_cutoff(settings.release_retention_days, now)
        old_months = [p for p in _partitions(cl, db, "release_cells") if p < cutoff.strftime("%Y%m")]
        if old_months and not dry_run:
            # Unpublish first, so a window never shows without its cells.
            cl.execute(
                "ALTER TABLE release_windows DELETE WHERE window_start < toDateTime(%(cut)s)",
                {"cut": epoch_s(cutoff)},
            )
            for part in old_months:
                _drop(cl, "release_cells", part)
        for table in ("release_zones", "release_traffic", "release_zone_traffic", "release_tourism_daily"):
            for part in _partitions(cl, db, table):
                if part < cutoff.strftime("%Y%m") and not dry_run:
                    _drop(cl, table, part)
        for part in _partitions(cl, db, "release_intents"):
            if part < cutoff.strftime("%Y%m") and not dry_run:
                _drop(cl, "release_intents", part)
    except DRIVER_FAILURES as exc:
        raise store_failure(exc, f"retention on database {db}", unavailable=StoreError) from None
    finally:
        if own:
            cl.disconnect()
    report = RetentionReport(tuple(dropped), tuple(kept), tuple(old_months), cutoff)
    log_event(
        _log,
        "retention_enforced" if not dry_run else "retention_dry_run",
        partials_dropped=list(report.partials_dropped),
        partials_kept_unreleased=list(report.partials_kept_unreleased),
        release_dropped=list(report.release_dropped),
        release_cutoff=cutoff.isoformat(),
        level=logging.WARNING if kept else logging.INFO,
    )
    return report


class RetentionSchedule:
    """Runs :func:`enforce_retention` at most once per ``interval_s`` (monotonic seconds).

    A failed run is logged and retried after ``retry_s``; it never stops the caller (the releaser):
    publishing windows matters more than dropping old ones a little later.
    """

    def __init__(self, settings: Settings, interval_s: float = 3600.0, retry_s: float = 60.0) -> None:
        self._settings = settings
        self._interval_s = interval_s
        self._retry_s = retry_s
        self._next = 0.0

    def maybe_run(self, client: Client | None = None) -> RetentionReport | None:
        now = time.monotonic()
        if now < self._next:
            return None
        try:
            report = enforce_retention(self._settings, client=client)
        except _RETRIED as exc:
            self._next = now + min(self._retry_s, self._interval_s)
            log_event(_log, "retention failed; will retry", logging.WARNING, error=str(exc)[:300])
            return None
        self._next = now + self._interval_s
        return report
