"""The window look-ups of ``release_windows``, one statement each, for the async reader and the feed.

Each function returns ``(sql, params)`` for :meth:`hexpulse.store.pool.ClickHousePool.query`
(or ``aquery``); rows map to :meth:`releases.models.Window.from_row`. Times are whole seconds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hexpulse.store.tables import RELEASE_WINDOW_COLUMNS, column_list
from hexpulse.times import epoch_s

WINDOW_COLS = column_list(RELEASE_WINDOW_COLUMNS)
Query = tuple[str, dict[str, Any]]


def latest_window() -> Query:
    """The newest released window (zero or one row)."""
    return f"SELECT {WINDOW_COLS} FROM release_windows FINAL ORDER BY window_start DESC LIMIT 1", {}


def windows_after(after: datetime | None, limit: int | None = None) -> Query:
    """Released windows starting after ``after`` (every window when None), oldest first, at most
    ``limit`` of them."""
    sql = f"SELECT {WINDOW_COLS} FROM release_windows FINAL"
    params: dict[str, Any] = {}
    if after is not None:
        sql += " WHERE window_start > toDateTime(%(t)s)"
        params["t"] = epoch_s(after)
    sql += " ORDER BY window_start"
    if limit is not None:
        sql += " LIMIT %(n)s"
        params["n"] = limit
    return sql, params


def window_at(when: datetime) -> Query:
    """The released window containing ``when`` (zero or one row)."""
    return (
        f"SELECT {WINDOW_COLS} FROM release_windows FINAL "
        "WHERE window_start <= toDateTime(%(t)s) AND window_end > toDateTime(%(t)s) "
        "ORDER BY window_start DESC LIMIT 1",
        {"t": epoch_s(when)},
    )


def recent_windows(limit: int) -> Query:
    """The ``limit`` newest released windows, newest first."""
    return (
        f"SELECT {WINDOW_COLS} FROM release_windows FINAL ORDER BY window_start DESC LIMIT %(n)s",
        {"n": limit},
    )


def windows_up_to(start: datetime, limit: int) -> Query:
    """The ``limit`` newest released windows starting at or before ``start``, newest first."""
    return (
        f"SELECT {WINDOW_COLS} FROM release_windows FINAL WHERE window_start <= toDateTime(%(t)s) "
        "ORDER BY window_start DESC LIMIT %(n)s",
        {"t": epoch_s(start), "n": limit},
    )
