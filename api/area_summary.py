"""The service area in public terms: size, cells per released resolution, bounds and an outline.

Configuration only (the operator's GeoJSON and the H3 grid), no data: the transparency page and
the dashboard may show it without a key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import h3
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings

#: Width of the outline drawing in SVG user units (the height follows the area's aspect).
SVG_WIDTH = 320.0


@dataclass(frozen=True)
class AreaSummary:
    """``cells_km2``: the area of the released base cells (``h3.cell_area``), km²; ``cells``:
    released cells per resolution; ``bounds``: (min lon, min lat, max lon, max lat), degrees;
    ``svg_path``/``svg_height``: the outline in an SVG of width :data:`SVG_WIDTH`."""

    cells_km2: float
    cells: dict[int, int]
    bounds: tuple[float, float, float, float]
    svg_path: str
    svg_height: float


def _rings(geometry: BaseGeometry) -> list[list[tuple[float, float]]]:
    polygons = list(geometry.geoms) if isinstance(geometry, MultiPolygon) else [geometry]
    rings = []
    for poly in polygons:
        if isinstance(poly, Polygon):
            rings.append([(float(x), float(y)) for x, y in poly.exterior.coords])
            rings += [[(float(x), float(y)) for x, y in hole.coords] for hole in poly.interiors]
    return rings


def outline(geometry: BaseGeometry) -> tuple[str, float]:
    """SVG path data of ``geometry`` (lon/lat) and the drawing's height: an equirectangular
    projection scaled by cos(latitude), so shapes keep their proportions locally."""
    lon0, lat0, lon1, lat1 = geometry.bounds
    kx = math.cos(math.radians((lat0 + lat1) / 2))
    span = max((lon1 - lon0) * kx, lat1 - lat0, 1e-12)
    scale = SVG_WIDTH / span
    height = max((lat1 - lat0) * scale, 1.0)
    parts = []
    for ring in _rings(geometry):
        pts = [f"{(x - lon0) * kx * scale:.1f},{(lat1 - y) * scale:.1f}" for x, y in ring]
        parts.append("M" + " L".join(pts) + " Z")
    return " ".join(parts), height


@lru_cache(maxsize=4)
def area_summary(settings: Settings) -> AreaSummary:
    area = load_service_area(settings)
    km2 = sum(h3.cell_area(h3.int_to_str(int(c)), "km^2") for c in area.cells.tolist())
    cells = {res: int(area.cells_at(res).size) for res in sorted(settings.release_resolutions, reverse=True)}
    path, height = outline(area.geometry)
    bounds: tuple[float, float, float, float] = tuple(float(v) for v in area.geometry.bounds)  # type: ignore[assignment]
    return AreaSummary(km2, cells, bounds, path, height)
