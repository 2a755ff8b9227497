"""``/v1/density``: one window's cells in a bbox, area sums, one cell's series, city totals, the live
stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import anyio.to_thread
import h3
from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import Response
from shapely.geometry.base import BaseGeometry
from sse_starlette import EventSourceResponse

from api import density
from api.areas import cell_sum_answer, sum_series, with_zone
from api.density import Payload
from api.deps import BBoxDep, DensityKey, ReaderDep, StateDep, check_range, check_res, parse_time
from api.exceptions import BadRequestError, NotFoundError
from api.geo import BBox, bbox_cover, check_area, cover, parse_cell, parse_polygon
from api.metrics import CACHE, SSE_SUBSCRIBERS
from api.schemas.common import ERRORS
from api.schemas.density import AreaRequest, AreaResponse, DensityCollection, DensityRows, SeriesResponse
from api.state import ApiState
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


async def answer_area(
    state: ApiState, geom: BaseGeometry, res: int, start: datetime, end: datetime
) -> dict[str, Any] | None:
    """The one place an area request is answered: the sum of released cells over the polygon's
    cover, and, when the polygon is a registered zone in effect at the range's end (the same base
    cells), the zone's own measurement for the windows it was measured in."""
    settings = state.settings
    # The base cover decides whether the polygon is a zone; at the base resolution it is also the
    # cover to sum, so the polygon is filled once (off the event loop: it is CPU work).
    base_res = settings.base_resolution
    base = await anyio.to_thread.run_sync(cover, geom, base_res)
    answer = await cell_sum_answer(
        state.reader, state.sums, geom, res, tuple(settings.release_resolutions), start, end,
        base if res == base_res else None,
    )  # fmt: skip
    if answer is None:
        return None
    zone = await anyio.to_thread.run_sync(state.zones.matching, base, end - timedelta(seconds=1))
    return answer if zone is None else await with_zone(state.pool, zone, answer)


@router.post("/area", summary="Estimated persons in a polygon, per released window", responses=ERRORS)
async def post_area(
    key: DensityKey,
    state: StateDep,
    request: Annotated[AreaRequest, Body()],
) -> AreaResponse:
    settings = state.settings
    res = check_res(request.res, settings)
    geom = parse_polygon(request.geometry, settings.api_max_polygon_vertices)
    check_area(geom, settings.api_max_bbox_km2, "polygon")
    start, end = parse_time(request.from_.isoformat(), "from"), parse_time(request.to.isoformat(), "to")
    check_range(start, end, settings)
    answer = await answer_area(state, geom, res, start, end)
    if answer is None:
        raise BadRequestError(f"the polygon contains no H3 cell centre at res {res}; use a finer res")
    return AreaResponse.model_validate(answer)


@router.get("/series", summary="Time series of one cell", responses=ERRORS)
async def get_series(
    key: DensityKey,
    state: StateDep,
    cell: Annotated[str, Query(description="H3 cell id (hex) at a released resolution", max_length=32)],
    from_: Annotated[str | None, Query(alias="from", description="ISO 8601; default to − 1 h")] = None,
    to: Annotated[str | None, Query(description="ISO 8601; default: end of the latest window")] = None,
) -> SeriesResponse:
    cell_id = parse_cell(cell, state.settings.release_resolutions)
    start, end = await series_range(state, from_, to)
    res = h3.get_resolution(cell)
    series, released = await sum_series(state.reader, state.sums, {res: frozenset({cell_id})}, start, end)
    return SeriesResponse.model_validate(
        {"resolution": res, "cells": 1, "cells_released": sum(released.values()), "from": start, "to": end,
         "series": series}
    )  # fmt: skip


@router.get("/total", summary="Estimated persons in the whole service area, per released window",
            responses=ERRORS)  # fmt: skip
async def get_total(
    key: DensityKey,
    state: StateDep,
    from_: Annotated[str | None, Query(alias="from", description="ISO 8601; default to − 1 h")] = None,
    to: Annotated[str | None, Query(description="ISO 8601; default: end of the latest window")] = None,
    res: Annotated[
        int | None, Query(ge=0, le=15, description="resolution summed; default the coarsest released")
    ] = None,
) -> SeriesResponse:
    settings = state.settings
    level_res = check_res(res, settings) if res is not None else min(settings.release_resolutions)
    start, end = await series_range(state, from_, to)
    tree = await anyio.to_thread.run_sync(state.sums.tree)
    cells = frozenset(int(c) for c in tree.cells[tree.resolutions.index(level_res)].tolist())
    series, released = await sum_series(state.reader, state.sums, {level_res: cells}, start, end)
    return SeriesResponse.model_validate(
        {"resolution": level_res, "cells": len(cells), "cells_released": sum(released.values()),
         "from": start, "to": end, "series": series}
    )  # fmt: skip


async def series_range(state: ApiState, from_: str | None, to: str | None) -> tuple[datetime, datetime]:
    """[from, to) of a series request: ``to`` defaults to the end of the latest window, ``from``
    to one hour before ``to``."""
    if to is None:
        latest = await state.reader.latest()
        if latest is None:
            raise NotFoundError("no window has been released yet")
        end = latest.end
    else:
        end = parse_time(to, "to")
    start = parse_time(from_, "from") if from_ is not None else end - timedelta(hours=1)
    check_range(start, end, state.settings)
    return start, end


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
