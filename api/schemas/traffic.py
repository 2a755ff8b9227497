"""Traffic resource: per-cell moving counts, speeds and congestion."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.common import PrivacySummary, WindowOut

Level = Literal["free", "light", "moderate", "heavy", "severe"]


class TrafficCell(BaseModel):
    cell: str
    moving: int = Field(description="persons moving ≥ 2 m/s (noisy)")
    moving_ci95: tuple[float, float]
    mean_speed_kmh: float | None
    speed_ci95_kmh: tuple[float, float] | None
    free_flow_kmh: float | None = Field(
        description="85th percentile of this cell's released speeds, trailing 7 days"
    )
    free_flow_windows: int = Field(description="windows with a released speed behind free_flow_kmh")
    congestion_index: float | None = Field(description="free-flow speed / current speed (1 = free flow)")
    level: Level | None


class TrafficResponse(BaseModel):
    window: WindowOut
    resolution: int
    bbox: tuple[float, float, float, float]
    levels: dict[str, str] = Field(description="congestion-index thresholds of each level")
    privacy: PrivacySummary
    cells: list[TrafficCell]
