"""Tourism resource: areas (a registered zone + capacity + time zone), their released days, the
hourly occupancy curve; each output schema builds itself from the read side's value (``of``)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from releases.tourism import DWELL_BINS, METRICS, VISITORS, DailyValue, TourismDay
from tourism.areas import DEFAULT_TIMEZONE
from tourism.hourly import Hour

_CSV_VALUES = ("estimate", "sigma", "lo", "hi", "display")


class AreaIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    id: str | None = Field(None, max_length=64, description="optional id (lower case, digits, '-')")
    name: str = Field(max_length=200)
    zone: str | None = Field(None, max_length=64, description="id of a registered zone to use as the area")
    geometry: dict[str, Any] | None = Field(
        None, description="or: a GeoJSON Polygon/MultiPolygon, registered as a new zone of `set`"
    )
    zone_set: str = Field("crowd", alias="set", max_length=64, description="zone set for a new zone")
    capacity: int | None = Field(None, description="instantaneous maximum of visitors the area admits")
    timezone: str = Field(DEFAULT_TIMEZONE, max_length=64, description="IANA time zone of the area's day")


class AreaUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=200)
    capacity: int | None = None
    timezone: str = Field(DEFAULT_TIMEZONE, max_length=64)


class AreaOut(BaseModel):
    id: str
    name: str
    zone: str = Field(description="the registered zone measured for this area")
    set: str
    geometry: dict[str, Any]
    cells: int = Field(description="base-resolution cells of the zone")
    capacity: int | None = Field(description="visitors at once; null when not stated")
    capacity_warning_at: int | None = Field(description="80% of capacity: occupancy above it is flagged")
    timezone: str
    created_at: datetime


class AreaList(BaseModel):
    areas: list[AreaOut]


class DailyValueOut(BaseModel):
    estimate: float = Field(description="unbiased estimate (may be < 0; add these for sums), in `unit`")
    sigma: float = Field(description="standard error of the estimate, in `unit`")
    lo: float = Field(description="lower bound of the 95% interval")
    hi: float = Field(description="upper bound of the 95% interval")
    display: int = Field(description="the estimate rounded and clipped to >= 0 (never sum it)")

    @classmethod
    def of(cls, v: DailyValue, scale: float) -> DailyValueOut:
        """``v`` in devices × ``scale`` (1: devices, as released)."""
        display = v.display if scale == 1.0 else max(0, round(v.estimate * scale))
        return cls(estimate=v.estimate * scale, sigma=v.sigma * scale, lo=v.lo * scale, hi=v.hi * scale,
                   display=display)  # fmt: skip


class TourismDayOut(BaseModel):
    local_date: date = Field(description="the area's local calendar day")
    day_start: datetime = Field(description="the local day's start, UTC")
    day_end: datetime = Field(description="the local day's end (local midnight), UTC")
    released_at: datetime
    lag_s: float = Field(description="seconds from local midnight to the release")
    k_areas: int = Field(description="a device-day counts in at most this many areas")
    visitors: DailyValueOut = Field(description="distinct devices present in the area that local day")
    dwell: dict[str, DailyValueOut] = Field(
        description="visitors by minutes present: dwell_lt_15m, dwell_15_60m, dwell_1_3h, dwell_ge_3h"
    )

    @classmethod
    def of(cls, day: TourismDay, scale: float) -> TourismDayOut:
        return cls(
            local_date=day.local_date, day_start=day.day_start, day_end=day.day_end,
            released_at=day.released_at, lag_s=day.lag_s, k_areas=day.k_areas,
            visitors=DailyValueOut.of(day.values[VISITORS], scale),
            dwell={m: DailyValueOut.of(day.values[m], scale) for m in DWELL_BINS if m in day.values},
        )  # fmt: skip


class DailyResponse(BaseModel):
    area: str
    timezone: str
    unit: str = Field(description="what the values count: devices, or visitors with an expansion factor")
    expansion: float | None = Field(description="visitors per device given by the caller (null: devices)")
    days: list[TourismDayOut] = Field(description="released days of the range only, oldest first")

    def to_csv(self) -> str:
        """One row per day: the area, the day, then each metric's estimate, σ, interval, display."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["area", "local_date", "timezone", "unit", "released_at", "k_areas",
                         *[f"{m}_{v}" for m in METRICS for v in _CSV_VALUES]])  # fmt: skip
        for day in self.days:
            values = [day.visitors, *[day.dwell[m] for m in DWELL_BINS]]
            writer.writerow([self.area, day.local_date.isoformat(), self.timezone, self.unit,
                             day.released_at.strftime("%Y-%m-%dT%H:%M:%SZ"), day.k_areas,
                             *[round(getattr(v, f), 6) for v in values for f in _CSV_VALUES]])  # fmt: skip
        return out.getvalue()


class HourOut(BaseModel):
    start: datetime = Field(description="start of the local hour, with the area's UTC offset")
    estimate: float = Field(description="mean occupancy of the hour's minute releases, in `unit`")
    sigma: float = Field(description="standard error: sqrt(sum of the minutes' variances) / windows")
    lo: float
    hi: float
    display: int = Field(description="estimate rounded and clipped to >= 0")
    windows: int = Field(description="minute releases averaged (60 for a whole released hour)")

    @classmethod
    def of(cls, h: Hour) -> HourOut:
        return cls(start=h.start, estimate=h.estimate, sigma=h.sigma, lo=h.lo, hi=h.hi, display=h.display,
                   windows=h.windows)  # fmt: skip


class HourlyResponse(BaseModel):
    area: str
    local_date: date
    timezone: str
    unit: str = Field(description="occupancy counts devices present at once, or visitors with expansion")
    expansion: float | None
    capacity: int | None = Field(description="visitors at once (null: not stated)")
    capacity_warning_at: float | None = Field(description="80% of capacity")
    hours: list[HourOut]
    peak: HourOut | None = Field(description="the hour with the largest mean occupancy")
    peak_vs_capacity: list[float] | None = Field(
        description="peak / capacity: [estimate, lo, hi] of the 95% interval; compare devices with a "
        "capacity in visitors only with an expansion factor (devices alone understate visitors)"
    )
    warning: bool = Field(description="the peak estimate reaches 80% of capacity")

    def to_csv(self) -> str:
        """One row per local hour (the peak and capacity are per day: ask the JSON form)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["area", "local_date", "timezone", "unit", "start", "estimate", "sigma", "lo", "hi",
                         "display", "windows", "capacity"])  # fmt: skip
        for h in self.hours:
            values = [round(v, 6) for v in (h.estimate, h.sigma, h.lo, h.hi)]
            writer.writerow([self.area, self.local_date.isoformat(), self.timezone, self.unit,
                             h.start.isoformat(), *values, h.display, h.windows,
                             "" if self.capacity is None else self.capacity])  # fmt: skip
        return out.getvalue()
