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
    count: int = Field(ge=0, description="persons in the cell (noisy, post-processed to ≥ 0)")
    count_sigma: float = Field(description="noise standard deviation of count, persons")
    ci95: tuple[float, float] = Field(description="95% interval of count, persons")
    density_per_km2: float = Field(description="count / the cell's own area (h3.cell_area), persons/km²")
    density_ci95: tuple[float, float] = Field(description="ci95 / cell area, persons/km²")
    area_km2: float
    moving: int = Field(ge=0, description="persons moving (≥ 2 m/s), noisy")
    moving_ci95: tuple[float, float]
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
    res: int = 9
    from_: datetime = Field(alias="from", description="UTC start (inclusive)")
    to: datetime = Field(description="UTC end (exclusive)")


class SeriesPoint(BaseModel):
    window_start: datetime
    window_end: datetime
    count: int = Field(description="summed noisy count, persons")
    sigma: float = Field(description="noise σ of the sum: sqrt(Σ σ²) over the cells")
    ci95: tuple[float, float] = Field(description="count ± 1.96 σ, low clipped at 0")
    cells_released: int


class SeriesResponse(BaseModel):
    resolution: int
    cells: int = Field(description="cells in the requested cover")
    cells_released: int = Field(description="of those, cells that are released (inside the service area)")
    from_: datetime = Field(alias="from")
    to: datetime
    series: list[SeriesPoint]
