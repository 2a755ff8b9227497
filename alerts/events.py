"""Reads of ``alert_events`` (history, the resumable stream) and of the delivery queue, per owner."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hexpulse.store.pool import ClickHousePool
from hexpulse.times import epoch_s

EVENT_COLUMNS = ("event_id, subscription_id, owner, zone_id, window_start, kind, level_before, level_after, "
                 "metric, value, sigma, lo, hi, threshold, probability, created_at")  # fmt: skip
DELIVERY_COLUMNS = ("subscription_id, event_id, window_start, status, attempts, next_at, expires_at, "
                    "last_status, last_error, version")  # fmt: skip
_NAMES = [c.strip() for c in EVENT_COLUMNS.split(",")]


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def event_doc(row: tuple[Any, ...]) -> dict[str, Any]:
    """An ``alert_events`` row as the JSON the API, the stream and webhooks show (no owner)."""
    doc = dict(zip(_NAMES, row, strict=True))
    doc["window_start"], doc["created_at"] = iso(doc["window_start"]), iso(doc["created_at"])
    doc["id"] = doc.pop("event_id")
    doc.pop("owner")
    return doc


def history(pool: ClickHousePool, owner: str, *, subscription: str | None, kind: str | None,
            start: datetime, end: datetime, limit: int) -> list[dict[str, Any]]:  # fmt: skip
    """The owner's events with windows in [start, end), newest first."""
    where = ["owner = %(o)s", "window_start >= toDateTime(%(a)s)", "window_start < toDateTime(%(b)s)"]
    if subscription:
        where.append("subscription_id = %(s)s")
    if kind:
        where.append("kind = %(k)s")
    rows = pool.query(
        f"SELECT {EVENT_COLUMNS} FROM alert_events FINAL WHERE {' AND '.join(where)}"
        " ORDER BY window_start DESC, event_id DESC LIMIT %(n)s",
        {"o": owner, "a": epoch_s(start), "b": epoch_s(end), "s": subscription or "", "k": kind or "",
         "n": limit},
    )  # fmt: skip
    return [event_doc(r) for r in rows]


AFTER_LIMIT = 500  # events per read of the stream


def after(pool: ClickHousePool, owner: str, last_id: str | None, since_s: int, limit: int = AFTER_LIMIT
          ) -> list[dict[str, Any]]:  # fmt: skip
    """The owner's events after event ``last_id`` (window order, then id), or from ``since_s``.

    Events are written per window in window order (the evaluator follows the feed), so
    (window_start, event_id) is a resumable position: a stream resumed with ``Last-Event-ID``
    misses nothing written after that event and repeats nothing before it."""
    pos: tuple[int, str] = (since_s, "")
    if last_id:
        rows = pool.query(
            "SELECT window_start FROM alert_events FINAL WHERE event_id = %(e)s AND owner = %(o)s",
            {"e": last_id, "o": owner},
        )
        if rows:
            pos = (epoch_s(rows[0][0]), last_id)
    rows = pool.query(
        f"SELECT {EVENT_COLUMNS} FROM alert_events FINAL WHERE owner = %(o)s AND"
        " (window_start > toDateTime(%(w)s) OR (window_start = toDateTime(%(w)s) AND event_id > %(e)s))"
        " ORDER BY window_start, event_id LIMIT %(n)s",
        {"o": owner, "w": pos[0], "e": pos[1], "n": limit},
    )
    return [event_doc(r) for r in rows]


def deliveries(pool: ClickHousePool, owner: str, status: str | None, limit: int) -> list[dict[str, Any]]:
    """The owner's webhook deliveries not yet delivered (``pending``, ``dead``), newest first."""
    rows = pool.query(
        f"SELECT {DELIVERY_COLUMNS} FROM alert_deliveries FINAL WHERE status != 'delivered'"
        + (" AND status = %(st)s" if status else "")
        + " AND subscription_id IN"
        " (SELECT subscription_id FROM alert_subscriptions FINAL WHERE owner = %(o)s)"
        " ORDER BY window_start DESC, event_id LIMIT %(n)s",
        {"o": owner, "n": limit, "st": status or ""},
    )
    return [{"subscription_id": r[0], "event_id": r[1], "window_start": iso(r[2]), "status": r[3],
             "attempts": int(r[4]), "last_status": int(r[7]) or None, "last_error": r[8] or None}
            for r in rows]  # fmt: skip
