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


class PrivacyResponse(BaseModel):
    guarantee: str
    unit: str
    mechanism: str
    day: date
    budget_rho_per_day: float
    rho_spent_today: float
    epsilon_spent_today: float = Field(description="ε at delta from ρ-zCDP: ε = ρ + 2·sqrt(ρ·ln(1/δ))")
    epsilon_budget_per_day: float
    delta: float
    noise_draws_today: int
