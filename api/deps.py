"""Annotated dependency aliases shared by the routers (parameters are validated here once).

Dependencies are ``async def``: FastAPI runs plain ``def`` ones in a worker thread, a hop per
request that costs more than their work."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Depends, Query, Request
from shapely.geometry import box

from api.auth import require
from api.exceptions import BadRequestError
from api.geo import BBox, check_area, parse_bbox
from api.keys import ApiKey
from api.state import ApiState
from api.zones import ZoneStore
from hexpulse.settings import Settings
from hexpulse.times import utc
from releases.reader import ReleaseReader


async def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


def zone_store(request: Request) -> ZoneStore:
    """The process's registered-zone store (a plain function: routes call it from worker threads)."""
    store: ZoneStore = request.app.state.api.zones
    return store


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.api.settings
    return settings


async def get_reader(request: Request) -> ReleaseReader:
    reader: ReleaseReader = request.app.state.api.reader
    return reader


StateDep = Annotated[ApiState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
ReaderDep = Annotated[ReleaseReader, Depends(get_reader)]
DensityKey = Annotated[ApiKey, Depends(require("density:read"))]
TrafficKey = Annotated[ApiKey, Depends(require("traffic:read"))]
AdminKey = Annotated[ApiKey, Depends(require("admin"))]


def check_res(res: int, settings: Settings) -> int:
    if res not in settings.release_resolutions:
        raise BadRequestError(
            f"res {res} is not released; choose one of {list(settings.release_resolutions)}"
        )
    return res


async def bbox_param(
    settings: SettingsDep,
    bbox: Annotated[str, Query(description="minLon,minLat,maxLon,maxLat (degrees, WGS 84)", max_length=200)],
) -> BBox:
    parsed = parse_bbox(bbox)
    check_area(box(*parsed), settings.api_max_bbox_km2, "bbox")
    return parsed


BBoxDep = Annotated[BBox, Depends(bbox_param)]


def parse_time(raw: str, name: str) -> datetime:
    """ISO 8601 → aware UTC datetime (a time without offset is taken as UTC)."""
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise BadRequestError(f"{name} must be an ISO 8601 time such as 2026-11-27T10:00:00Z") from None
    return utc(value)


def check_range(start: datetime, end: datetime, settings: Settings) -> None:
    if end <= start:
        raise BadRequestError("'to' must be after 'from'")
    if end - start > timedelta(hours=settings.api_max_range_h):
        raise BadRequestError(f"the time range is longer than the cap of {settings.api_max_range_h:g} hours")
