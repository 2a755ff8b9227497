"""Polygon covers: compacted to the coarsest released cells that fit, the same base cells as the
fine cover, never coarser than the coarsest released resolution."""

from __future__ import annotations

import h3
import pytest
from shapely.geometry import Polygon

from api.areas import compact_cover, point_json
from api.geo import cover

LAT, LON = 23.13, 113.32


def _base(selection: dict[int, frozenset[int]], res: int) -> set[int]:
    out: set[int] = set()
    for r, cells in selection.items():
        for c in cells:
            kids = [h3.int_to_str(c)] if r == res else h3.cell_to_children(h3.int_to_str(c), res)
            out.update(h3.str_to_int(k) for k in kids)
    return out


def test_a_whole_res8_cell_is_one_res8_cell() -> None:
    cell = h3.latlng_to_cell(LAT, LON, 8)
    ring = [(lon, lat) for lat, lon in h3.cell_to_boundary(cell)]
    assert compact_cover(Polygon(ring), 9, (9, 8, 7)) == {8: frozenset({h3.str_to_int(cell)})}


def test_big_polygon_mixes_resolutions_and_keeps_the_base_cells() -> None:
    box = Polygon(
        [(LON - 0.1, LAT - 0.08), (LON + 0.1, LAT - 0.08), (LON + 0.1, LAT + 0.08), (LON - 0.1, LAT + 0.08)]
    )
    for released in ((9, 8, 7), (9, 7), (9, 8)):
        sel = compact_cover(box, 9, released)
        assert set(sel) <= set(released) and len(sel) > 1
        assert _base(sel, 9) == set(cover(box, 9))  # the same cells as the fine cover
    sel8 = compact_cover(box, 8, (9, 8, 7))
    assert set(sel8) <= {8, 7} and _base(sel8, 8) == set(cover(box, 8))


def test_point_json_intervals() -> None:
    from datetime import UTC, datetime

    t = datetime(2030, 1, 1, tzinfo=UTC)
    p = point_json(t, t, -10.0, 20.0, 3, "plan covariance")
    lo, hi = p["ci95"]
    assert lo == pytest.approx(-49.2, abs=0.01) and hi == pytest.approx(29.2, abs=0.01)
    assert p["ci95_nonneg"] == [0.0, hi]  # the unbiased interval cut at 0
