"""``/privacy``: the public transparency page (no key; configuration, the ledger's spend and the
release lag, never released cells)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

import anyio.to_thread
from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from api import transparency
from api.area_summary import area_summary
from api.deps import ReaderDep, SettingsDep
from api.privacy_report import privacy_report
from hexpulse.settings import Settings
from privacy.release.budget import ReleasePlan, plan_from_settings
from releases.smoothing import SmoothingParams

router = APIRouter(include_in_schema=False)

#: Released windows whose lag the page summarizes (an hour at one-minute windows).
RECENT_WINDOWS = 60


@lru_cache(maxsize=4)
def _plan(settings: Settings) -> ReleasePlan:
    return plan_from_settings(settings)


@router.get("/privacy")
async def privacy_page(settings: SettingsDep, reader: ReaderDep) -> HTMLResponse:
    report = await privacy_report(settings, reader)
    recent = await reader.recent(RECENT_WINDOWS)
    area = await anyio.to_thread.run_sync(area_summary, settings)
    facts = transparency.PageFacts(
        settings=settings,
        report=report,
        plan=_plan(settings),
        recent=recent,
        now=datetime.now(UTC),
        area=area,
        smoothing=SmoothingParams.from_settings(settings),
    )
    return HTMLResponse(transparency.render(facts), headers={"Cache-Control": "no-cache"})
