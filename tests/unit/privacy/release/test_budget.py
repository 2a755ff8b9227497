"""Budget-first configuration: the split, the refusals, and the accounting checked by dp-accounting."""

from __future__ import annotations

import math
from datetime import datetime

import dp_accounting
import pytest
from dp_accounting import rdp

from hexpulse.settings import load_settings
from privacy.release.budget import eps_from_rho, fits_day, plan_from_settings, speed_bound_kmh
from privacy.release.exceptions import BudgetError
from privacy.release.ledger import ledger_rows

#: Window products alone (no daily products): the window split of the default before corridors.
WINDOWS_ONLY = ("cells:0.50", "traffic:0.20", "zones.crowd:0.20", "zones.district:0.05")


def test_default_plan_spends_exactly_the_daily_budget() -> None:
    """The window products (cells, traffic, corridors, zones) take 0.95 of ρ_day, the daily tourism
    products 0.05 (once per device-day)."""
    plan = plan_from_settings(load_settings())
    assert plan.windows_per_day == plan.windows_per_device_day == 1440
    assert plan.rho_per_device_day <= 1.0
    assert plan.rho_per_device_day == pytest.approx(1.0, rel=1e-6)
    assert plan.charge_per_window * plan.windows_per_day == pytest.approx(0.95, rel=1e-6)
    assert sum(d.rho for d in plan.daily_draws) == pytest.approx(0.05, rel=1e-6)
    # Cells get 0.45 of the plan; count half of that, split 0.6/0.4 between res 9 and res 8.
    sigma9 = plan.measured("count")[9].params.sigma
    assert sigma9 == pytest.approx(1 / math.sqrt(2 * (1 / 1440) * 0.45 * 0.5 * 0.6), rel=1e-6)
    assert 7 not in plan.measured("count")  # res 7 is derived by summing: free
    assert plan.measured("speed")[9].params.bound == speed_bound_kmh(50.0) == 180


def test_a_plan_of_shares_adding_to_one_spends_exactly_the_daily_budget() -> None:
    plan = plan_from_settings(load_settings(budget_plan=("cells:0.55", "traffic:0.20", "zones.crowd:0.25")))
    assert plan.rho_per_device_day == pytest.approx(1.0, rel=1e-6)
    assert plan.charge_per_window * plan.windows_per_day == pytest.approx(1.0, rel=1e-6)


def test_eps_conversion_matches_dp_accounting() -> None:
    """ρ-zCDP → (ε, δ): our (standard) conversion is valid, i.e. never below Google's RDP
    accountant composing the plan's actual Gaussian draws over a day, and not loose by > 10%."""
    plan = plan_from_settings(load_settings())
    accountant = rdp.RdpAccountant()
    for draw in plan.every_draw:
        accountant.compose(
            dp_accounting.GaussianDpEvent(draw.params.sigma / draw.params.sensitivity),
            plan.windows_of(draw),  # W windows a day, the speed bins W_t
        )
    for draw in plan.daily_draws:
        accountant.compose(dp_accounting.GaussianDpEvent(draw.params.sigma / draw.params.sensitivity), 1)
    eps_google = accountant.get_epsilon(plan.delta)
    ours = plan.eps_per_device_day
    assert ours == pytest.approx(eps_from_rho(1.0, 1e-6), rel=1e-6)
    assert ours == pytest.approx(8.4338, abs=1e-3)
    assert eps_google <= ours <= 1.10 * eps_google


def test_laplace_plan_accounts_pure_epsilon() -> None:
    plan = plan_from_settings(load_settings(noise_mechanism="laplace"))
    for draw in plan.draws:
        eps = draw.params.epsilon
        assert eps is not None and draw.rho == pytest.approx(eps * eps / 2)
    assert plan.rho_per_device_day <= 1.0


def test_fewer_windows_per_device_day_buys_less_noise() -> None:
    many = plan_from_settings(load_settings(budget_plan=WINDOWS_ONLY))
    few = plan_from_settings(load_settings(budget_plan=WINDOWS_ONLY, windows_per_device_day=144))
    assert few.measured("count")[9].params.sigma == pytest.approx(
        many.measured("count")[9].params.sigma / math.sqrt(10), rel=1e-6
    )
    # The ledger charge is amortized so the day's rows still add up to the device-day spend.
    assert few.charge_per_window * few.windows_per_day == pytest.approx(few.rho_per_device_day, rel=1e-6)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"budget_resolution_shares": ("9:0.7", "8:0.7")}, "more than the whole budget"),
        ({"budget_resolution_shares": ("8:1",)}, "base resolution must receive"),
        ({"budget_resolution_shares": ("6:0.5", "9:0.5")}, "outside"),
        ({"budget_resolution_shares": ("nine",)}, "resolution:share"),
        ({"release_metrics": ("count", "people")}, "release metrics"),
        ({"release_metrics": ("count", "speed")}, "needs 'moving'"),
        ({"release_metrics": ("count", "moving"), "budget_count_share": 1.0}, "leave a share"),
    ],
)
def test_refusals_are_one_sentence(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(BudgetError, match=message) as info:
        plan_from_settings(load_settings(**overrides))
    assert "\n" not in str(info.value)


def test_day_is_full_after_its_windows() -> None:
    # A plan spending the whole day on window products (the default leaves 0.05 for daily ones).
    plan = plan_from_settings(load_settings(budget_plan=("cells:0.55", "traffic:0.20", "zones.crowd:0.25")))
    spent = 0.0
    for _ in range(plan.windows_per_day):
        assert fits_day(spent, plan.charge_per_window, plan.rho_per_day)
        spent += plan.charge_per_window
    assert not fits_day(spent + plan.charge_per_window * 0.5, plan.charge_per_window, plan.rho_per_day)


def test_ledger_rows_cover_every_family() -> None:
    plan = plan_from_settings(load_settings(budget_plan=WINDOWS_ONLY))
    w = datetime(2030, 1, 1, 12, 0)
    prints = {(res, m): 100 * res + i for res in plan.resolutions for i, m in enumerate(plan.metrics)}
    rows = ledger_rows(plan, 42, w, prints, "test", w)
    assert len(rows) == 9  # 3 resolutions × 3 metrics, derived ones at ρ = 0
    # No zone set and no speed bins drawn: the window charges the cells' share only.
    assert sum(float(r[9]) for r in rows) == pytest.approx(plan.window_charge((), traffic=False))  # type: ignore[misc,arg-type]
    assert plan.window_charge((), traffic=False) * plan.windows_per_day == pytest.approx(0.50, rel=1e-6)
    assert {r[6] for r in rows if r[2] == 7} == {"derived"}
    assert {r[4] for r in rows} == {42}  # the plan hash
    assert {(r[2], r[3]): r[5] for r in rows} == prints  # each family's fingerprint
