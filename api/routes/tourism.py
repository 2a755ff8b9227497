"""``/v1/tourism/areas``: tourism areas (``tourism:read`` to read, ``admin`` to change).

An area is a registered zone (given by id, or registered here from a polygon with the zone checks:
vertex and area caps, validity, disjointness) plus its capacity and time zone (tourism/areas.py).
Changing an area's polygon is changing its zone (``PUT /v1/zones/{id}``); deleting an area leaves
its zone registered.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import anyio.to_thread
import orjson
from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from api.auth import require
from api.deps import AdminKey, StateDep, zone_store
from api.exceptions import BadRequestError, ConflictError, NotFoundError
from api.keys import ApiKey
from api.schemas.common import ERRORS, ErrorBody
from api.schemas.tourism import (
    AreaIn,
    AreaList,
    AreaOut,
    AreaUpdate,
    DailyResponse,
    HourlyResponse,
    HourOut,
    TourismDayOut,
)
from api.state import ApiState
from api.zones import ZoneStore
from hexpulse.settings import Settings
from hexpulse.zones import Zone
from releases.tourism import VISITORS, area_days
from releases.zones import zone_series
from tourism.areas import (
    Area,
    AreaError,
    AreaExistsError,
    AreaStore,
    UnknownAreaError,
    check_fields,
    check_id,
)
from tourism.hourly import (
    MAX_EXPANSION,
    WARNING_SHARE,
    Curve,
    DateError,
    ExpansionError,
    check_expansion,
    check_local_date,
    hourly_curve,
    local_day_bounds,
    unit_label,
)
from tourism.report import load_report, render_report

router = APIRouter(prefix="/v1/tourism", tags=["tourism"])
TourismKey = Annotated[ApiKey, Depends(require("tourism:read"))]
AreaId = Annotated[str, Path(max_length=64, description="area id")]
_WRITE_ERRORS = {**ERRORS, 409: {"model": ErrorBody, "description": "id taken; zone overlaps its set"}}
T = TypeVar("T")


async def _run(call: Callable[[], T]) -> T:
    """``call`` in a thread, with the tourism store's errors as HTTP errors."""
    try:
        return await anyio.to_thread.run_sync(call)
    except AreaError as exc:
        raise BadRequestError(str(exc)) from None
    except UnknownAreaError as exc:
        raise NotFoundError(str(exc)) from None
    except AreaExistsError as exc:
        raise ConflictError(str(exc)) from None


def _out(area: Area, zone: Zone) -> AreaOut:
    warn = None if area.capacity is None else math.floor(area.capacity * WARNING_SHARE)
    doc: dict[str, Any] = {
        "id": area.area_id, "name": area.name, "zone": zone.zone_id, "set": zone.zone_set,
        "geometry": orjson.loads(zone.geometry), "cells": len(zone.cells), "capacity": area.capacity,
        "capacity_warning_at": warn, "timezone": area.timezone, "created_at": area.created_at,
    }  # fmt: skip
    return AreaOut.model_validate(doc)


def _with_zone(zones: ZoneStore, area: Area) -> AreaOut:
    return _out(area, zones.history(area.zone_id)[-1])


@router.post("/areas", status_code=201, summary="Register a tourism area", responses=_WRITE_ERRORS)
async def create_area(
    request: Request, key: AdminKey, state: StateDep, body: Annotated[AreaIn, Body()]
) -> AreaOut:
    store, zones = AreaStore(state.pool), zone_store(request)

    def create() -> AreaOut:
        name, capacity, timezone = check_fields(body.name, body.capacity, body.timezone)
        area_id = check_id(body.id)
        if (body.zone is None) == (body.geometry is None):
            raise AreaError(
                "give either 'zone' (a registered zone's id) or 'geometry' (a new zone), not both"
            )
        if store.taken(area_id):
            raise AreaExistsError(f"a tourism area with id {area_id!r} exists or existed; choose another id")
        if body.zone is not None:
            zone = zones.history(body.zone)[-1]
            if not any(z.zone_id == zone.zone_id for z in zones.current()):
                raise AreaError(f"zone {body.zone!r} has been ended; register a new one")
        else:
            zone = zones.create(body.zone_set, name, body.geometry, None)
        return _out(store.create(area_id, name, zone.zone_id, capacity, timezone), zone)

    return await _run(create)


