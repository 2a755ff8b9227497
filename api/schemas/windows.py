"""Windows and privacy resources."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

from api.schemas.common import WindowOut


class WindowsResponse(BaseModel):
    latest: WindowOut | None
    now_lag_s: float | None = Field(description="seconds since the end of the latest released window")
    window_s: int
    resolutions: list[int]
    recent: list[WindowOut] = Field(description="newest first")


class EpsilonOut(BaseModel):
    """(ε, δ)-DP of one guarantee, by two valid conversions of its ρ-zCDP (PRIVACY.md §2)."""

    rho: float = Field(description="zCDP ρ of the unit (ρ per device-day × days)")
    zcdp_conversion: float = Field(description="ε = ρ + 2·sqrt(ρ·ln(1/δ)) (Bun & Steinke 2016)")
    rdp_accountant: float = Field(description="ε from dp-accounting's RDP accountant (tighter)")


class PlanRow(BaseModel):
    """One product of the budget plan (HEXPULSE_BUDGET_PLAN)."""

    product: str = Field(
        description="cells (the live map), traffic (moving devices per speed bin and cell) or zones.<set> "
        "(registered zones)"
    )
    per: Literal["window", "day"] = Field(description="measured every window or once a day")
    share: float = Field(description="share of the device-day ρ")
    rho_per_device_day: float = Field(description="zCDP ρ this product costs one device-day")
    epsilon_per_device_day: float = Field(description="ε of that ρ alone (zCDP conversion at delta)")
    sigma: float | None = Field(description="σ in devices of one released count (cells: a base-resolution "
                                "cell; zones: one zone); null when the share is 0")  # fmt: skip
    what: str = Field(description="what the product is, in plain words")


class PrivacyResponse(BaseModel):
    guarantee: str
    unit: str
    mechanism: str
    day: date
    budget_rho_per_day: float
    rho_spent_today: float
    epsilon_spent_today: float = Field(description="ε at delta from ρ-zCDP: ε = ρ + 2·sqrt(ρ·ln(1/δ))")
    epsilon_budget_per_day: float = Field(description="ε of the daily budget by the zCDP conversion")
    delta: float
    epsilon_per_day: EpsilonOut = Field(description="one device-day at the daily budget")
    epsilon_per_week: EpsilonOut = Field(description="seven device-days (one phone for a week), composed")
    noise_draws_today: int = Field(description="distinct noise draws recorded in the ledger today")
    budget_plan: list[PlanRow] = Field(description="how the device-day budget is split between products")
    unallocated_share: float = Field(description="share of the device-day budget no product spends")
