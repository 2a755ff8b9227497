"""The privacy report: the guarantee, its ε conversions, the budget plan and today's spend.

One builder for ``GET /v1/privacy`` (JSON) and the public transparency page ``GET /privacy``
(HTML), so the two never disagree. Everything comes from settings, the plan derived from them and
the release ledger (through ``releases``); nothing is computed twice.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from api import density
from hexpulse.settings import Settings
from privacy.release.accounting import DAYS_PER_WEEK, EpsilonReport, eps_from_rho, epsilon_report
from privacy.release.budget import plan_from_settings, plan_rows, unallocated_share
from releases.reader import ReleaseReader


async def budget_plan(settings: Settings) -> dict[str, Any]:
    """``{"budget_plan": rows, "unallocated_share": float}`` of the one budget plan
    (``privacy.release.budget.plan_rows``), built off the event loop once per process."""
    rows, unallocated = await asyncio.to_thread(_plan, settings)
    return {"budget_plan": rows, "unallocated_share": unallocated}


@lru_cache(maxsize=4)
def _plan(settings: Settings) -> tuple[list[dict[str, Any]], float]:
    # Settings are frozen, so the plan of a process never changes.
    plan = plan_from_settings(settings)
    return plan_rows(plan), unallocated_share(plan)


async def privacy_report(settings: Settings, reader: ReleaseReader) -> dict[str, Any]:
    """The fields of ``api.schemas.windows.PrivacyResponse`` (plus ``budget_plan`` rows when the
    plan has them). ρ in zCDP per device-day, ε at ``settings.report_delta``; "today" is the UTC day."""
    today = datetime.now(UTC).date()
    rho, draws = await reader.budget_on(today)
    latest = await reader.latest()
    eps = await _epsilon(settings.budget_rho_per_day, settings.report_delta)
    report: dict[str, Any] = {
        "guarantee": density.GUARANTEE.format(l=settings.cells_per_window, rho=settings.budget_rho_per_day),
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
    }  # fmt: skip
    return report | await budget_plan(settings)


async def _epsilon(rho_per_day: float, delta: float) -> EpsilonReport:
    # The accountant is cached per (ρ, δ); its first use imports dp-accounting (~2 s), off the loop.
    return await asyncio.to_thread(epsilon_report, rho_per_day, delta)
