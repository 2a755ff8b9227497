"""Released zone values (``release_zones``): one zone's series over published windows.

Like every read here, only windows with a ``release_windows`` row are returned, so zone rows
written ahead of their window's publication are never served.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from hexpulse.store.pool import ClickHousePool
from hexpulse.times import epoch_s, utc


@dataclass(frozen=True, slots=True)
class ZonePoint:
    """One zone in one released window. Counts are devices: ``count_est`` the unbiased estimate
    (may be < 0; what sums use), ``count`` the clipped non-negative integer a map shows,
    ``count_sigma`` the standard error, ``count_lo``/``count_hi`` the 95% interval; ``version`` the
    zone version measured and ``cells`` its number of base cells."""

    window_start: datetime
    window_end: datetime
    version: int
    count: int
    count_est: float
    count_sigma: float
    count_lo: float
    count_hi: float
    cells: int

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> ZonePoint:
        return cls(utc(row[0]), utc(row[1]), int(row[2]), int(row[3]), float(row[4]), float(row[5]),
                   float(row[6]), float(row[7]), int(row[8]))  # fmt: skip


def _series_sql(zone_id: str, start: datetime, end: datetime) -> tuple[str, dict[str, Any]]:
    return (
        "SELECT window_start, window_end, version, count, count_est, count_sigma, count_lo, count_hi, cells"
        " FROM (SELECT window_start, version, count, count_est, count_sigma, count_lo, count_hi, cells"
        " FROM release_zones FINAL WHERE zone_id = %(id)s"
        " AND window_start >= toDateTime(%(a)s) AND window_start < toDateTime(%(b)s)) AS z"
        " ANY INNER JOIN (SELECT window_start, window_end FROM release_windows FINAL"
        " WHERE window_start >= toDateTime(%(a)s) AND window_start < toDateTime(%(b)s)) AS w"
        " USING window_start ORDER BY window_start",
        {"id": zone_id, "a": epoch_s(start), "b": epoch_s(end)},
    )


async def zone_series(pool: ClickHousePool, zone_id: str, start: datetime, end: datetime) -> list[ZonePoint]:
    """The zone's released values per published window starting in [start, end), oldest first."""
    return [ZonePoint.from_row(r) for r in await pool.aquery(*_series_sql(zone_id, start, end))]


async def zone_at(pool: ClickHousePool, zone_id: str, window_start: datetime) -> ZonePoint | None:
    """The zone's released value in the published window starting at ``window_start`` (or None)."""
    rows = await pool.aquery(*_series_sql(zone_id, window_start, window_start + timedelta(seconds=1)))
    return ZonePoint.from_row(rows[0]) if rows else None


def window_zones(pool: ClickHousePool, window_start: datetime) -> dict[str, ZonePoint]:
    """Every zone's released value in the published window starting at ``window_start``, by zone
    id (blocking; for feed followers, which are handed windows already published)."""
    a = epoch_s(window_start)
    rows = pool.query(
        "SELECT zone_id, window_start, window_end, version, count, count_est, count_sigma, count_lo,"
        " count_hi, cells FROM (SELECT zone_id, window_start, version, count, count_est, count_sigma,"
        " count_lo, count_hi, cells FROM release_zones FINAL WHERE window_start = toDateTime(%(a)s)) AS z"
        " ANY INNER JOIN (SELECT window_start, window_end FROM release_windows FINAL"
        " WHERE window_start = toDateTime(%(a)s)) AS w USING window_start",
        {"a": a},
    )
    return {str(r[0]): ZonePoint.from_row(r[1:]) for r in rows}
