"""Traffic resource: per-cell moving counts, speeds and congestion; the congestion index series."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

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
    congestion_index: float | None = Field(description="free-flow speed / current speed (1 = free flow)")
    congestion_index_ci95: tuple[float, float] | None = Field(None, description="bins only")
    level: Level | None
    level_range: tuple[Level, Level] | None = Field(
        None, description="bins only: the levels at the ends of the index's 95% interval"
    )


class TrafficResponse(BaseModel):
    window: WindowOut
    resolution: int
    bbox: tuple[float, float, float, float]
    levels: dict[str, str] = Field(description="congestion-index thresholds of each level")
    privacy: PrivacySummary
    cells: list[TrafficCell]


class IndexPoint(BaseModel):
    window_start: datetime
    index: float | None = Field(description="travel time now / travel time at free flow (1 = free flow)")
    sigma: float | None = Field(description="standard error of the index")
    ci95: tuple[float, float] | None
    level: Level | None
    cells: int = Field(description="cells with a free-flow reference that the index weighs")


class IndexResponse(BaseModel):
    resolution: int
    bbox: tuple[float, float, float, float] | None = Field(description="the district; null: the whole city")
    from_: datetime = Field(alias="from")
    to: datetime
    free_flow_hours_utc: list[int]
    free_flow_days: int
    series: list[IndexPoint]
