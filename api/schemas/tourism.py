"""Tourism resource: areas (a registered zone + capacity + time zone)."""

from __future__ import annotations

from datetime import datetime
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
