"""``/``: the wall-screen dashboard shell (open; it fetches data with the key the operator enters)."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import orjson
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from api.deps import SettingsDep
from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=4)
def _area_bounds(settings: Settings) -> tuple[float, float, float, float]:
    """Bounds (lon/lat) of the configured service area: configuration, not data."""
    bounds: tuple[float, float, float, float] = load_service_area(settings).geometry.bounds
    return bounds


@router.get("/")
async def index() -> HTMLResponse:
    html = (resources.files("api") / "static" / "index.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.get("/dashboard-config.json")
async def config(settings: SettingsDep) -> Response:
    """Public, non-secret page settings (no data): tiles URL, service-area bbox, resolutions, window."""
    bounds = _area_bounds(settings)
    body = {
        "basemap_tiles_url": settings.basemap_tiles_url,
        "service_area_bbox": [round(v, 5) for v in bounds],
        "resolutions": list(settings.release_resolutions),
        "window_s": settings.window_s,
    }
    return Response(orjson.dumps(body), media_type="application/json")
