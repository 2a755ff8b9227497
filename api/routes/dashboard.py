"""``/``: the wall-screen dashboard shell (open; it fetches data with the key the operator enters)."""

from __future__ import annotations

from importlib import resources

import orjson
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from api.area_summary import area_summary
from api.deps import SettingsDep

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> HTMLResponse:
    html = (resources.files("api") / "static" / "index.html").read_text(encoding="utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


@router.get("/dashboard-config.json")
async def config(settings: SettingsDep) -> Response:
    """Public, non-secret page settings (no data): tiles URL, service-area bbox, resolutions, window."""
    bounds = area_summary(settings).bounds
    body = {
        "basemap_tiles_url": settings.basemap_tiles_url,
        "service_area_bbox": [round(v, 5) for v in bounds],
        "resolutions": list(settings.release_resolutions),
        "window_s": settings.window_s,
    }
    return Response(orjson.dumps(body), media_type="application/json")
