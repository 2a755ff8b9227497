"""``/v1/traffic``: moving counts, speeds and congestion per cell and per corridor in a bbox;
``/v1/traffic/index``: the city's or a district's travel-time-weighted congestion index per window,
weighing the window's corridors when it measured them, its res-8 cells otherwise."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Query
from shapely.geometry import box

from api import congestion, corridors, density
from api.deps import BBoxDep, StateDep, TrafficKey, check_res
from api.geo import BBox, bbox_cover, cell_hex, check_area, parse_bbox
from api.routes.density import resolve_window, series_range
from api.schemas.common import ERRORS
from api.schemas.traffic import IndexResponse, TrafficResponse
from hexpulse.settings import Settings
from hexpulse.traffic_levels import level_of
from releases.corridors import ZoneKey, outline_keys, series_zone_bins, zone_outlines
from releases.models import CellRow, Window
from releases.reader import ReleaseReader
from releases.traffic import CellBins, series_bins

router = APIRouter(prefix="/v1/traffic", tags=["traffic"])
SET_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
MAX_SPEED_WINDOWS = 15
"""The longest trailing pool ``windows`` may ask for (a quarter of an hour at 1-minute windows)."""


def _from_bins(cell: int, now: CellBins, quiet: CellBins | None, recent: CellBins | None) -> dict[str, Any]:
    return {"cell": cell_hex(cell), "source": "bins", **congestion.bins_fields(now, quiet, recent)}


def _from_cells(cell: int, row: CellRow, free: dict[int, tuple[float, int]]) -> dict[str, Any]:
    ff, n = free.get(cell, (None, 0))
    ff = ff if n >= congestion.MIN_FREE_FLOW_WINDOWS else None
    index, level = congestion.congestion(row.speed_kmh, ff)
    return {
        "cell": cell_hex(cell),
        "source": "cells",
        "moving": max(0, int(row.moving)),
        "moving_ci95": [round(row.moving_lo, 3), round(row.moving_hi, 3)],
        "mean_speed_kmh": congestion.rounded(row.speed_kmh, 2),
        "speed_ci95_kmh": congestion.pair(row.speed_lo_kmh, row.speed_hi_kmh),
        "free_flow_kmh": congestion.rounded(ff, 2),
        "free_flow_windows": n,
        "congestion_index": index,
        "level": level,
    }


async def _quiet(reader: ReleaseReader, window: Window, settings: Settings) -> dict[int, CellBins]:
    return await reader.free_flow_bins(window, settings.traffic_resolution, settings.traffic_free_flow_days,
                                       tuple(settings.traffic_free_flow_hours_utc))  # fmt: skip


async def _zone_quiet(reader: ReleaseReader, window: Window, settings: Settings) -> dict[ZoneKey, CellBins]:
    return await reader.zone_free_flow_bins(window, settings.traffic_free_flow_days,
                                            tuple(settings.traffic_free_flow_hours_utc))  # fmt: skip


@router.get("", summary="Traffic state of every released cell in a bbox", responses=ERRORS)
async def get_traffic(
    key: TrafficKey,
    state: StateDep,
    bbox: BBoxDep,
    res: Annotated[int, Query(ge=0, le=15)] = 8,
    at: Annotated[str, Query(max_length=64, description="'latest' or an ISO 8601 time")] = "latest",
    zone_set: Annotated[
        str | None, Query(alias="set", pattern=SET_PATTERN, description="corridors of this zone set only")
    ] = None,
    windows: Annotated[
        int, Query(ge=1, le=MAX_SPEED_WINDOWS, description="speed, index and level from the speed bins of"
                   " the last N released windows, this one included (1: this window alone)")
    ] = 1,
) -> TrafficResponse:
    settings = state.settings
    if res != settings.traffic_resolution:  # the speed bins' resolution need not be a density one
        check_res(res, settings)
    window = await resolve_window(state.reader, at)
    bins = await state.reader.traffic_bins(window, res) if res == settings.traffic_resolution else {}
    cells: list[dict[str, Any]] = []
    if bins:
        quiet = await _quiet(state.reader, window, settings)
        recent = await state.reader.recent_traffic_bins(window, res, windows, settings.window_s) \
            if windows > 1 else {}  # fmt: skip
        cells = [_from_bins(c, bins[c], quiet.get(c), recent.get(c))
                 for c in sorted(bbox_cover(bbox, res)) if c in bins]  # fmt: skip
    else:
        released = await state.reader.cells(window, res)
        free = await state.reader.free_flow(
            window, res, congestion.FREE_FLOW_DAYS, congestion.FREE_FLOW_QUANTILE
        )
        cells = [_from_cells(c, released[c], free) for c in sorted(bbox_cover(bbox, res)) if c in released]
    zones = await state.reader.zone_bins(window)
    zone_quiet = await _zone_quiet(state.reader, window, settings) if zones else {}
    zone_recent = await state.reader.recent_zone_traffic_bins(window, windows, settings.window_s) \
        if zones and windows > 1 else None  # fmt: skip
    return TrafficResponse.model_validate(
        {
            "window": density.window_json(window),
            "resolution": res,
            "bbox": bbox,
            "levels": congestion.LEVEL_TEXT,
            "privacy": density.privacy_json(state.settings, window),
            "cells": cells,
            "corridors": corridors.corridors_in(zones, zone_quiet, bbox, zone_set, zone_recent),
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
    zone_set: Annotated[
        str, Query(alias="set", pattern=SET_PATTERN, description="the zone set weighed where measured")
    ] = corridors.INDEX_SET,
) -> IndexResponse:
    settings = state.settings
    start, end = await series_range(state, from_, to)
    district: BBox | None = None
    if bbox is not None:
        district = parse_bbox(bbox)
        check_area(box(*district), settings.api_max_bbox_km2, "bbox")
    res = settings.traffic_resolution
    windows = await series_bins(state.pool, start, end, res)
    zone_windows = {w: {k: b for k, b in zones.items() if k[0] == zone_set}
                    for w, zones in (await series_zone_bins(state.pool, start, end)).items()}  # fmt: skip
    series: list[dict[str, Any]] = []
    starts = sorted(set(windows) | {w for w, z in zone_windows.items() if z})
    if starts:
        # One free-flow reference for the whole series (the quiet windows before its first
        # window), so points are comparable with each other.
        first = await state.reader.at(starts[0])
        quiet = await _quiet(state.reader, first, settings) if first is not None and windows else {}
        zone_quiet = await _zone_quiet(state.reader, first, settings) if first is not None else {}
        chosen = None if district is None else bbox_cover(district, res)
        chosen_zones = None if district is None else await _zones_in(state, zone_windows, district)
        for w in starts:
            point = _index_point(w, zone_windows.get(w, {}), zone_quiet, chosen_zones, "corridors")
            if point["index"] is None:
                point = _index_point(w, windows.get(w, {}), quiet, chosen, "cells")
            series.append(point)
    return IndexResponse.model_validate(
        {"resolution": res, "bbox": district, "from": start, "to": end, "zone_set": zone_set,
         "free_flow_hours_utc": list(settings.traffic_free_flow_hours_utc),
         "free_flow_days": settings.traffic_free_flow_days, "series": series}
    )  # fmt: skip


async def _zones_in(
    state: Any, zone_windows: dict[Any, dict[ZoneKey, CellBins]], district: BBox
) -> frozenset[Any]:
    keys = {k for zones in zone_windows.values() for k in zones}
    outlines = await zone_outlines(state.pool, outline_keys(keys))
    return frozenset(k for k in keys if corridors.in_bbox(outlines.get((k[1], k[2])), district))


def _index_point(
    w: Any, bins: dict[Any, CellBins], quiet: dict[Any, CellBins], chosen: frozenset[Any] | None, source: str
) -> dict[str, Any]:
    keys = corridors.index_keys(bins, quiet, chosen)
    point: dict[str, Any] = {"window_start": w, "index": None, "sigma": None, "ci95": None, "level": None,
                             "source": None, "cells": 0, "corridors": 0}  # fmt: skip
    if not keys:
        return point
    index, sigma = congestion.travel_time_index(
        [bins[k].bins for k in keys], [quiet[k].bins for k in keys], bins[keys[0]].mids_kmh,
        [bins[k].sigma for k in keys], [quiet[k].sigma for k in keys],
    )  # fmt: skip
    if math.isnan(index):
        return point
    return {**point, "index": round(index, 4), "sigma": round(sigma, 4),
            "ci95": congestion.ci95(index, sigma), "level": level_of(index), "source": source,
            source: len(keys)}  # fmt: skip
