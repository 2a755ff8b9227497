"""Windows and privacy resources."""

from __future__ import annotations

from datetime import date

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
