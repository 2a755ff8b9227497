"""Traffic resource: per-cell and per-corridor moving counts, speeds and congestion; the congestion
index series."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from api.schemas.common import PrivacySummary, WindowOut

Level = Literal["free", "light", "moderate", "heavy", "severe"]


class TrafficCell(BaseModel):
    cell: str
    source: Literal["bins", "cells"] = Field(
        description="'bins': from the window's released speed bins (release_traffic); 'cells': the"
        " window has no bins, values from the released cell speeds"
    )
    moving: int = Field(description="persons moving ≥ 2 m/s (noisy)")
    moving_ci95: tuple[float, float]
    mean_speed_kmh: float | None
    speed_ci95_kmh: tuple[float, float] | None
    free_flow_kmh: float | None = Field(
        description="bins: mean speed of the cell's released bins summed over the quiet hours of the"
        " trailing days; cells: 85th percentile of its released speeds, trailing 7 days"
    )
    free_flow_ci95_kmh: tuple[float, float] | None = Field(None, description="bins only")
    free_flow_windows: int = Field(description="windows pooled (bins) or with a released speed (cells)")
    speed_windows: int = Field(1, description="bins: released windows whose bins the speed, index and level"
                               " are taken from (the query's windows, fewer where fewer are published)")
    congestion_index: float | None = Field(description="free-flow speed / current speed (1 = free flow)")
    congestion_index_ci95: tuple[float, float] | None = Field(None, description="bins only")
    level: Level | None
    level_range: tuple[Level, Level] | None = Field(
        None, description="bins only: the levels at the ends of the index's 95% interval"
    )


class TrafficCorridor(BaseModel):
    """A zone measured directly for traffic (a road corridor): its bins are one draw over the sum
    of its base cells' devices, so its σ does not grow with its length."""

    zone_id: str
    zone_set: str = Field(description="the zone set, e.g. corridor")
    name: str
    version: int = Field(description="the zone version the window measured")
    cells: int = Field(description="base cells (H3 res 9) the corridor holds")
    moving: int = Field(description="persons moving ≥ 2 m/s on the corridor (noisy)")
    moving_ci95: tuple[float, float]
    mean_speed_kmh: float | None
    speed_ci95_kmh: tuple[float, float] | None
    free_flow_kmh: float | None = Field(
        description="mean speed of the corridor's released bins summed over the quiet hours of the"
        " trailing days"
    )
    free_flow_ci95_kmh: tuple[float, float] | None
    free_flow_windows: int = Field(description="quiet windows pooled")
    speed_windows: int = Field(description="released windows whose bins the speed, index and level are"
                               " taken from (the query's windows, fewer where fewer are published)")
    congestion_index: float | None = Field(description="free-flow speed / current speed (1 = free flow)")
    congestion_index_ci95: tuple[float, float] | None
    level: Level | None
    level_range: tuple[Level, Level] | None = Field(
        description="the levels at the ends of the index's 95% interval"
    )
    geometry: dict[str, Any] | None = Field(description="the corridor's GeoJSON outline (lon, lat)")


class TrafficResponse(BaseModel):
    window: WindowOut
    resolution: int
    bbox: tuple[float, float, float, float]
    levels: dict[str, str] = Field(description="congestion-index thresholds of each level")
    privacy: PrivacySummary
    cells: list[TrafficCell]
    corridors: list[TrafficCorridor] = Field(
        description="zones measured directly for traffic whose outline intersects the bbox, by set and id"
    )


class IndexPoint(BaseModel):
    window_start: datetime
    index: float | None = Field(description="travel time now / travel time at free flow (1 = free flow)")
    sigma: float | None = Field(description="standard error of the index")
    ci95: tuple[float, float] | None
    level: Level | None
    source: Literal["corridors", "cells"] | None = Field(
        description="what the index weighs: the window's corridors when it measured them, else its cells"
    )
    cells: int = Field(description="cells with a free-flow reference that the index weighs")
    corridors: int = Field(description="corridors with a free-flow reference that the index weighs")


class IndexResponse(BaseModel):
    resolution: int
    bbox: tuple[float, float, float, float] | None = Field(description="the district; null: the whole city")
    zone_set: str = Field(description="the zone set weighed in windows that measured it")
    from_: datetime = Field(alias="from")
    to: datetime
    free_flow_hours_utc: list[int]
    free_flow_days: int
    series: list[IndexPoint]
