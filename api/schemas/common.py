"""Shapes shared by several resources."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. bad_request, unauthorized, rate_limited")
    detail: str = Field(description="one sentence saying what is wrong")


class WindowOut(BaseModel):
    window_start: datetime = Field(description="UTC, inclusive")
    window_end: datetime = Field(description="UTC, exclusive")
    released_at: datetime = Field(description="UTC time the release was published")
    release_lag_s: float = Field(description="seconds from window end to release")


class PrivacySummary(BaseModel):
    guarantee: str
    unit: str = "device-day"
    mechanism: str
    rho_window: float = Field(
        description="zCDP ρ charged by this window's release (all metrics, resolutions)"
    )
    budget_rho_per_day: float
    note: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "bad input (message says what)"},
    401: {"model": ErrorBody, "description": "missing, unknown or revoked API key"},
    403: {"model": ErrorBody, "description": "key lacks the scope"},
    404: {"model": ErrorBody, "description": "nothing released there"},
    422: {"model": ErrorBody, "description": "malformed parameters or body"},
    429: {"model": ErrorBody, "description": "rate limited; see Retry-After"},
}