@router.get("/areas", summary="Tourism areas", responses=ERRORS)
async def list_areas(request: Request, key: TourismKey, state: StateDep) -> AreaList:
    store, zones = AreaStore(state.pool), zone_store(request)
    return await _run(lambda: AreaList(areas=[_with_zone(zones, a) for a in store.all()]))


@router.get("/areas/{area_id}", summary="One tourism area", responses=ERRORS)
async def get_area(request: Request, key: TourismKey, state: StateDep, area_id: AreaId) -> AreaOut:
    store, zones = AreaStore(state.pool), zone_store(request)
    return await _run(lambda: _with_zone(zones, store.get(area_id)))


@router.put("/areas/{area_id}", summary="Change an area's name, capacity or time zone", responses=ERRORS)
async def update_area(
    request: Request, key: AdminKey, state: StateDep, area_id: AreaId, body: Annotated[AreaUpdate, Body()]
) -> AreaOut:
    store, zones = AreaStore(state.pool), zone_store(request)

    def update() -> AreaOut:
        name, capacity, timezone = check_fields(body.name, body.capacity, body.timezone)
        old = store.get(area_id)
        new = Area(area_id, name, old.zone_id, capacity, timezone, old.created_at)
        return _with_zone(zones, store.update(new))

    return await _run(update)


@router.delete("/areas/{area_id}", summary="Delete an area (its zone stays registered)", responses=ERRORS)
async def delete_area(request: Request, key: AdminKey, state: StateDep, area_id: AreaId) -> AreaOut:
    store, zones = AreaStore(state.pool), zone_store(request)
    return await _run(lambda: _with_zone(zones, store.delete(area_id)))


#: Longest range of one daily query (days); a year of days is ~400 rows per area.
MAX_RANGE_DAYS = 366
DateQuery = Annotated[date, Query(alias="date", description="the area's local date, YYYY-MM-DD")]
Expansion = Annotated[
    float | None,
    Query(description=f"visitors per device seen (1–{MAX_EXPANSION:g}); values are labelled visitors"),
]


def _check_date(settings: Settings, day: date, name: str) -> date:
    try:
        return check_local_date(day, settings.release_retention_days, name)
    except DateError as exc:
        raise BadRequestError(str(exc)) from None


def _check_range(settings: Settings, first: date, last: date) -> None:
    if first > last:
        raise BadRequestError(f"'from' ({first}) is after 'to' ({last})")
    if (last - first).days + 1 > MAX_RANGE_DAYS:
        raise BadRequestError(f"a range covers at most {MAX_RANGE_DAYS} days; split it")
    _check_date(settings, first, "from")
    _check_date(settings, last, "to")


def _expansion(expansion: float | None) -> float | None:
    try:
        return check_expansion(expansion)
    except ExpansionError as exc:
        raise BadRequestError(str(exc)) from None


