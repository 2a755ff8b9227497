"""``/v1/zones``: registered zones (``admin`` to change, ``density:read`` to read) and their series.

Every change takes effect from the next window boundary (``valid_from``), so released windows and
the window being aggregated keep the zones they had; no restart is needed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import anyio.to_thread
import orjson
from fastapi import APIRouter, Body, Path, Query, Request

from api import density
from api.deps import AdminKey, DensityKey, SettingsDep, StateDep, check_range, parse_time, zone_store
from api.schemas.common import ERRORS, ErrorBody
from api.schemas.zones import ZoneDetail, ZoneIn, ZoneList, ZoneOut, ZoneSeries
from hexpulse.zones import OPEN_END, Zone
from releases.zones import zone_series

router = APIRouter(prefix="/v1/zones", tags=["zones"])
_WRITE_ERRORS = {**ERRORS, 409: {"model": ErrorBody, "description": "overlaps a zone of its set; id taken"}}
ZoneId = Annotated[str, Path(max_length=64, description="zone id")]


def zone_json(z: Zone) -> dict[str, Any]:
    return {
        "id": z.zone_id, "version": z.version, "set": z.zone_set, "name": z.name,
        "geometry": orjson.loads(z.geometry), "cells": len(z.cells), "valid_from": z.valid_from,
        "valid_to": None if z.valid_to >= OPEN_END else z.valid_to,
    }  # fmt: skip


@router.post("", status_code=201, summary="Register a zone (measured from the next window)",
             responses=_WRITE_ERRORS)  # fmt: skip
async def create_zone(request: Request, key: AdminKey, body: Annotated[ZoneIn, Body()]) -> ZoneOut:
    zone = await anyio.to_thread.run_sync(
        lambda: zone_store(request).create(body.zone_set, body.name, body.geometry, body.id)
    )
    return ZoneOut.model_validate(zone_json(zone))


@router.get("", summary="Registered zones in effect now or from the next window", responses=ERRORS)
async def list_zones(
    request: Request, key: DensityKey,
    zone_set: Annotated[str | None, Query(alias="set", max_length=64, description="only this set")] = None,
) -> ZoneList:  # fmt: skip
    zones = await anyio.to_thread.run_sync(zone_store(request).current)
    return ZoneList(zones=[ZoneOut.model_validate(zone_json(z)) for z in zones
                           if zone_set is None or z.zone_set == zone_set])  # fmt: skip


@router.get("/{zone_id}", summary="One zone: its newest version and every version", responses=ERRORS)
async def get_zone(request: Request, key: DensityKey, zone_id: ZoneId) -> ZoneDetail:
    versions = await anyio.to_thread.run_sync(zone_store(request).history, zone_id)
    doc = {**zone_json(versions[-1]), "versions": [zone_json(v) for v in versions]}
    return ZoneDetail.model_validate(doc)


@router.put("/{zone_id}", summary="Change a zone: a new version from the next window",
            responses=_WRITE_ERRORS)  # fmt: skip
async def replace_zone(
    request: Request, key: AdminKey, zone_id: ZoneId, body: Annotated[ZoneIn, Body()]
) -> ZoneOut:
    zone = await anyio.to_thread.run_sync(
        lambda: zone_store(request).replace(zone_id, body.zone_set, body.name, body.geometry)
    )
    return ZoneOut.model_validate(zone_json(zone))


@router.delete("/{zone_id}", summary="End a zone at the next window (released windows keep it)",
               responses=ERRORS)  # fmt: skip
async def end_zone(request: Request, key: AdminKey, zone_id: ZoneId) -> ZoneOut:
    zone = await anyio.to_thread.run_sync(zone_store(request).end, zone_id)
    return ZoneOut.model_validate(zone_json(zone))


@router.get("/{zone_id}/series", summary="A zone's released estimate per window", responses=ERRORS)
async def get_zone_series(
    request: Request, key: DensityKey, state: StateDep, settings: SettingsDep, zone_id: ZoneId,
    start: Annotated[str | None, Query(alias="from", max_length=64, description="ISO 8601; to−1h")] = None,
    end: Annotated[str | None, Query(alias="to", max_length=64, description="ISO 8601; default now")] = None,
) -> ZoneSeries:  # fmt: skip
    versions = await anyio.to_thread.run_sync(zone_store(request).history, zone_id)
    t1 = parse_time(end, "to") if end else datetime.now(UTC)
    t0 = parse_time(start, "from") if start else t1 - timedelta(hours=1)
    check_range(t0, t1, settings)
    points = await zone_series(state.pool, zone_id, t0, t1)
    last = versions[-1]
    return ZoneSeries.model_validate({
        "id": zone_id, "set": last.zone_set, "name": last.name,
        "series": [{"window_start": density.iso(p.window_start), "window_end": density.iso(p.window_end),
                    "version": p.version, "estimate": round(p.count_est, 3), "sigma": round(p.count_sigma, 3),
                    "ci95": [round(p.count_lo, 3), round(p.count_hi, 3)], "count": p.count, "cells": p.cells}
                   for p in points],
    })  # fmt: skip
