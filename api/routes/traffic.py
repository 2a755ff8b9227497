"""``/v1/traffic``: moving counts, speeds and congestion per cell in a bbox; ``/v1/traffic/index``:
the city's or a district's travel-time-weighted congestion index per window."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Query
from shapely.geometry import box

from api import congestion, density
from api.deps import BBoxDep, StateDep, TrafficKey, check_res
from api.geo import BBox, bbox_cover, cell_hex, check_area, parse_bbox
from api.routes.density import resolve_window, series_range
from api.schemas.common import ERRORS
from api.schemas.traffic import IndexResponse, TrafficResponse
from hexpulse.settings import Settings
from hexpulse.traffic_levels import level_of
from releases.models import CellRow, Window
from releases.reader import ReleaseReader
from releases.traffic import CellBins, series_bins

router = APIRouter(prefix="/v1/traffic", tags=["traffic"])


def _pair(lo: float | None, hi: float | None) -> list[float] | None:
    return None if lo is None or hi is None else [round(lo, 3), round(hi, 3)]


def _ci(x: float | None, sigma: float | None, floor: float | None = 0.0) -> list[float] | None:
    if x is None or sigma is None:
        return None
    lo = x - 1.96 * sigma
    return _pair(lo if floor is None else max(lo, floor), x + 1.96 * sigma)


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def _from_bins(cell: int, now: CellBins, quiet: CellBins | None) -> dict[str, Any]:
    pooled = quiet if quiet is not None and quiet.mids_kmh == now.mids_kmh else None
    c = congestion.cell_congestion(now.bins, now.sigma, None if pooled is None else pooled.bins,
                                   0.0 if pooled is None else pooled.sigma, now.mids_kmh)  # fmt: skip
    moving = sum(now.bins)
    moving_sigma = now.sigma * math.sqrt(len(now.bins))
    return {
        "cell": cell_hex(cell),
        "source": "bins",
        "moving": max(0, round(moving)),
        "moving_ci95": _ci(moving, moving_sigma, floor=None),
        "mean_speed_kmh": _round(c.speed_kmh, 2),
        "speed_ci95_kmh": _ci(c.speed_kmh, c.speed_sigma_kmh),
        "free_flow_kmh": _round(c.free_flow_kmh, 2),
        "free_flow_ci95_kmh": _ci(c.free_flow_kmh, c.free_flow_sigma_kmh),
        "free_flow_windows": 0 if pooled is None else pooled.windows,
        "congestion_index": _round(c.index, 3),
        "congestion_index_ci95": _ci(c.index, c.index_sigma),
        "level": c.level,
        "level_range": c.level_range,
    }


def _from_cells(cell: int, row: CellRow, free: dict[int, tuple[float, int]]) -> dict[str, Any]:
    ff, n = free.get(cell, (None, 0))
    ff = ff if n >= congestion.MIN_FREE_FLOW_WINDOWS else None
    index, level = congestion.congestion(row.speed_kmh, ff)
    return {
        "cell": cell_hex(cell),
        "source": "cells",
        "moving": max(0, int(row.moving)),
        "moving_ci95": [round(row.moving_lo, 3), round(row.moving_hi, 3)],
        "mean_speed_kmh": _round(row.speed_kmh, 2),
        "speed_ci95_kmh": _pair(row.speed_lo_kmh, row.speed_hi_kmh),
        "free_flow_kmh": _round(ff, 2),
        "free_flow_windows": n,
        "congestion_index": index,
        "level": level,
    }


async def _quiet(reader: ReleaseReader, window: Window, settings: Settings) -> dict[int, CellBins]:
    return await reader.free_flow_bins(window, settings.traffic_resolution, settings.traffic_free_flow_days,
                                       tuple(settings.traffic_free_flow_hours_utc))  # fmt: skip


@router.get("", summary="Traffic state of every released cell in a bbox", responses=ERRORS)
async def get_traffic(
    key: TrafficKey,
    state: StateDep,
    bbox: BBoxDep,
    res: Annotated[int, Query(ge=0, le=15)] = 8,
    at: Annotated[str, Query(max_length=64, description="'latest' or an ISO 8601 time")] = "latest",
) -> TrafficResponse:
    settings = state.settings
    if res != settings.traffic_resolution:  # the speed bins' resolution need not be a density one
        check_res(res, settings)
    window = await resolve_window(state.reader, at)
    bins = await state.reader.traffic_bins(window, res) if res == settings.traffic_resolution else {}
    cells: list[dict[str, Any]] = []
    if bins:
        quiet = await _quiet(state.reader, window, settings)
        cells = [_from_bins(c, bins[c], quiet.get(c)) for c in sorted(bbox_cover(bbox, res)) if c in bins]
    else:
        released = await state.reader.cells(window, res)
        free = await state.reader.free_flow(
            window, res, congestion.FREE_FLOW_DAYS, congestion.FREE_FLOW_QUANTILE
        )
        cells = [_from_cells(c, released[c], free) for c in sorted(bbox_cover(bbox, res)) if c in released]
    return TrafficResponse.model_validate(
        {
            "window": density.window_json(window),
            "resolution": res,
            "bbox": bbox,
            "levels": congestion.LEVEL_TEXT,
            "privacy": density.privacy_json(state.settings, window),
            "cells": cells,
        }
    )


@router.get("/index", summary="Travel-time-weighted congestion index per released window", responses=ERRORS)
async def get_index(
    key: TrafficKey,
    state: StateDep,
    from_: Annotated[str | None, Query(alias="from", description="ISO 8601; default to − 1 h")] = None,
    to: Annotated[str | None, Query(description="ISO 8601; default: end of the latest window")] = None,
    bbox: Annotated[
        str | None,
        Query(max_length=200, description="a district: minLon,minLat,maxLon,maxLat; omitted: the city"),
    ] = None,
) -> IndexResponse:
    settings = state.settings
    start, end = await series_range(state, from_, to)
    district: BBox | None = None
    if bbox is not None:
        district = parse_bbox(bbox)
        check_area(box(*district), settings.api_max_bbox_km2, "bbox")
    res = settings.traffic_resolution
    windows = await series_bins(state.pool, start, end, res)
    series: list[dict[str, Any]] = []
    if windows:
        # One free-flow reference for the whole series (the quiet windows before its first
        # window), so points are comparable with each other.
        first = await state.reader.at(min(windows))
        quiet = await _quiet(state.reader, first, settings) if first is not None else {}
        chosen = None if district is None else bbox_cover(district, res)
        for w, cells in windows.items():
            series.append(_index_point(w, cells, quiet, chosen))
    return IndexResponse.model_validate(
        {"resolution": res, "bbox": district, "from": start, "to": end,
         "free_flow_hours_utc": list(settings.traffic_free_flow_hours_utc),
         "free_flow_days": settings.traffic_free_flow_days, "series": series}
    )  # fmt: skip


def _index_point(
    w: Any, cells: dict[int, CellBins], quiet: dict[int, CellBins], chosen: frozenset[int] | None
) -> dict[str, Any]:
    keys = [c for c in sorted(cells) if c in quiet and (chosen is None or c in chosen)
            and quiet[c].mids_kmh == cells[c].mids_kmh and sum(quiet[c].bins) >= 1.0]  # fmt: skip
    point: dict[str, Any] = {"window_start": w, "index": None, "sigma": None, "ci95": None, "level": None,
                             "cells": len(keys)}  # fmt: skip
    if not keys:
        return point
    index, sigma = congestion.travel_time_index(
        [cells[c].bins for c in keys], [quiet[c].bins for c in keys], cells[keys[0]].mids_kmh,
        [cells[c].sigma for c in keys], [quiet[c].sigma for c in keys],
    )  # fmt: skip
    if math.isnan(index):
        return point
    return {**point, "index": round(index, 4), "sigma": round(sigma, 4), "ci95": _ci(index, sigma),
            "level": level_of(index)}  # fmt: skip
