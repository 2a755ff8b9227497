"""The one budget plan (HEXPULSE_BUDGET_PLAN): shares per product, refusals, the published rows."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import pytest

from hexpulse.service_area import load_service_area
from hexpulse.settings import load_settings
from hexpulse.zones import ZoneRef
from privacy.release.accounting import eps_from_rho
from privacy.release.budget import fits_day, plan_from_settings, plan_rows, speed_bound_kmh, unallocated_share
from privacy.release.consistency import build_hierarchy, sum_by
from privacy.release.exceptions import BudgetError
from privacy.release.ledger import ledger_rows
from privacy.release.plans import PlanRecord, record_from_json

#: Window products alone (no daily products): the window split of the default before corridors.
WINDOWS_ONLY = ("cells:0.50", "traffic:0.20", "zones.crowd:0.20", "zones.district:0.05")


def test_default_plan_splits_the_device_day() -> None:
    plan = plan_from_settings(load_settings())
    assert dict(plan.shares) == {
        "cells": 0.45, "traffic": 0.10, "traffic.corridor": 0.15, "zones.crowd": 0.20, "zones.district": 0.05,
        "tourism.visitors": 0.03, "tourism.dwell": 0.02,
    }  # fmt: skip
    assert plan.zone_sets == ("crowd", "district")
    # Road corridors (issue #12) are measured for their speed bins: σ of one (corridor, bin).
    corridor = plan.zone_traffic_draw("corridor")
    assert corridor is not None and corridor.res == 9 and plan.zone_draw("corridor") is None
    # Speed bins count a device-day in its first W_t = 120 moving windows: ρ per window 0.15 / 120.
    assert plan.traffic_window_bound == 120
    assert corridor.params.sigma == pytest.approx(1 / math.sqrt(2 * 0.15 / 120), rel=1e-9)
    assert corridor.rho * plan.traffic_window_bound == pytest.approx(0.15, rel=1e-6)
    # The window products take 0.95 of the device-day, the daily ones 0.05.
    assert plan.rho_per_device_day == pytest.approx(1.0, rel=1e-6)
    cells = sum(d.rho for d in plan.draws) * plan.windows_per_device_day
    assert cells == pytest.approx(0.45, rel=1e-6)
    assert plan.traffic_draw is not None and plan.traffic_draw.res == 8
    assert plan.traffic_draw.rho * plan.traffic_window_bound == pytest.approx(0.10, rel=1e-6)
    # The daily products: one draw per device-day each, sensitivity √K (K = 3 area-days).
    visitors, dwell = plan.daily_draw("tourism.visitors"), plan.daily_draw("tourism.dwell")
    assert visitors is not None and dwell is not None and plan.tourism_max_areas == 3
    assert visitors.params.sigma == pytest.approx(math.sqrt(3) / math.sqrt(2 * 0.03), rel=1e-9)
    assert dwell.params.sigma == pytest.approx(math.sqrt(3) / math.sqrt(2 * 0.02), rel=1e-9)
    crowd = plan.zone_draw("crowd")
    assert crowd is not None and crowd.res == 9
    # σ of one zone = L / √(2 ρ_zone_window), ρ_zone_window = share·ρ_day / W: ≈ 27/√share.
    assert crowd.params.bound == 1 and crowd.params.entries == 1
    assert crowd.params.sigma == pytest.approx(1 / math.sqrt(2 * 0.20 / 1440), rel=1e-9)
    assert crowd.params.sigma == pytest.approx(math.sqrt(720) / math.sqrt(0.20), rel=1e-9)
    assert plan.zone_draw("nowhere") is None


def test_zone_bound_is_cells_per_window() -> None:
    plan = plan_from_settings(load_settings(cells_per_window=3))
    crowd = plan.zone_draw("crowd")
    assert crowd is not None and crowd.params.bound == 3 and crowd.params.entries == 1
    assert crowd.params.sigma == pytest.approx(3 / math.sqrt(2 * 0.20 / 1440), rel=1e-9)


def test_window_charge_is_what_the_window_draws() -> None:
    plan = plan_from_settings(load_settings(budget_plan=WINDOWS_ONLY))
    per_day = plan.windows_per_day
    assert plan.window_charge((), traffic=False) * per_day == pytest.approx(0.50, rel=1e-6)
    assert plan.window_charge(()) * per_day == pytest.approx(0.70, rel=1e-6)
    assert plan.window_charge(("crowd",)) * per_day == pytest.approx(0.90, rel=1e-6)
    assert plan.window_charge(("crowd", "district")) == pytest.approx(plan.charge_per_window)
    w = datetime(2030, 1, 1, 12, 0)
    families = [(r, m) for r in plan.resolutions for m in plan.metrics]
    prints = {family: i for i, family in enumerate(families)}
    prints[(9, "zones.crowd")] = 77
    rows = ledger_rows(plan, 1, w, prints, "t", w, zone_sets=["crowd"])
    # No speed bins in these prints: the rows charge the cells and the crowd set only.
    assert sum(float(r[9]) for r in rows) == pytest.approx(plan.window_charge(("crowd",), traffic=False))  # type: ignore[misc,arg-type]
    assert [(r[2], r[3], r[5]) for r in rows if r[3] == "zones.crowd"] == [(9, "zones.crowd", 77)]


def test_a_day_of_windows_with_every_zone_set_fits_the_budget() -> None:
    plan = plan_from_settings(load_settings(budget_plan=WINDOWS_ONLY))
    zones = (ZoneRef("crowd", "a", 1, "0"), ZoneRef("district", "b", 1, "0"))
    record = PlanRecord(plan, 180, "0" * 32, zones=zones)
    spent = 0.0
    for _ in range(plan.windows_per_day):
        assert fits_day(spent, record.charge, plan.rho_per_day)
        spent += record.charge
    # The window products spend 0.95 of the day: exactly the 0.05 of the daily products is left.
    assert spent == pytest.approx(0.95 * plan.rho_per_day, rel=1e-6)
    assert fits_day(spent, 0.05 * plan.rho_per_day, plan.rho_per_day)
    assert not fits_day(spent, 0.05 * plan.rho_per_day + record.charge, plan.rho_per_day)


def test_a_plan_may_leave_budget_unspent() -> None:
    plan = plan_from_settings(load_settings(budget_plan=("cells:0.5", "zones.crowd:0.2")))
    assert plan.rho_per_device_day == pytest.approx(0.7, rel=1e-6)
    assert unallocated_share(plan) == pytest.approx(0.3)
    assert plan.zone_sets == ("crowd",)


def test_env_variable_is_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEXPULSE_BUDGET_PLAN", "cells:0.9, zones.stations:0.1")
    assert load_settings().budget_plan == ("cells:0.9", "zones.stations:0.1")


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (("cells:0.8", "zones.crowd:0.3"), "add up to 1.1, more than the whole budget"),
        (("cells:0.5", "speed:0.1"), "unknown product 'speed'"),
        (("cells:0.5", "zones.Big Set:0.1"), "unknown product"),
        (("zones.crowd:0.5",), "positive share"),
        (("cells:0.5", "cells:0.1"), "twice"),
        (("cells:half",), "'product:share'"),
        (("cells:0.5", "zones.crowd:-0.1"), ">= 0"),
    ],
)
def test_refusals_are_one_sentence(plan: tuple[str, ...], message: str) -> None:
    with pytest.raises(BudgetError, match=message) as info:
        plan_from_settings(load_settings(budget_plan=plan))
    assert "\n" not in str(info.value)


def test_daily_rows_say_per_day() -> None:
    rows = plan_rows(plan_from_settings(load_settings()))[5:]
    assert [(r["product"], r["per"]) for r in rows] == [("tourism.visitors", "day"), ("tourism.dwell", "day")]
    assert [round(r["sigma"], 3) for r in rows] == [7.071, 8.66]
    assert all(r["rho_per_device_day"] == pytest.approx(r["share"], rel=1e-6) for r in rows)


def test_rows_follow_the_contract() -> None:
    plan = plan_from_settings(load_settings(budget_plan=WINDOWS_ONLY))
    rows = plan_rows(plan)
    assert [r["product"] for r in rows] == ["cells", "traffic", "zones.crowd", "zones.district"]
    for row in rows:
        assert set(row) == {"product", "per", "share", "rho_per_device_day", "epsilon_per_device_day",
                            "sigma", "what"}  # fmt: skip
        assert row["per"] == "window"
        assert row["rho_per_device_day"] == pytest.approx(row["share"], rel=1e-6)
        assert row["epsilon_per_device_day"] == pytest.approx(eps_from_rho(row["rho_per_device_day"], 1e-6))
        assert isinstance(row["what"], str) and row["what"]
    cells, traffic, crowd, district = rows
    assert cells["sigma"] == pytest.approx(plan.measured("count")[9].params.sigma)
    assert traffic["sigma"] == pytest.approx(17.32, rel=1e-3)  # one (res-8 cell, bin): √60/√0.20 (W_t 120)
    assert crowd["sigma"] == pytest.approx(60.0, rel=1e-6)  # √720/√0.20
    assert district["sigma"] == pytest.approx(math.sqrt(720 / 0.05), rel=1e-6)
    assert unallocated_share(plan) == pytest.approx(0.05, abs=1e-12)  # the daily products' share
    zero = plan_rows(plan_from_settings(load_settings(budget_plan=("cells:0.9", "zones.crowd:0"))))
    assert zero[1]["sigma"] is None and zero[1]["rho_per_device_day"] == 0.0


def test_the_record_pins_zones_and_round_trips() -> None:
    plan = plan_from_settings(load_settings())
    ref = ZoneRef("crowd", "z1", 2, "ab" * 16)
    bare = PlanRecord(plan, 180, "0" * 32)
    with_zone = PlanRecord(plan, 180, "0" * 32, zones=(ref,))
    assert with_zone.hash != bare.hash
    back = record_from_json(with_zone.to_json())
    assert back == with_zone and back.hash == with_zone.hash
    assert back.zone_sets == ("crowd",)
    assert back.charge == pytest.approx(plan.window_charge(("crowd",)))
    assert bare.charge == pytest.approx(plan.window_charge(()))


@pytest.mark.parametrize("l_cells", [1, 3])
def test_every_measured_level_is_noised_for_its_worst_neighbour(l_cells: int) -> None:
    """One device in L base cells that share a res-8 parent (the worst case for the coarser
    levels): the L2 change of every measured (metric, resolution) vector, aggregated the way
    release_values aggregates it, is within the sensitivity its draw assumes. With L = 3 a
    sensitivity of √L at res 8 (the bug this guards against) would be exceeded: the change is 3."""
    settings = load_settings(cells_per_window=l_cells)
    plan = plan_from_settings(settings)
    tree = build_hierarchy(load_service_area(settings), plan.resolutions)
    parent = tree.parent[0]
    family = np.flatnonzero(parent == np.bincount(parent).argmax())[:l_cells]
    bounds = {"count": 1, "moving": 1, "speed": speed_bound_kmh(settings.speed_clamp_mps)}
    for draw in plan.draws:
        diff = np.zeros(tree.sizes[0], dtype=np.int64)
        diff[family] = bounds[draw.metric]
        level = tree.resolutions.index(draw.res)
        for k in range(level):
            diff = sum_by(tree.parent[k], diff, tree.sizes[k + 1]).astype(np.int64)
        change = float(np.sqrt((diff.astype(np.float64) ** 2).sum()))
        assert change <= draw.params.sensitivity * (1 + 1e-12), (draw.metric, draw.res, change)
