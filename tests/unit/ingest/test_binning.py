"""The table look-up of ingest.binning equals h3.latlng_to_cell exactly, including at cell edges."""

from __future__ import annotations

import h3
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hexpulse.service_area import ServiceArea, load_service_area
from hexpulse.settings import load_settings
from ingest.binning import CellBinner, cells_by_h3

AREA = load_service_area(load_settings())
BINNER = CellBinner(AREA, 9)
LON_MIN, LAT_MIN, LON_MAX, LAT_MAX = AREA.geometry.bounds


def check(lat: np.ndarray, lon: np.ndarray, binner: CellBinner = BINNER) -> None:
    got, inside = binner.bin(lat.astype(np.float64), lon.astype(np.float64))
    want = cells_by_h3(lat.astype(np.float64), lon.astype(np.float64), binner.resolution)
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{bad.size} differ, first at ({lat[bad[0]]!r}, {lon[bad[0]]!r})"
    assert np.array_equal(inside, binner._area.contains(want))


def test_uniform_points_in_and_around_the_area() -> None:
    rng = np.random.default_rng(20261127)
    n = 200_000
    check(rng.uniform(LAT_MIN - 0.01, LAT_MAX + 0.01, n), rng.uniform(LON_MIN - 0.01, LON_MAX + 0.01, n))


def test_points_hugging_cell_edges() -> None:
    """Vertices and edge points of the area's cells, nudged by 1e-12 .. 1e-5 degrees."""
    rng = np.random.default_rng(7)
    cells = rng.choice(AREA.cells, size=300, replace=False)
    pts = []
    for cell in cells.tolist():
        boundary = np.array(h3.cell_to_boundary(h3.int_to_str(cell)))
        nxt = np.roll(boundary, -1, axis=0)
        for t in (0.0, 0.25, 0.5, 0.77):
            pts.append(boundary + t * (nxt - boundary))
    base = np.concatenate(pts)
    nudges = [0.0, 1e-12, -1e-12, 1e-9, -1e-9, 3e-7, -3e-7, 1e-5, -1e-5]
    lat = np.concatenate([base[:, 0] + a for a in nudges for _ in (0, 1)])
    lon = np.concatenate([base[:, 1] + b for b in nudges for b in (b, -b)])
    check(lat, lon)


def test_points_on_and_near_grid_lines() -> None:
    rng = np.random.default_rng(11)
    step = BINNER._step
    i = rng.integers(0, BINNER._n_lat, 50_000)
    j = rng.integers(0, BINNER._n_lon, 50_000)
    off = rng.choice([0.0, 1e-13, -1e-13, 5e-8, -5e-8, 2e-7, -2e-7], size=(2, 50_000))
    check(BINNER._lat0 + i * step + off[0], BINNER._lon0 + j * step + off[1])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(LAT_MIN - 0.001, LAT_MAX + 0.001), st.floats(LON_MIN - 0.001, LON_MAX + 0.001)),
        min_size=1,
        max_size=50,
    )
)
def test_any_points(points: list[tuple[float, float]]) -> None:
    arr = np.array(points, dtype=np.float64)
    check(arr[:, 0], arr[:, 1])


@pytest.mark.parametrize("res", [7, 10])
def test_other_resolutions(res: int) -> None:
    from hexpulse.service_area import service_area_from_geojson

    d = 0.02
    square = [
        [113.30, 23.12],
        [113.30 + d, 23.12],
        [113.30 + d, 23.12 + d],
        [113.30, 23.12 + d],
        [113.30, 23.12],
    ]
    area: ServiceArea = service_area_from_geojson({"type": "Polygon", "coordinates": [square]}, res)
    rng = np.random.default_rng(res)
    check(rng.uniform(23.11, 23.15, 50_000), rng.uniform(113.29, 113.33, 50_000), CellBinner(area, res))


def test_empty_input() -> None:
    assert BINNER.cells(np.empty(0), np.empty(0)).size == 0


def test_a_service_area_at_another_resolution_is_refused() -> None:
    from hexpulse.errors import ConfigError

    with pytest.raises(ConfigError, match="resolution 9, not the base resolution 8"):
        CellBinner(AREA, 8)
