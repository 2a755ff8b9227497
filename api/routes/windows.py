"""``/v1/windows`` (what is released, how late) and ``/v1/privacy`` (the guarantee, today's spend)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api import density
from api.deps import DensityKey, ReaderDep, SettingsDep
from api.privacy_report import privacy_report
from api.schemas.common import ERRORS
from api.schemas.windows import PrivacyResponse, WindowsResponse

router = APIRouter(prefix="/v1", tags=["windows"])


@router.get("/windows", summary="Latest released window, release lag and recent windows", responses=ERRORS)
async def get_windows(
    key: DensityKey,
    settings: SettingsDep,
    reader: ReaderDep,
    limit: Annotated[int, Query(ge=1, le=1440, description="how many recent windows to list")] = 60,
) -> WindowsResponse:
    recent = await reader.recent(limit)
    latest = recent[0] if recent else None
    return WindowsResponse.model_validate(
        {
            "latest": density.window_json(latest) if latest else None,
            "now_lag_s": round((datetime.now(UTC) - latest.end).total_seconds(), 3) if latest else None,
            "window_s": settings.window_s,
            "resolutions": list(settings.release_resolutions),
            "recent": [density.window_json(w) for w in recent],
        }
    )


@router.get("/privacy", summary="The privacy guarantee and the budget spent today (UTC)", responses=ERRORS)
async def get_privacy(key: DensityKey, settings: SettingsDep, reader: ReaderDep) -> PrivacyResponse:
    return PrivacyResponse.model_validate(await privacy_report(settings, reader))
