"""The published ε: dp-accounting's RDP figure next to the zCDP conversion, per day and per week."""

from __future__ import annotations

import math

import dp_accounting
import pytest
from dp_accounting import rdp
from scipy import stats

from hexpulse.settings import load_settings
from privacy.release.accounting import DAYS_PER_WEEK, eps_from_rho, epsilon_report, rdp_epsilon
from privacy.release.budget import plan_from_settings


def test_published_figures_for_the_default_budget() -> None:
    report = epsilon_report(1.0, 1e-6)
    assert report.day_zcdp == pytest.approx(8.4338, abs=1e-3)
    assert report.day_rdp == pytest.approx(7.766, abs=1e-3)
    assert report.week_zcdp == pytest.approx(eps_from_rho(7.0, 1e-6))
    assert report.week_rdp == pytest.approx(25.504, abs=1e-3)
    assert report.day_rdp < report.day_zcdp and report.week_rdp < report.week_zcdp


def test_rdp_figure_is_that_of_the_deployed_draws() -> None:
    """Composing the plan's actual draws (each Gaussian, W windows a day and the daily ones once a
    day, the speed bins W_t windows a day, 7 days a week) in the
    RDP accountant gives the figure published from ρ alone: zCDP's RDP curve is ρ·α exactly."""
    plan = plan_from_settings(load_settings())
    for days in (1, DAYS_PER_WEEK):
        accountant = rdp.RdpAccountant()
        for draw in plan.every_draw:
            accountant.compose(
                dp_accounting.GaussianDpEvent(draw.params.sigma / draw.params.sensitivity),
                plan.windows_of(draw) * days,  # W windows a day, W_t for the speed bins
            )
        for draw in plan.daily_draws:  # the tourism measurements: once per device-day
            noise = draw.params.sigma / draw.params.sensitivity
            accountant.compose(dp_accounting.GaussianDpEvent(noise), days)
        assert rdp_epsilon(days * plan.rho_per_device_day, plan.delta) == pytest.approx(
            accountant.get_epsilon(plan.delta), rel=1e-4
        )


@pytest.mark.parametrize("rho", [0.01, 1.0, 7.0])
def test_rdp_figure_is_valid(rho: float) -> None:
    """It never claims more than the exact privacy profile of a Gaussian mechanism of that ρ
    (Balle & Wang 2018): δ(ε) = Φ(μ/2 − ε/μ) − e^ε·Φ(−μ/2 − ε/μ), μ = √(2ρ), is at most δ."""
    delta = 1e-6
    eps = rdp_epsilon(rho, delta)
    mu = math.sqrt(2 * rho)
    exact = stats.norm.cdf(mu / 2 - eps / mu) - math.exp(eps) * stats.norm.cdf(-mu / 2 - eps / mu)
    assert exact <= delta
    assert eps <= eps_from_rho(rho, delta)


def test_edges() -> None:
    assert rdp_epsilon(0.0, 1e-6) == 0.0
    assert rdp_epsilon(0.5, 1e-6) < rdp_epsilon(1.0, 1e-6)
    with pytest.raises(ValueError, match="delta"):
        rdp_epsilon(1.0, 0.0)
