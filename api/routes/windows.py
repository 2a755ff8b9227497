"""``/v1/windows`` (what is released, how late) and ``/v1/privacy`` (the guarantee, today's spend)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import density
from api.deps import DensityKey, ReaderDep, SettingsDep
from api.schemas.common import ERRORS
from api.schemas.windows import PrivacyResponse, WindowsResponse
from hexpulse.settings import Settings
from privacy.release.accounting import DAYS_PER_WEEK, EpsilonReport, eps_from_rho, epsilon_report
from privacy.release.budget import plan_from_settings, plan_rows, unallocated_share

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
    today = datetime.now(UTC).date()
    rho, draws = await reader.budget_on(today)
    latest = await reader.latest()
    eps = await _epsilon(settings.budget_rho_per_day, settings.report_delta)
    rows, unallocated = await asyncio.to_thread(_plan, settings)
    return PrivacyResponse.model_validate(
        {
            "guarantee": density.GUARANTEE.format(
                l=settings.cells_per_window, rho=settings.budget_rho_per_day
            ),
            "unit": "device-day",
            "mechanism": latest.mechanism if latest else settings.noise_mechanism,
            "day": today,
            "budget_rho_per_day": settings.budget_rho_per_day,
            "rho_spent_today": rho,
            "epsilon_spent_today": eps_from_rho(rho, settings.report_delta),
            "epsilon_budget_per_day": eps_from_rho(settings.budget_rho_per_day, settings.report_delta),
            "delta": settings.report_delta,
            "epsilon_per_day": {"rho": eps.rho_per_day, "zcdp_conversion": eps.day_zcdp,
                                "rdp_accountant": eps.day_rdp},
            "epsilon_per_week": {"rho": DAYS_PER_WEEK * eps.rho_per_day, "zcdp_conversion": eps.week_zcdp,
                                 "rdp_accountant": eps.week_rdp},
            "noise_draws_today": draws,
            "budget_plan": rows,
            "unallocated_share": unallocated,
        }
    )  # fmt: skip


async def _epsilon(rho_per_day: float, delta: float) -> EpsilonReport:
    # The accountant is cached per (ρ, δ); its first use imports dp-accounting (~2 s), off the loop.
    return await asyncio.to_thread(epsilon_report, rho_per_day, delta)


@lru_cache(maxsize=4)
def _plan(settings: Settings) -> tuple[list[dict[str, Any]], float]:
    """The budget plan's rows (settings are frozen, so the plan of a process never changes)."""
    plan = plan_from_settings(settings)
    return plan_rows(plan), unallocated_share(plan)
