"""``/v1/traffic``: moving counts, speeds and congestion per cell in a bbox."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import congestion, density
from api.deps import BBoxDep, StateDep, TrafficKey, check_res
from api.geo import bbox_cover, cell_hex
from api.routes.density import resolve_window
from api.schemas.common import ERRORS
from api.schemas.traffic import TrafficResponse

router = APIRouter(prefix="/v1/traffic", tags=["traffic"])


def _pair(lo: float | None, hi: float | None) -> list[float] | None:
    return None if lo is None or hi is None else [round(lo, 3), round(hi, 3)]


@router.get("", summary="Traffic state of every released cell in a bbox", responses=ERRORS)
async def get_traffic(
    key: TrafficKey,
    state: StateDep,
    bbox: BBoxDep,
    res: Annotated[int, Query(ge=0, le=15)] = 8,
    at: Annotated[str, Query(max_length=64, description="'latest' or an ISO 8601 time")] = "latest",
) -> TrafficResponse:
    check_res(res, state.settings)
    window = await resolve_window(state.reader, at)
    released = await state.reader.cells(window, res)
    free = await state.reader.free_flow(window, res, congestion.FREE_FLOW_DAYS, congestion.FREE_FLOW_QUANTILE)
    cells: list[dict[str, Any]] = []
    for cell in sorted(bbox_cover(bbox, res)):
        row = released.get(cell)
        if row is None:
            continue
        ff, n = free.get(cell, (None, 0))
        ff = ff if n >= congestion.MIN_FREE_FLOW_WINDOWS else None
        index, level = congestion.congestion(row.speed_kmh, ff)
        cells.append(
            {
                "cell": cell_hex(cell),
                "moving": max(0, int(row.moving)),
                "moving_ci95": [round(row.moving_lo, 3), round(row.moving_hi, 3)],
                "mean_speed_kmh": None if row.speed_kmh is None else round(row.speed_kmh, 2),
                "speed_ci95_kmh": _pair(row.speed_lo_kmh, row.speed_hi_kmh),
                "free_flow_kmh": None if ff is None else round(ff, 2),
                "free_flow_windows": n,
                "congestion_index": index,
                "level": level,
            }
        )
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
