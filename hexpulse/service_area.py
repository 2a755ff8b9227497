"""The operator's service area: a GeoJSON (Multi)Polygon and its H3 cells.

Its cells at the base resolution are the *public partitions*: every one of them is released every
window (zeros included), so the set of released cells depends on configuration only, never on the
data. Pings binned outside it are counted and dropped at ingest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import h3
import numpy as np
import numpy.typing as npt
import orjson
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from hexpulse.cells import parents_of
from hexpulse.errors import ConfigError
from hexpulse.settings import Settings

CellArray = npt.NDArray[np.uint64]


@dataclass(frozen=True)
class ServiceArea:
    """Cells are H3 indexes as ``uint64``, sorted; ``geometry`` is in lon/lat (GeoJSON order)."""

    geometry: BaseGeometry
    base_resolution: int
    cells: CellArray = field(repr=False)

    def contains(self, cells: CellArray) -> npt.NDArray[np.bool_]:
        """Vectorized membership of base-resolution cells in the area."""
        if self.cells.size == 0:
            return np.zeros(cells.shape, dtype=bool)
        idx = np.searchsorted(self.cells, cells)
        idx[idx == self.cells.size] = 0
        hit: npt.NDArray[np.bool_] = self.cells[idx] == cells
        return hit

    @cached_property
    def cell_set(self) -> frozenset[int]:
        return frozenset(int(c) for c in self.cells)

    def cells_at(self, res: int) -> CellArray:
        """The area's cells at a coarser resolution: the parents of its base cells (sorted, unique)."""
        if res == self.base_resolution:
            return self.cells
        if res > self.base_resolution:
            raise ValueError(f"resolution {res} is finer than the base resolution {self.base_resolution}")
        return np.unique(parents_of(self.cells, res))


def _polygons(doc: dict[str, Any]) -> list[dict[str, Any]]:
    kind = doc.get("type")
    if kind == "FeatureCollection":
        return [g for f in doc.get("features", []) for g in _polygons(f.get("geometry") or {})]
    if kind == "Feature":
        return _polygons(doc.get("geometry") or {})
    if kind in ("Polygon", "MultiPolygon"):
        return [doc]
    raise ConfigError(f"the service area must be GeoJSON Polygon or MultiPolygon features, not {kind!r}")


def service_area_from_geojson(doc: dict[str, Any], base_resolution: int) -> ServiceArea:
    polygons = _polygons(doc)
    if not polygons:
        raise ConfigError("the service area GeoJSON holds no polygon")
    cells: set[int] = set()
    geoms = []
    for poly in polygons:
        geom = shape(poly)
        if not geom.is_valid:
            raise ConfigError("the service area polygon is not valid (self-intersecting or unclosed)")
        geoms.append(geom)
        cells.update(h3.str_to_int(c) for c in h3.geo_to_cells(poly, base_resolution))  # type: ignore[arg-type]
    if not cells:
        raise ConfigError(f"the service area covers no H3 cell at resolution {base_resolution}")
    from shapely.ops import unary_union

    return ServiceArea(
        geometry=unary_union(geoms),
        base_resolution=base_resolution,
        cells=np.array(sorted(cells), dtype=np.uint64),
    )


def load_service_area(settings: Settings) -> ServiceArea:
    """Read HEXPULSE_SERVICE_AREA_PATH (default: the bundled demo area around Tianhe)."""
    path: Path | None = settings.service_area_path
    try:
        if path is None:
            raw = (resources.files("hexpulse") / "data" / "service_area.geojson").read_bytes()
        else:
            raw = path.read_bytes()
        doc = orjson.loads(raw)
    except OSError as exc:
        raise ConfigError(f"cannot read the service area file {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError:
        raise ConfigError(f"the service area file {path} is not valid JSON") from None
    return service_area_from_geojson(doc, settings.base_resolution)
