"""Request geometry → H3 cells: bbox and polygon parsing, limits, covers, cell boundaries.

Cells are ``int`` (UInt64 in ClickHouse) inside; hex strings only in requests and responses.
Areas are in km², coordinates are lon/lat (GeoJSON order).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import h3
import orjson
from shapely.geometry import MultiPolygon, Polygon, box, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.validation import explain_validity

from api.exceptions import BadRequestError, UnknownCellError
from hexpulse.units import METRES_PER_DEGREE

BBox = tuple[float, float, float, float]
_KM_PER_DEG = METRES_PER_DEGREE / 1000


def parse_bbox(raw: str) -> BBox:
    """``minLon,minLat,maxLon,maxLat`` → a validated tuple (degrees)."""
    parts = raw.split(",")
    if len(parts) != 4:
        raise BadRequestError("bbox must be four numbers: minLon,minLat,maxLon,maxLat")
    try:
        lo_lon, lo_lat, hi_lon, hi_lat = (float(p) for p in parts)
    except ValueError:
        raise BadRequestError("bbox must be four numbers: minLon,minLat,maxLon,maxLat") from None
    if not all(math.isfinite(v) for v in (lo_lon, lo_lat, hi_lon, hi_lat)):
        raise BadRequestError("bbox values must be finite numbers")
    if not (-180 <= lo_lon < hi_lon <= 180) or not (-90 <= lo_lat < hi_lat <= 90):
        raise BadRequestError(
            "bbox must satisfy -180 <= minLon < maxLon <= 180 and -90 <= minLat < maxLat <= 90"
        )
    return lo_lon, lo_lat, hi_lon, hi_lat


def area_km2(geom: BaseGeometry) -> float:
    """Approximate area in km² (equirectangular at the centroid latitude; fine for limits)."""
    lat = geom.centroid.y
    return float(geom.area) * _KM_PER_DEG * _KM_PER_DEG * math.cos(math.radians(lat))


def check_area(geom: BaseGeometry, cap_km2: float, what: str) -> None:
    area = area_km2(geom)
    if area > cap_km2:
        raise BadRequestError(f"the {what} covers about {area:,.0f} km², above the cap of {cap_km2:,.0f} km²")


def parse_polygon(doc: Any, max_vertices: int) -> BaseGeometry:
    """A GeoJSON Polygon/MultiPolygon (or a Feature holding one) → a valid shapely geometry."""
    if isinstance(doc, dict) and doc.get("type") == "Feature":
        doc = doc.get("geometry")
    if not isinstance(doc, dict) or doc.get("type") not in ("Polygon", "MultiPolygon"):
        raise BadRequestError("geometry must be a GeoJSON Polygon or MultiPolygon")
    try:
        geom = shape(doc)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError):
        raise BadRequestError("geometry coordinates are not a valid GeoJSON polygon") from None
    if not isinstance(geom, Polygon | MultiPolygon) or geom.is_empty:
        raise BadRequestError("geometry must be a non-empty Polygon or MultiPolygon")
    vertices = sum(len(ring.coords) for poly in _parts(geom) for ring in (poly.exterior, *poly.interiors))
    if vertices > max_vertices:
        raise BadRequestError(f"the polygon has {vertices} vertices, above the cap of {max_vertices}")
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise BadRequestError("polygon coordinates must be lon in [-180, 180] and lat in [-90, 90]")
    if not geom.is_valid:
        raise BadRequestError(
            f"the polygon is invalid ({explain_validity(geom)}); self-intersections are refused"
        )
    return geom


def _parts(geom: BaseGeometry) -> list[Polygon]:
    return list(geom.geoms) if isinstance(geom, MultiPolygon) else [geom]  # type: ignore[list-item]


def cover(geom: BaseGeometry, res: int) -> frozenset[int]:
    """H3 cells at ``res`` whose centres lie in ``geom`` (h3 polygon cover)."""
    cells: set[int] = set()
    for poly in _parts(geom):
        found = h3.geo_to_cells(mapping(poly), res)  # type: ignore[arg-type]
        cells.update(h3.str_to_int(c) for c in found)
    return frozenset(cells)


@lru_cache(maxsize=512)
def bbox_cover(bbox: BBox, res: int) -> frozenset[int]:
    """Cells at ``res`` that overlap a bbox, so a map view has no gaps at its edges (cached:
    dashboards ask for the same view over and over)."""
    shp = h3.geo_to_h3shape(mapping(box(*bbox)))
    found = h3.h3shape_to_cells_experimental(shp, res, contain="overlap")
    return frozenset(h3.str_to_int(c) for c in found)


def parse_cell(raw: str, allowed: tuple[int, ...]) -> int:
    """An H3 hex string → int, checking it is a valid cell at a released resolution."""
    try:
        valid = h3.is_valid_cell(raw)
    except (ValueError, TypeError, OverflowError):  # h3 overflows on hex longer than 64 bits
        valid = False
    if not valid:
        raise UnknownCellError(f"{raw[:32]!r} is not a valid H3 cell id")
    res = h3.get_resolution(raw)
    if res not in allowed:
        raise UnknownCellError(f"cell {raw} is at resolution {res}; released resolutions are {list(allowed)}")
    return int(h3.str_to_int(raw))


@lru_cache(maxsize=200_000)
def cell_hex(cell: int) -> str:
    return str(h3.int_to_str(cell))


@lru_cache(maxsize=200_000)
def cell_area_km2(cell: int) -> float:
    return float(h3.cell_area(h3.int_to_str(cell), "km^2"))


@lru_cache(maxsize=200_000)
def cell_ring_json(cell: int) -> bytes:
    """The cell's closed exterior ring as GeoJSON coordinates, lon/lat, 6 decimals (~0.1 m)."""
    boundary = h3.cell_to_boundary(h3.int_to_str(cell))  # (lat, lng) pairs
    ring = [[round(lng, 6), round(lat, 6)] for lat, lng in boundary]
    ring.append(ring[0])
    return orjson.dumps([ring])
