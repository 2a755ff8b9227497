"""Zones resource: registered zones (admin writes, density:read reads) and one zone's series."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ZoneIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    id: str | None = Field(None, description="optional id (lower case, digits, '-'); generated when absent",
                           max_length=64)  # fmt: skip
    zone_set: str = Field(alias="set", description="a zone set the budget plan funds, e.g. crowd, district",
                          max_length=64)  # fmt: skip
    name: str = Field(max_length=200)
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon (or a Feature holding one)")


class ZoneOut(BaseModel):
    id: str
    version: int
    set: str
    name: str
    geometry: dict[str, Any]
    cells: int = Field(description="base-resolution cells whose centres lie in the zone (what is measured)")
    valid_from: datetime = Field(description="UTC window start from which this version is measured")
    valid_to: datetime | None = Field(description="UTC window start from which it is not (null: open)")


class ZoneList(BaseModel):
    zones: list[ZoneOut]


class ZoneDetail(ZoneOut):
    versions: list[ZoneOut] = Field(description="every version, oldest first")


class ZonePointOut(BaseModel):
    window_start: datetime
    window_end: datetime
    version: int = Field(description="the zone version measured in this window")
    estimate: float = Field(description="unbiased estimate of devices in the zone (may be < 0; sum these)")
    sigma: float = Field(description="standard error of the estimate, devices")
    ci95: tuple[float, float] = Field(description="95% interval, devices (cut at 0)")
    count: int = Field(ge=0, description="the estimate clipped to a non-negative integer (for display)")
    cells: int


class ZoneSeries(BaseModel):
    id: str
    set: str
    name: str
    series: list[ZonePointOut] = Field(description="one point per released window, oldest first")
