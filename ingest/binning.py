"""H3 binning at the base resolution, mostly by table look-up instead of one h3 call per ping.

``h3.latlng_to_cell`` costs ~0.5 µs per point and was the largest single cost of ingest. Inside the
service area's bounding box we lay a lat/lon grid whose squares are ~1/8 of a cell edge; a square
whose four corners fall in the same cell lies inside that cell, because a cell is convex in H3's
gnomonic plane and the lat/lon → plane map bends a 25 m square by ~10 µm, far less than the 1 cm
(1e-7°) margin within which points near a square's border are not looked up. Every other point
(near a border, in a square that an edge crosses, near a pentagon or an icosahedron edge, outside
the box) is binned by h3 itself, so the result is identical to ``h3.latlng_to_cell``.
The grid is filled lazily, one tile at a time, where pings actually fall.
"""

from __future__ import annotations

import math
from itertools import repeat

import h3.api.basic_int as h3i
import numpy as np
import numpy.typing as npt

from hexpulse.errors import ConfigError
from hexpulse.service_area import ServiceArea
from hexpulse.units import METRES_PER_DEGREE

try:  # the Cython function behind h3.api.basic_int, ~15% cheaper per point than the wrapper
    from h3._cy import latlng_to_cell as _latlng_to_cell
except ImportError:  # pragma: no cover - h3 moved its internals
    _latlng_to_cell = h3i.latlng_to_cell

MARGIN_DEG = 1e-7
"""Points closer than this (~1 cm) to a grid line are binned by h3, never looked up."""
TILE = 32
"""Grid squares per tile side; a tile costs (TILE + 1)² h3 calls when first used."""
MAX_SQUARES = 16_000_000
"""Above this (a service area much larger than a city), the table is not used."""

Floats = npt.NDArray[np.float64]
Cells = npt.NDArray[np.uint64]


def cells_by_h3(lat: Floats, lon: Floats, res: int) -> Cells:
    """One h3 call per point (the reference the look-up must equal)."""
    return np.fromiter(
        map(_latlng_to_cell, lat.tolist(), lon.tolist(), repeat(res)), dtype=np.uint64, count=lat.size
    )


