"""Sums of released estimates over a selection of cells: area covers, series and city totals.

Every sum adds the unbiased estimates (``count_est``), never the clipped display counts (clipping
every empty cell up to ≥ 0 made a city total 18× the truth), and its σ comes from the plan's
covariance (:mod:`api.sums`). A polygon is covered at the requested resolution (cells whose centre
lies inside), then compacted with ``h3.compact_cells`` to the coarsest released cells that fit
(never coarser than the coarsest released resolution), so one res-8 cell is read instead of its
seven children; the estimates add up across resolutions, so the sum is the same and the read is
smaller. Areas are km², counts persons.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import h3
from shapely.geometry.base import BaseGeometry

from api.density import iso
from api.geo import area_km2, cell_area_km2, cover
from api.sums import Selection, SumVariance
from hexpulse.store.pool import ClickHousePool
from hexpulse.zones import Zone
from privacy.release.mechanisms import Z95
from releases.reader import ReleaseReader
from releases.zones import zone_series


def compact_cover(
    geom: BaseGeometry, res: int, released: tuple[int, ...], fine_cells: frozenset[int] | None = None
) -> dict[int, frozenset[int]]:
    """The cells at ``res`` whose centres lie in ``geom`` (``fine_cells`` when the caller has
    them already), merged into the coarsest released ancestors that they fill completely;
    ``{resolution: cells}``."""
    fine = [h3.int_to_str(c) for c in (cover(geom, res) if fine_cells is None else fine_cells)]
    allowed = sorted(r for r in released if r <= res)
    out: dict[int, set[int]] = {}
    for cell in h3.compact_cells(fine):
        r = h3.get_resolution(cell)
        target = r if r in allowed else min((a for a in allowed if a > r), default=res)
        cells = [cell] if target == r else h3.cell_to_children(cell, target)
        out.setdefault(target, set()).update(h3.str_to_int(c) for c in cells)
    return {r: frozenset(c) for r, c in sorted(out.items(), reverse=True)}


def cover_json(geom: BaseGeometry, selection: Selection) -> dict[str, Any]:
    """How the polygon was approximated: cells per resolution and the two areas (km²)."""
    cover_km2 = sum(cell_area_km2(c) for cells in selection.values() for c in cells)
    polygon_km2 = area_km2(geom)
    return {
        "cells": {str(r): len(c) for r, c in selection.items()},
        "cover_area_km2": round(cover_km2, 4),
        "polygon_area_km2": round(polygon_km2, 4),
        "cover_to_polygon": round(cover_km2 / polygon_km2, 4) if polygon_km2 > 0 else None,
    }


def point_json(window_start: datetime, window_end: datetime, estimate: float, sigma: float, released: int,
               method: str, source: str = "cells") -> dict[str, Any]:  # fmt: skip
    """One window's sum: the unbiased estimate, its σ and 95% interval (also cut at 0)."""
    lo, hi = estimate - Z95 * sigma, estimate + Z95 * sigma
    return {
        "window_start": iso(window_start),
        "window_end": iso(window_end),
        "estimate": round(estimate, 3),
        "sigma": round(sigma, 3),
        "ci95": [round(lo, 3), round(hi, 3)],
        "ci95_nonneg": [round(max(lo, 0.0), 3), round(max(hi, 0.0), 3)],
        "cells_released": released,
        "sigma_method": method,
        "source": source,
    }


async def sum_series(
    reader: ReleaseReader, sums: SumVariance, selection: Selection, start: datetime, end: datetime
) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """Per released window in [start, end): the selection's sum; and the most cells released per
    resolution in any of those windows."""
    rows = await reader.estimate_sums(selection, start, end)
    series = []
    released: dict[int, int] = {}
    for row in rows:
        sigma, method = await sums.sigma(row, selection)
        n = sum(row.released.values())
        series.append(point_json(row.window.start, row.window.end, row.estimate, sigma, n, method))
        for r, n in row.released.items():
            released[r] = max(released.get(r, 0), n)
    return series, released


async def cell_sum_answer(
    reader: ReleaseReader, sums: SumVariance, geom: BaseGeometry, res: int, released_res: tuple[int, ...],
    start: datetime, end: datetime, fine_cells: frozenset[int] | None = None,
) -> dict[str, Any] | None:  # fmt: skip
    """The area answer from released cells (None when the polygon holds no cell centre at ``res``);
    ``fine_cells``: the polygon's cover at ``res`` if already computed."""
    selection = compact_cover(geom, res, released_res, fine_cells)
    if not selection:
        return None
    series, released = await sum_series(reader, sums, selection, start, end)
    return {
        "source": "cells",
        "resolution": res,
        "cells": sum(len(c) for c in selection.values()),
        "cells_released": sum(released.values()),
        "cover": cover_json(geom, selection),
        "from": start,
        "to": end,
        "series": series,
    }


async def with_zone(pool: ClickHousePool, zone: Zone, answer: dict[str, Any]) -> dict[str, Any]:
    """``answer`` (a cell-sum answer over the zone's polygon) with every window in which this version
    of the zone was measured directly answered from that measurement instead: its own partition,
    so its σ does not grow with its size. Windows before the zone took effect keep the cell sum."""
    measured = {
        iso(p.window_start): p
        for p in await zone_series(pool, zone.zone_id, answer["from"], answer["to"])
        if p.version == zone.version
    }
    series = []
    for point in answer["series"]:
        zp = measured.get(point["window_start"])
        if zp is not None:
            point = point_json(zp.window_start, zp.window_end, zp.count_est, zp.count_sigma, zp.cells,
                               "zone measurement", source="zone")  # fmt: skip
        series.append(point)
    sources = {p["source"] for p in series}
    return answer | {
        "series": series,
        "source": "zone" if sources == {"zone"} else "zone+cells" if "zone" in sources else "cells",
        "zone": {"id": zone.zone_id, "version": zone.version, "set": zone.zone_set, "name": zone.name},
    }
