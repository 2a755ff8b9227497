"""``/v1/density``: one window's cells in a bbox, area sums, one cell's series, the live stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import anyio.to_thread
import h3
from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from api import density
from api.density import Payload
from api.deps import BBoxDep, DensityKey, ReaderDep, SettingsDep, StateDep, check_range, check_res, parse_time
from api.exceptions import BadRequestError, NotFoundError
from api.geo import BBox, bbox_cover, check_area, cover, parse_cell, parse_polygon
from api.metrics import CACHE, SSE_SUBSCRIBERS
from api.schemas.common import ERRORS
from api.schemas.density import AreaRequest, DensityCollection, DensityRows, SeriesResponse
from api.state import ApiState
from privacy.release.mechanisms import Z95
from releases.models import Window
from releases.smoothing import SmoothingParams

router = APIRouter(prefix="/v1/density", tags=["density"])

Fmt = Literal["geojson", "rows"]
_IMMUTABLE = "private, max-age=31536000, immutable"
SMOOTH_HELP = (
    "also return count_smoothed (a per-cell filter over the last released windows, labeled "
    "smoothed: true; count stays the raw estimate)"
)


async def resolve_window(reader: ReaderDep, at: str) -> Window:
    if at == "latest":
        window = await reader.latest()
        if window is None:
            raise NotFoundError("no window has been released yet")
        return window
    when = parse_time(at, "at")
    window = await reader.at(when)
    if window is None:
        raise NotFoundError(f"no released window contains {when.strftime('%Y-%m-%dT%H:%M:%SZ')}")
    return window


async def payload(
    state: ApiState, window: Window, res: int, bbox: BBox, fmt: str, smooth: bool = False
) -> tuple[Payload, bool]:
    """The serialized cells of one window in ``bbox`` and whether it came from the cache.

    A smoothed payload also depends on the released windows before ``window``; those are fixed
    once ``window`` is public (release order), so it is keyed by ``window`` as well."""
    cells = bbox_cover(bbox, res)
    key = (window.start, res, fmt, cells, smooth)
    hit = state.payloads.get(key)
    if hit is not None:
        CACHE.labels("hit").inc()
        return hit, True
    CACHE.labels("miss").inc()
    released = await state.reader.cells(window, res)
    smoothing = None
    if smooth:
        params = SmoothingParams.from_settings(state.settings)
        values, used = await state.reader.smoothed(window, res, params)
        smoothing = density.Smoothing(values, used, params.describe())
    built = await anyio.to_thread.run_sync(
        density.build, state.settings, window, res, bbox, cells, released, fmt, smoothing
    )
    return state.payloads.put(key, built), False


@router.get(
    "",
    summary="Released density of every H3 cell in a bbox for one window",
    responses={200: {"model": DensityCollection | DensityRows}, **ERRORS},
)
async def get_density(
    request: Request,
    key: DensityKey,
    state: StateDep,
    bbox: BBoxDep,
    res: Annotated[int, Query(ge=0, le=15, description="H3 resolution (one of the released ones)")] = 9,
    at: Annotated[
        str, Query(description="'latest' or an ISO 8601 time inside the window", max_length=64)
    ] = "latest",
    format: Annotated[Fmt, Query(description="geojson (FeatureCollection) or rows (compact)")] = "geojson",  # noqa: A002
    smooth: Annotated[bool, Query(description=SMOOTH_HELP)] = False,
) -> Response:
    check_res(res, state.settings)
    window = await resolve_window(state.reader, at)
    found, hit = await payload(state, window, res, bbox, format, smooth)
    headers = {
        "ETag": found.etag,
        "Cache-Control": "private, max-age=5" if at == "latest" else _IMMUTABLE,
        "X-Cache": "hit" if hit else "miss",
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("if-none-match") == found.etag:
        return Response(status_code=304, headers=headers)
    media = "application/geo+json" if format == "geojson" else "application/json"
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(found.gzip, media_type=media, headers={**headers, "Content-Encoding": "gzip"})
    return Response(found.body, media_type=media, headers=headers)


def _series_json(rows: list[tuple[Window, int, float, int]]) -> list[dict[str, Any]]:
    out = []
    for window, total, var, n in rows:
        sigma = var**0.5
        out.append(
            {
                "window_start": density.iso(window.start),
                "window_end": density.iso(window.end),
                "count": total,
                "sigma": round(sigma, 3),
                "ci95": [round(max(0.0, total - Z95 * sigma), 3), round(total + Z95 * sigma, 3)],
                "cells_released": n,
            }
        )
    return out


@router.post("/area", summary="Summed count over a polygon, per released window", responses=ERRORS)
async def post_area(
    key: DensityKey,
    settings: SettingsDep,
    reader: ReaderDep,
    request: Annotated[AreaRequest, Body()],
) -> SeriesResponse:
    res = check_res(request.res, settings)
    geom = parse_polygon(request.geometry, settings.api_max_polygon_vertices)
    check_area(geom, settings.api_max_bbox_km2, "polygon")
    start, end = parse_time(request.from_.isoformat(), "from"), parse_time(request.to.isoformat(), "to")
    check_range(start, end, settings)
    cells = cover(geom, res)
    if not cells:
        raise BadRequestError(f"the polygon contains no H3 cell centre at res {res}; use a finer res")
    rows = await reader.sums(cells, res, start, end)
    return SeriesResponse.model_validate(
        {
            "resolution": res,
            "cells": len(cells),
            "cells_released": max((r[3] for r in rows), default=0),
            "from": start,
            "to": end,
            "series": _series_json(rows),
        }
    )


@router.get("/series", summary="Time series of one cell", responses=ERRORS)
async def get_series(
    key: DensityKey,
    settings: SettingsDep,
    reader: ReaderDep,
    cell: Annotated[str, Query(description="H3 cell id (hex) at a released resolution", max_length=32)],
    from_: Annotated[str | None, Query(alias="from", description="ISO 8601; default to − 1 h")] = None,
    to: Annotated[str | None, Query(description="ISO 8601; default: end of the latest window")] = None,
) -> SeriesResponse:
    cell_id = parse_cell(cell, settings.release_resolutions)
    if to is None:
        latest = await reader.latest()
        if latest is None:
            raise NotFoundError("no window has been released yet")
        end = latest.end
    else:
        end = parse_time(to, "to")
    start = parse_time(from_, "from") if from_ is not None else end - timedelta(hours=1)
    check_range(start, end, settings)
    res = h3.get_resolution(cell)
    rows = await reader.sums(frozenset({cell_id}), res, start, end)
    return SeriesResponse.model_validate(
        {
            "resolution": res,
            "cells": 1,
            "cells_released": max((r[3] for r in rows), default=0),
            "from": start,
            "to": end,
            "series": _series_json(rows),
        }  # fmt: skip
    )


async def _events(
    request: Request, state: ApiState, bbox: BBox, res: int, fmt: str, smooth: bool
) -> AsyncIterator[dict[str, Any]]:
    queue = state.feed.subscribe()
    SSE_SUBSCRIBERS.inc()
    try:
        latest = await state.reader.latest()
        last: datetime | None = None
        if latest is not None:
            found, _ = await payload(state, latest, res, bbox, fmt, smooth)
            last = latest.start
            yield {"event": "window", "id": density.iso(latest.start), "data": found.text}
        while True:
            window = await queue.get()
            if window is None:
                return  # dropped for falling behind; the client reconnects
            if last is not None and window.start <= last:
                continue
            found, _ = await payload(state, window, res, bbox, fmt, smooth)
            last = window.start
            yield {"event": "window", "id": density.iso(window.start), "data": found.text}
    except asyncio.CancelledError:
        raise
    finally:
        state.feed.unsubscribe(queue)
        SSE_SUBSCRIBERS.dec()


@router.get(
    "/stream",
    summary="Server-Sent Events: the latest window now, then each newly released window",
    responses={200: {"content": {"text/event-stream": {}}}, **ERRORS},
)
async def stream(
    request: Request,
    key: DensityKey,
    state: StateDep,
    bbox: BBoxDep,
    res: Annotated[int, Query(ge=0, le=15)] = 9,
    format: Annotated[Fmt, Query()] = "geojson",  # noqa: A002
    smooth: Annotated[bool, Query(description=SMOOTH_HELP)] = False,
) -> EventSourceResponse:
    check_res(res, state.settings)
    return EventSourceResponse(_events(request, state, bbox, res, format, smooth), ping=15, send_timeout=30)