class CellBinner:
    """``bin(lat, lon)`` = (``h3.latlng_to_cell`` at ``resolution``, in the service area?), vectorized.

    The grid holds, per square, an index into ``self._table`` (0: not a single safe cell, ask h3).
    Indexes ``1 .. len(area.cells)`` are the area's own cells, in order, so membership of a looked-up
    point is one comparison; cells outside the area that the grid meets get later indexes.
    """

    def __init__(self, area: ServiceArea, resolution: int) -> None:
        if area.base_resolution != resolution:
            raise ConfigError(
                f"the service area is binned at resolution {area.base_resolution}, "
                f"not the base resolution {resolution}"
            )
        self.resolution = resolution
        self._area = area
        self._n_area = int(area.cells.size)
        self._table = np.concatenate([np.zeros(1, dtype=np.uint64), area.cells])
        self._extra: dict[int, int] = {}  # cell outside the area -> its index in the table
        step = h3i.average_hexagon_edge_length(resolution, "m") / 8.0 / METRES_PER_DEGREE
        lon_min, lat_min, lon_max, lat_max = area.geometry.bounds
        self._step = step
        self._lat0 = math.floor(lat_min / step) * step - step
        self._lon0 = math.floor(lon_min / step) * step - step
        self._n_lat = math.ceil((lat_max - self._lat0) / step) + 2
        self._n_lon = math.ceil((lon_max - self._lon0) / step) + 2
        self._margin = MARGIN_DEG / step
        self._enabled = self._n_lat * self._n_lon <= MAX_SQUARES
        shape = (self._n_lat, self._n_lon) if self._enabled else (0, 0)
        self._lut = np.zeros(shape, dtype=np.int32)
        self._tiles_lon = -(-self._n_lon // TILE)
        self._built = np.zeros(-(-self._n_lat // TILE) * self._tiles_lon if self._enabled else 0, dtype=bool)
        self._unsafe: dict[int, bool] = {}
        self._all_built = not self._enabled

    def warm(self) -> int:
        """Fill every tile that holds a service-area cell's centre now; returns tiles filled.

        Lazy filling costs ~0.5 ms per new tile on the hot path (~0.5 s for a city), so a long-running
        consumer pays it once at start instead of during its first minutes of traffic.
        """
        if not self._enabled or self._n_area == 0:
            return 0
        centres = np.array([h3i.cell_to_latlng(int(c)) for c in self._area.cells.tolist()])
        i = np.floor((centres[:, 0] - self._lat0) / self._step).astype(np.intp)
        j = np.floor((centres[:, 1] - self._lon0) / self._step).astype(np.intp)
        inside = (i >= 0) & (i < self._n_lat) & (j >= 0) & (j < self._n_lon)
        tiles = np.unique((i[inside] // TILE) * self._tiles_lon + j[inside] // TILE)
        todo = tiles[~self._built[tiles]].tolist()
        for tile in todo:
            self._build(tile)
        return len(todo)

    def cells(self, lat: Floats, lon: Floats) -> Cells:
        return self.bin(lat, lon)[0]

    def bin(self, lat: Floats, lon: Floats) -> tuple[Cells, npt.NDArray[np.bool_]]:
        """(H3 cell of each point, whether that cell is in the service area)."""
        idx = np.zeros(lat.size, dtype=np.int32)
        if self._enabled and lat.size:
            fi = (lat - self._lat0) / self._step
            fj = (lon - self._lon0) / self._step
            i = np.floor(fi)
            j = np.floor(fj)
            # |frac − ½| < ½ − margin: inside the square and not within the margin of its border.
            half = 0.5 - self._margin
            fi -= i
            fi -= 0.5
            fj -= j
            fj -= 0.5
            use = (np.abs(fi) < half) & (np.abs(fj) < half)
            use &= (i >= 0) & (i < self._n_lat) & (j >= 0) & (j < self._n_lon)
            pos = np.flatnonzero(use)
            iu = i[pos].astype(np.intp)
            ju = j[pos].astype(np.intp)
            if not self._all_built:
                tiles = (iu // TILE) * self._tiles_lon + ju // TILE
                missing = tiles[~self._built[tiles]]
                if missing.size:
                    for tile in np.unique(missing).tolist():
                        self._build(tile)
            idx[pos] = self._lut[iu, ju]
        out = self._table[idx]
        inside = (idx > 0) & (idx <= self._n_area)
        ask = np.flatnonzero(idx == 0)
        if ask.size:
            asked = cells_by_h3(lat[ask], lon[ask], self.resolution)
            out[ask] = asked
            inside[ask] = self._area.contains(asked)
        return out, inside

    def _index_of(self, cell: int) -> int:
        pos = int(np.searchsorted(self._area.cells, cell))
        if pos < self._n_area and int(self._area.cells[pos]) == cell:
            return pos + 1
        index = self._extra.get(cell)
        if index is None:
            index = self._extra[cell] = self._table.size
            self._table = np.append(self._table, np.uint64(cell))
        return index

    def _build(self, tile: int) -> None:
        ti, tj = divmod(tile, self._tiles_lon)
        i0, j0 = ti * TILE, tj * TILE
        i1, j1 = min(i0 + TILE, self._n_lat), min(j0 + TILE, self._n_lon)
        lats = self._lat0 + np.arange(i0, i1 + 1, dtype=np.float64) * self._step
        lons = self._lon0 + np.arange(j0, j1 + 1, dtype=np.float64) * self._step
        grid_lat, grid_lon = np.meshgrid(lats, lons, indexing="ij")
        corner = cells_by_h3(grid_lat.ravel(), grid_lon.ravel(), self.resolution).reshape(grid_lat.shape)
        c = corner[:-1, :-1]
        same = (c == corner[1:, :-1]) & (c == corner[:-1, 1:]) & (c == corner[1:, 1:])
        for cell in np.unique(c[same]).tolist():
            if self._is_unsafe(cell):
                same &= c != cell
        uniq, inverse = np.unique(c[same], return_inverse=True)
        indexes = np.array([self._index_of(cell) for cell in uniq.tolist()], dtype=np.int32)
        block = np.zeros(c.shape, dtype=np.int32)
        block[same] = indexes[inverse]
        self._lut[i0:i1, j0:j1] = block
        self._built[tile] = True
        self._all_built = bool(self._built.all())

    def _is_unsafe(self, cell: int) -> bool:
        """Pentagons and cells on an icosahedron edge are not convex in one plane: always ask h3."""
        unsafe = self._unsafe.get(cell)
        if unsafe is None:
            unsafe = h3i.is_pentagon(cell) or len(h3i.get_icosahedron_faces(cell)) > 1
            self._unsafe[cell] = unsafe
        return unsafe
