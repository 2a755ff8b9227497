"""Density resource: GeoJSON features, compact rows, area and cell time series."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import PrivacySummary, WindowOut


class DensityProperties(BaseModel):
    cell: str = Field(description="H3 index, hex string")
    res: int
    window_start: datetime
    window_end: datetime
    count: int = Field(ge=0, description="persons in the cell, for display (noisy, made ≥ 0)")
    count_sigma: float = Field(description="standard error of count_est, persons")
    count_est: float = Field(description="unbiased estimate of persons in the cell (may be < 0); sum these")
    ci95: tuple[float, float] = Field(description="95% interval of count, persons")
    density_per_km2: float = Field(description="count / the cell's own area (h3.cell_area), persons/km²")
    density_ci95: tuple[float, float] = Field(description="ci95 / cell area, persons/km²")
    area_km2: float
    moving: int = Field(ge=0, description="persons moving (≥ 2 m/s), noisy")
    moving_ci95: tuple[float, float]
    moving_est: float | None = Field(description="unbiased estimate of the moving persons (may be < 0)")
    mean_speed_kmh: float | None = Field(description="mean speed of moving persons; null when too few")
    speed_ci95_kmh: tuple[float, float] | None
    smoothed: bool | None = Field(None, description="present (true) with smooth=true: count_smoothed follows")
    count_smoothed: float | None = Field(
        None, description="smooth=true: count filtered over the last released windows, persons, ≥ 0"
    )
    count_smoothed_ci95: tuple[float, float] | None = Field(
        None, description="smooth=true: 95% interval of count_smoothed under the filter's model"
    )


class SmoothingInfo(BaseModel):
    smoothed: bool
    method: str = Field(description="the filter and its parameters, in words")
    windows_used: int = Field(description="released windows the filter read (this one included)")
    from_window_start: datetime | None
    note: str


class DensityFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon, lon/lat, closed counter-clockwise ring")
    properties: DensityProperties


class DensityCollection(BaseModel):
    type: Literal["FeatureCollection"] = "FeatureCollection"
    window: WindowOut
    resolution: int
    bbox: tuple[float, float, float, float]
    privacy: PrivacySummary
    smoothing: SmoothingInfo | None = Field(None, description="present with smooth=true")
    features: list[DensityFeature]


class DensityRows(BaseModel):
    """``format=rows``: one array per cell in the order of ``columns``."""

    window: WindowOut
    resolution: int
    bbox: tuple[float, float, float, float]
    privacy: PrivacySummary
    smoothing: SmoothingInfo | None = Field(None, description="present with smooth=true")
    columns: list[str]
    rows: list[list[Any]]


class AreaRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon (or a Feature holding one)")
    res: int = Field(9, description="cover resolution: the finest cells, used along the boundary")
    from_: datetime = Field(alias="from", description="UTC start (inclusive)")
    to: datetime = Field(description="UTC end (exclusive)")


class SeriesPoint(BaseModel):
    window_start: datetime
    window_end: datetime
    estimate: float = Field(description="Σ of the cells' unbiased estimates, persons (may be < 0 when empty)")
    sigma: float = Field(description="standard error of the sum, persons, from the estimator's covariance")
    ci95: tuple[float, float] = Field(description="estimate ± 1.96 σ (unbiased interval; low end may be < 0)")
    ci95_nonneg: tuple[float, float] = Field(description="ci95 cut at 0 (counts are never negative)")
    cells_released: int
    sigma_method: str = Field(
        description="'plan covariance', 'zone measurement', or 'independent cells (no recorded plan)'"
    )
    source: str = Field("cells", description="'cells' (a sum of released cells) or 'zone' (its own draw)")


class SeriesResponse(BaseModel):
    resolution: int
    cells: int = Field(description="cells in the requested selection")
    cells_released: int = Field(description="of those, cells that are released (inside the service area)")
    from_: datetime = Field(alias="from")
    to: datetime
    series: list[SeriesPoint]


class CoverOut(BaseModel):
    cells: dict[str, int] = Field(description="cells of the compacted cover per resolution")
    cover_area_km2: float = Field(description="area of the cover's cells (h3.cell_area), km²")
    polygon_area_km2: float = Field(description="area of the requested polygon, km²")
    cover_to_polygon: float | None = Field(description="cover_area_km2 / polygon_area_km2")


class ZoneRef(BaseModel):
    id: str
    version: int
    set: str
    name: str


class AreaResponse(SeriesResponse):
    source: str = Field(
        description="'cells': a sum of released cells over the cover; 'zone': every window from the "
        "registered zone's own measurement; 'zone+cells': the zone where it was measured, cells before"
    )
    cover: CoverOut
    zone: ZoneRef | None = Field(None, description="the registered zone the polygon matched, if any")