@router.get(
    "/areas/{area_id}/daily", summary="Released daily visitors and dwell of an area", responses=ERRORS,
    response_model=DailyResponse,
    openapi_extra={"responses": {"200": {"content": {"text/csv": {"schema": {"type": "string"}}}}}},
)  # fmt: skip
async def area_daily(
    request: Request, key: TourismKey, state: StateDep, area_id: AreaId,
    first: Annotated[date | None, Query(alias="from", description="first date (default: to - 29)")] = None,
    last: Annotated[date | None, Query(alias="to", description="last local date (default: today)")] = None,
    expansion: Expansion = None,
) -> Response:  # fmt: skip
    """Distinct visitors and the dwell histogram per released local day (only days the daily
    release published; a day not yet released is absent). ``Accept: text/csv`` gives CSV."""
    scale_by = _expansion(expansion)
    area = await _run(lambda: AreaStore(state.pool).get(area_id))
    last = last or datetime.now(ZoneInfo(area.timezone)).date()
    if first is None:  # the 30 days up to 'to', cut at the retention
        oldest = datetime.now(UTC).date() - timedelta(days=state.settings.release_retention_days)
        first = max(_check_date(state.settings, last, "to") - timedelta(days=29), oldest)
    _check_range(state.settings, first, last)
    days = await area_days(state.pool, area_id, first, last)
    scale = scale_by or 1.0
    doc = DailyResponse(area=area_id, timezone=area.timezone, unit=unit_label(scale_by), expansion=scale_by,
                        days=[TourismDayOut.of(d, scale) for d in days if VISITORS in d.values])  # fmt: skip
    return _json_or_csv(request, doc, f"{area_id}-{first}-{last}.csv")


def _json_or_csv(request: Request, doc: DailyResponse | HourlyResponse, filename: str) -> Response:
    """JSON, or CSV (an attachment named ``filename``) when the client accepts ``text/csv``."""
    if "text/csv" in request.headers.get("accept", ""):
        return Response(doc.to_csv(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})  # fmt: skip
    return Response(doc.model_dump_json(), media_type="application/json")


async def _curve(state: ApiState, area: Area, local_date: date, expansion: float | None) -> Curve:
    start, end = local_day_bounds(local_date, area.timezone)
    points = await zone_series(state.pool, area.zone_id, start, end)
    return hourly_curve(points, local_date, area.timezone, area.capacity, expansion)


@router.get(
    "/areas/{area_id}/hourly", summary="Hourly occupancy of an area's local day", responses=ERRORS,
    response_model=HourlyResponse,
    openapi_extra={"responses": {"200": {"content": {"text/csv": {"schema": {"type": "string"}}}}}},
)  # fmt: skip
async def area_hourly(
    request: Request, key: TourismKey, state: StateDep, area_id: AreaId, local_date: DateQuery,
    expansion: Expansion = None,
) -> Response:  # fmt: skip
    """Mean occupancy per local hour from the zone's minute releases, the peak hour and the peak
    against capacity (warning at 80%). Hours of the day not yet released are absent.
    ``Accept: text/csv`` gives one CSV row per hour."""
    scale_by = _expansion(expansion)
    area = await _run(lambda: AreaStore(state.pool).get(area_id))
    _check_date(state.settings, local_date, "date")
    c = await _curve(state, area, local_date, scale_by)
    doc = HourlyResponse(
        area=area_id, local_date=local_date, timezone=area.timezone, unit=c.unit, expansion=c.expansion,
        capacity=c.capacity, capacity_warning_at=c.warning_at, hours=[HourOut.of(h) for h in c.hours],
        peak=None if c.peak is None else HourOut.of(c.peak),
        peak_vs_capacity=None if c.peak_share is None else list(c.peak_share), warning=c.warning,
    )  # fmt: skip
    return _json_or_csv(request, doc, f"{area_id}-{local_date}-hourly.csv")


@router.get(
    "/areas/{area_id}/report", summary="Printable daily report of an area (HTML)", responses=ERRORS,
    response_class=HTMLResponse,
)  # fmt: skip
async def area_report(
    key: TourismKey, state: StateDep, area_id: AreaId, local_date: DateQuery,
    expansion: Expansion = None,
) -> HTMLResponse:  # fmt: skip
    """Occupancy vs capacity, dwell histogram, visitors of the last 30 days and the privacy note, as
    one static page (inline SVG, no script) that prints or saves as PDF; ``hexpulse report`` prints
    the same page."""
    scale_by = _expansion(expansion)
    area = await _run(lambda: AreaStore(state.pool).get(area_id))
    _check_date(state.settings, local_date, "date")
    data = await load_report(state.pool, state.settings, area, local_date, scale_by)
    return HTMLResponse(render_report(data))
