"""``/privacy``: the public transparency page (no key; configuration, the ledger's spend and the
release lag, never released cells)."""

from __future__ import annotations

import time
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
from releases.reader import ReleaseReader
from releases.smoothing import SmoothingParams

router = APIRouter(include_in_schema=False)

#: Released windows whose lag the page summarizes (an hour at one-minute windows).
RECENT_WINDOWS = 60
#: The page is open (no key, no rate limit), so it is rendered at most this often (seconds) per
#: configuration: any number of visitors cost ClickHouse two small reads per period.
PAGE_TTL_S = 5.0

_rendered: dict[Settings, tuple[float, str]] = {}


@lru_cache(maxsize=4)
def _plan(settings: Settings) -> ReleasePlan:
    return plan_from_settings(settings)


@router.get("/privacy")
async def privacy_page(settings: SettingsDep, reader: ReaderDep) -> HTMLResponse:
    at, html = _rendered.get(settings, (float("-inf"), ""))
    if time.monotonic() - at >= PAGE_TTL_S:
        html = await _render(settings, reader)
        if len(_rendered) > 8:  # one entry per configuration; only tests run several
            _rendered.clear()
        _rendered[settings] = (time.monotonic(), html)
    return HTMLResponse(html, headers={"Cache-Control": f"public, max-age={PAGE_TTL_S:.0f}"})


async def _render(settings: Settings, reader: ReleaseReader) -> str:
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
    return transparency.render(facts)
