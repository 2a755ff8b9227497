"""Released tourism days (migration 0016): one area's released local days and their metrics.

A day is served only when its ``release_tourism_days`` row exists: the daily releaser writes the
metric rows (``release_tourism_daily``) first and that row last, so a day half written is never
read. Values are devices: ``estimate`` unbiased (may be < 0; what sums use), ``sigma`` its
standard error, ``lo``/``hi`` the 95% interval, ``display`` the clipped integer a chart shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from hexpulse.store.pool import ClickHousePool
from hexpulse.times import utc
from hexpulse.zones import Zone, zones_in_effect

VISITORS = "visitors"
DWELL_BINS = ("dwell_lt_15m", "dwell_15_60m", "dwell_1_3h", "dwell_ge_3h")
"""The dwell histogram's metrics, shortest stay first (dwell = minutes present that day)."""
DWELL_LABELS = {"dwell_lt_15m": "< 15 min", "dwell_15_60m": "15–60 min", "dwell_1_3h": "1–3 h",
                "dwell_ge_3h": "≥ 3 h"}  # fmt: skip
METRICS = (VISITORS, *DWELL_BINS)


@dataclass(frozen=True, slots=True)
class DailyValue:
    """One released metric of an area-day, in devices."""

    estimate: float
    sigma: float
    lo: float
    hi: float
    display: int


@dataclass(frozen=True)
class TourismDay:
    """One released area-day: ``day_start``/``day_end`` the local day's bounds (aware UTC),
    ``k_areas`` the per-device-day area bound in force, ``values`` by metric name."""

    area_id: str
    local_date: date
    timezone: str
    day_start: datetime
    day_end: datetime
    k_areas: int
    plan: int
    released_at: datetime
    values: dict[str, DailyValue]

    @property
    def lag_s(self) -> float:
        """Seconds from the local day's end (local midnight) to its release."""
        return (self.released_at - self.day_end).total_seconds()


_DAYS_SQL = (
    "SELECT area_id, local_date, timezone, day_start, day_end, k_areas, day_plan, released_at, metric,"
    " estimate, sigma, lo, hi, display FROM (SELECT area_id, local_date, timezone, day_start, day_end,"
    " k_areas, plan AS day_plan, released_at FROM release_tourism_days FINAL WHERE {where}) AS d"
    " ALL INNER JOIN (SELECT area_id, local_date, metric, estimate, sigma, lo, hi, display"
    " FROM release_tourism_daily FINAL WHERE {where}) AS v USING area_id, local_date"
    " ORDER BY local_date, area_id, metric"
)


def _days(rows: list[tuple[Any, ...]]) -> list[TourismDay]:
    days: dict[tuple[str, date], TourismDay] = {}
    for r in rows:
        key = (str(r[0]), r[1])
        day = days.get(key)
        if day is None:
            day = TourismDay(key[0], r[1], str(r[2]), utc(r[3]), utc(r[4]), int(r[5]), int(r[6]),
                             utc(r[7]), {})  # fmt: skip
            days[key] = day
        day.values[str(r[8])] = DailyValue(float(r[9]), float(r[10]), float(r[11]), float(r[12]), int(r[13]))
    return list(days.values())


def _area_sql(area_id: str, first: date, last: date) -> tuple[str, dict[str, Any]]:
    where = "area_id = %(id)s AND local_date >= %(a)s AND local_date <= %(b)s"
    return _DAYS_SQL.format(where=where), {"id": area_id, "a": first, "b": last}


async def area_days(pool: ClickHousePool, area_id: str, first: date, last: date) -> list[TourismDay]:
    """The area's released local days in [first, last], oldest first."""
    return _days(await pool.aquery(*_area_sql(area_id, first, last)))


def area_days_sync(pool: ClickHousePool, area_id: str, first: date, last: date) -> list[TourismDay]:
    """:func:`area_days`, blocking (for the command line)."""
    return _days(pool.query(*_area_sql(area_id, first, last)))


def days_of_local_date(pool: ClickHousePool, local_date: date) -> list[TourismDay]:
    """Every area's released day of ``local_date`` (blocking; for exports), by area id."""
    return _days(pool.query(_DAYS_SQL.format(where="local_date = %(d)s"), {"d": local_date}))


def day_geometries(pool: ClickHousePool, days: list[TourismDay]) -> dict[tuple[str, date], str | None]:
    """Per released area-day, the GeoJSON geometry (text, as registered) of the zone its area named
    at the local day's start; None when the zone was registered without one (blocking; exports)."""
    out: dict[tuple[str, date], str | None] = {}
    for start in sorted({d.day_start for d in days}):
        named = dict(pool.query(
            "SELECT area_id, argMax(zone_id, revision) FROM tourism_areas WHERE revision < %(ns)s "
            "GROUP BY area_id", {"ns": int(start.timestamp()) * 1_000_000_000}))  # fmt: skip
        zones = {z.zone_id: z for z in map(Zone.from_row, pool.query(*zones_in_effect(start)))}
        for d in days:
            if d.day_start == start:
                zone = zones.get(str(named.get(d.area_id, "")))
                shape = zone.geometry if zone is not None else ""
                out[(d.area_id, d.local_date)] = shape if shape not in ("", "{}") else None
    return out
