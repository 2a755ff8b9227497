"""Tourism resource: areas (a registered zone + capacity + time zone)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tourism.areas import DEFAULT_TIMEZONE


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


class DailyResponse(BaseModel):
    area: str
    timezone: str
    unit: str = Field(description="what the values count: devices, or visitors with an expansion factor")
    expansion: float | None = Field(description="visitors per device given by the caller (null: devices)")
    days: list[TourismDayOut] = Field(description="released days of the range only, oldest first")


class HourOut(BaseModel):
    start: datetime = Field(description="start of the local hour, with the area's UTC offset")
    estimate: float = Field(description="mean occupancy of the hour's minute releases, in `unit`")
    sigma: float = Field(description="standard error: sqrt(sum of the minutes' variances) / windows")
    lo: float
    hi: float
    display: int = Field(description="estimate rounded and clipped to >= 0")
    windows: int = Field(description="minute releases averaged (60 for a whole released hour)")


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
