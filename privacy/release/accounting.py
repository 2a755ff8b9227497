"""From ρ-zCDP per device-day to the (ε, δ) figures hexpulse publishes (``/v1/privacy``, PRIVACY.md).

Two conversions of the same guarantee, both valid:

- the classic one, ε = ρ + 2·√(ρ·ln(1/δ)) (Bun & Steinke 2016, Prop. 1.3): a closed form;
- the RDP accountant of Google's ``dp-accounting``: ρ-zCDP is exactly Rényi DP of order α with
  ε(α) = ρ·α for every α > 1, and the accountant converts that curve to (ε, δ) with the tighter
  conversion of Canonne, Kamath & Steinke (2020) / Asoodeh et al., minimized over its grid of
  orders. This is valid for the *discrete* Gaussian too: its Rényi divergences are bounded by the
  continuous Gaussian's, α·Δ²/(2σ²) (CKS 2020), which is what the plan's ρ charges.

A week is seven device-days. The pseudonym key changes daily, so the pipeline cannot link them,
but one person carrying one phone is seven units: zCDP composes additively, so the week is 7ρ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

DAYS_PER_WEEK = 7


def eps_from_rho(rho: float, delta: float) -> float:
    """(ε, δ)-DP implied by ρ-zCDP: ε = ρ + 2√(ρ·ln(1/δ)) (Bun & Steinke 2016, Prop. 1.3)."""
    if rho < 0 or not 0 < delta < 1:
        raise ValueError("rho must be >= 0 and delta in (0, 1)")
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


@lru_cache(maxsize=64)
def rdp_epsilon(rho: float, delta: float) -> float:
    """The ε that dp-accounting's RDP accountant gives for ρ-zCDP at δ (never above the classic)."""
    if rho < 0 or not 0 < delta < 1:
        raise ValueError("rho must be >= 0 and delta in (0, 1)")
    if rho == 0:
        return 0.0
    import dp_accounting  # ~2 s to import: only where ε is reported, once per process
    from dp_accounting import rdp

    accountant = rdp.RdpAccountant()
    accountant.compose(dp_accounting.ZCDpEvent(rho))
    return min(float(accountant.get_epsilon(delta)), eps_from_rho(rho, delta))


@dataclass(frozen=True)
class EpsilonReport:
    """(ε, δ) of ``rho_per_day`` (zCDP per device-day) for one day and for one week."""

    rho_per_day: float
    delta: float
    day_zcdp: float
    day_rdp: float
    week_zcdp: float
    week_rdp: float


def epsilon_report(rho_per_day: float, delta: float) -> EpsilonReport:
    week = DAYS_PER_WEEK * rho_per_day
    return EpsilonReport(
        rho_per_day=rho_per_day,
        delta=delta,
        day_zcdp=eps_from_rho(rho_per_day, delta),
        day_rdp=rdp_epsilon(rho_per_day, delta),
        week_zcdp=eps_from_rho(week, delta),
        week_rdp=rdp_epsilon(week, delta),
    )
