"""A UTC day of released data, whole, for exports (open data): its windows, cells and zone values.

Like every read here, only windows with a ``release_windows`` row count, so cells or zone rows
written ahead of their window's publication are never exported. Reads are synchronous (exports
run in a follower process, not in the API's event loop).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hexpulse.store.pool import ClickHousePool
from hexpulse.times import epoch_s

DAY_CELL_COLUMNS = (
    "window_start", "window_end", "res", "cell", "count_est", "count_sigma", "count_lo", "count_hi",
    "count", "moving_est", "moving_sigma", "moving_lo", "moving_hi", "moving", "speed_kmh",
    "speed_lo_kmh", "speed_hi_kmh",
)  # fmt: skip
"""Columns of :func:`cells_between` rows, in order (times in epoch seconds, cell a uint64)."""
DAY_ZONE_COLUMNS = (
    "window_start", "window_end", "zone_set", "zone_id", "version", "count_est", "count_sigma",
    "count_lo", "count_hi", "count", "cells",
)  # fmt: skip
"""Columns of :func:`day_zones` rows, in order."""


def _bounds(day: date) -> dict[str, Any]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return {"a": epoch_s(start), "b": epoch_s(start + timedelta(days=1))}


_WINDOWS = (
    "SELECT window_start, window_end FROM release_windows FINAL"
    " WHERE window_start >= toDateTime(%(a)s) AND window_start < toDateTime(%(b)s)"
)


def released_days(pool: ClickHousePool, since: date) -> list[date]:
    """UTC days from ``since`` on with at least one released window, oldest first."""
    rows = pool.query(
        "SELECT DISTINCT toDate(window_start) AS d FROM release_windows FINAL"
        " WHERE window_start >= toDateTime(%(a)s) ORDER BY d",
        {"a": _bounds(since)["a"]},
    )
    return [r[0] for r in rows]


def day_window_starts(pool: ClickHousePool, day: date) -> list[datetime]:
    """Starts (naive UTC) of the released windows of ``day``, oldest first."""
    return [
        r[0] for r in pool.query(f"SELECT window_start FROM ({_WINDOWS}) ORDER BY window_start", _bounds(day))
    ]


def cells_between(pool: ClickHousePool, start: datetime, end: datetime) -> list[tuple[Any, ...]]:
    """Every released cell (all resolutions) of the windows starting in [start, end) (naive or aware
    UTC), ordered by window, resolution, cell; times in epoch seconds. A day at real density is
    millions of rows: read it in slices of windows."""
    values = ", ".join(DAY_CELL_COLUMNS[2:])
    bounds = {"a": epoch_s(start), "b": epoch_s(end)}
    return pool.query(
        # Times as integers: the driver's per-value DateTime → aware datetime was most of the read.
        f"SELECT toUInt32(window_start), toUInt32(window_end), {values} FROM (SELECT window_start, {values}"
        " FROM release_cells FINAL"
        " WHERE window_start >= toDateTime(%(a)s) AND window_start < toDateTime(%(b)s)) AS c"
        f" ANY INNER JOIN ({_WINDOWS}) AS w USING window_start ORDER BY window_start, res, cell",
        bounds,
    )


def day_zones(pool: ClickHousePool, day: date) -> list[tuple[Any, ...]]:
    """Every released zone value of ``day``, ordered by window, set, zone."""
    values = ", ".join(DAY_ZONE_COLUMNS[2:])
    return pool.query(
        f"SELECT window_start, window_end, {values} FROM (SELECT window_start, {values}"
        " FROM release_zones FINAL"
        " WHERE window_start >= toDateTime(%(a)s) AND window_start < toDateTime(%(b)s)) AS z"
        f" ANY INNER JOIN ({_WINDOWS}) AS w USING window_start ORDER BY window_start, zone_set, zone_id",
        _bounds(day),
    )
