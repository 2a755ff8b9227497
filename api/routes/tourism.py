"""``/v1/tourism/areas``: tourism areas (``tourism:read`` to read, ``admin`` to change).

An area is a registered zone (given by id, or registered here from a polygon with the zone checks:
vertex and area caps, validity, disjointness) plus its capacity and time zone (tourism/areas.py).
Changing an area's polygon is changing its zone (``PUT /v1/zones/{id}``); deleting an area leaves
its zone registered.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import anyio.to_thread
import orjson
from fastapi import APIRouter, Body, Depends, Path, Request

from api.auth import require
from api.deps import AdminKey, StateDep, zone_store
from api.exceptions import BadRequestError, ConflictError, NotFoundError
from api.keys import ApiKey
from api.schemas.common import ERRORS, ErrorBody
from api.schemas.tourism import AreaIn, AreaList, AreaOut, AreaUpdate
from api.zones import ZoneStore
from hexpulse.zones import Zone
from tourism.areas import (
    Area,
    AreaError,
    AreaExistsError,
    AreaStore,
    UnknownAreaError,
    check_fields,
    check_id,
)

router = APIRouter(prefix="/v1/tourism", tags=["tourism"])
TourismKey = Annotated[ApiKey, Depends(require("tourism:read"))]
AreaId = Annotated[str, Path(max_length=64, description="area id")]
_WRITE_ERRORS = {**ERRORS, 409: {"model": ErrorBody, "description": "id taken; zone overlaps its set"}}
#: Scenic-area rules flag occupancy at 80% of the published capacity.
WARNING_SHARE = 0.8
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
