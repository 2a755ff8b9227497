"""The budget plan's ``traffic`` product: its draw, charge, stored record, ledger and released rows."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from hexpulse.service_area import load_service_area
from hexpulse.settings import load_settings
from privacy.release.budget import ReleasePlan, plan_from_settings, plan_rows
from privacy.release.consistency import Hierarchy, build_hierarchy
from privacy.release.exceptions import BudgetError
from privacy.release.ledger import ledger_rows
from privacy.release.plans import PlanRecord, record_from_json
from privacy.release.seeds import seeded_keys
from privacy.release.traffic import (
    bins_tree,
    has_bins,
    has_moving_rows,
    measure_traffic,
    to_resolution,
    traffic_rows,
)

PLAN = ("cells:0.35", "traffic:0.35", "zones.crowd:0.25", "zones.district:0.05")


def traffic_plan(**kw: Any) -> ReleasePlan:
    return plan_from_settings(load_settings(budget_plan=PLAN, release_metrics=("count",), **kw))


def test_traffic_draw_is_one_count_like_draw_at_the_traffic_resolution() -> None:
    plan = traffic_plan()
    t = plan.traffic_draw
    assert t is not None and t.metric == "traffic" and t.res == 8
    # σ of one (cell, bin) = L / √(2 ρ_traffic,window), ρ_traffic,window = 0.35 / W_t (120): a
    # device-day counts in its first W_t moving windows only; the ledger charges ρ·W_t / 1440.
    assert t.params.bound == 1 and t.params.entries == 1
    assert t.params.sigma == pytest.approx(1 / math.sqrt(2 * 0.35 / 120), rel=1e-9)
    assert t.charge == pytest.approx(t.rho * 120 / 1440) and plan.traffic_window_bound == 120
    assert plan.rho_per_device_day == pytest.approx(1.0, rel=1e-6)
    assert plan.traffic_edges_kmh == (7.2, 20.0, 35.0, 50.0, 65.0, 80.0, 180.0)
    # The top bin is represented as if as wide as the one below it: 80 + 15/2.
    assert plan.traffic_mids_kmh == pytest.approx((13.6, 27.5, 42.5, 57.5, 72.5, 87.5))
    # A window without bins is charged the rest only.
    assert plan.window_charge(("crowd",), traffic=False) == pytest.approx(
        plan.window_charge(("crowd",)) - t.charge
    )


def test_the_traffic_bound_is_in_the_plan_and_at_most_w() -> None:
    """W_t is part of the stored record (another bound, another plan); at W_t ≥ W the record is
    the one a plan without the bound had; W_t never exceeds W (the day cap)."""
    bound, whole = traffic_plan(), traffic_plan(traffic_windows_per_device_day=1440)
    assert whole.traffic_windows == 0 and whole.traffic_window_bound == 1440
    rec = PlanRecord(bound, 180, "area")
    assert record_from_json(rec.to_json()).plan.traffic_window_bound == 120
    assert rec.hash != PlanRecord(whole, 180, "area").hash
    capped = traffic_plan(windows_per_device_day=60)
    assert capped.traffic_window_bound == 60 and capped.traffic_windows == 0


def test_traffic_sensitivity_is_cells_per_window() -> None:
    """Summed to res 8, a device's L base cells may share one parent: one entry moves by L."""
    t = traffic_plan(cells_per_window=3).traffic_draw
    assert t is not None and t.params.bound == 3 and t.params.entries == 1
    assert t.params.sensitivity == 3


def test_traffic_resolution_need_not_be_released() -> None:
    """The bins are summed from the base cells, so a density release at res 9 alone still starts
    with the default plan funding traffic at res 8; only a resolution finer than the base is refused."""
    only9 = plan_from_settings(load_settings(release_resolutions=(9,)))
    assert only9.resolutions == (9,) and only9.traffic_draw is not None and only9.traffic_draw.res == 8
    assert traffic_plan(traffic_resolution=6).traffic_draw is not None
    with pytest.raises(BudgetError, match="HEXPULSE_TRAFFIC_RESOLUTION 10 is finer than the base") as info:
        traffic_plan(traffic_resolution=10)
    assert "\n" not in str(info.value)
    unfunded = ("cells:0.7", "zones.crowd:0.25")
    assert plan_from_settings(load_settings(budget_plan=unfunded, traffic_resolution=10)).traffic_draw is None


def test_bins_tree_sums_to_an_unreleased_resolution() -> None:
    """Bins at the traffic resolution from the base cells alone equal those of the full tree."""
    area = load_service_area(load_settings())
    full = build_hierarchy(area, (9, 8, 7))
    only = bins_tree(area, 8)
    assert only.resolutions == (9, 8) and np.array_equal(only.cells[1], full.cells[1])
    rng = np.random.default_rng(3)
    base = rng.integers(0, 5, size=(full.sizes[0], 4)).astype(np.int64)
    assert np.array_equal(to_resolution(only, base, 8), to_resolution(full, base, 8))
    assert np.array_equal(to_resolution(bins_tree(area, 7), base, 7), to_resolution(full, base, 7))


def test_plan_without_traffic_is_unchanged() -> None:
    unfunded = ("cells:0.7", "zones.crowd:0.25", "zones.district:0.05")
    plan = plan_from_settings(load_settings(budget_plan=unfunded))
    assert plan.traffic_draw is None and plan.traffic_edges_kmh == ()
    assert "traffic_edges_kmh" not in PlanRecord(plan, 180, "a").document()


def test_unknown_product_still_refused() -> None:
    with pytest.raises(BudgetError, match="'traffic'"):
        plan_from_settings(load_settings(budget_plan=("cells:0.5", "trafic:0.1")))


def test_record_round_trips_with_traffic_and_its_skip() -> None:
    plan = traffic_plan()
    for drawn in (True, False):
        rec = PlanRecord(plan, 180, "area", traffic_drawn=drawn)
        back = record_from_json(rec.to_json())
        assert back.hash == rec.hash and back.plan.traffic_draw == plan.traffic_draw
        assert back.draws_traffic is drawn and back.charge == pytest.approx(rec.charge)
    assert PlanRecord(plan, 180, "area").hash != PlanRecord(plan, 180, "area", traffic_drawn=False).hash


def test_plan_rows_publish_traffic() -> None:
    rows = {r["product"]: r for r in plan_rows(traffic_plan())}
    t = rows["traffic"]
    assert t["share"] == 0.35 and t["rho_per_device_day"] == pytest.approx(0.35, rel=1e-6)
    assert t["sigma"] == pytest.approx(1 / math.sqrt(2 * 0.35 / 120), rel=1e-9)
    assert "7.2–20" in t["what"] and "resolution 8" in t["what"]


def test_ledger_row_for_traffic() -> None:
    plan = traffic_plan()
    w = datetime(2026, 1, 1, 8, 0)
    prints = {(9, "count"): 1, (8, "count"): 2, (7, "count"): 3, (8, "traffic"): 4}
    rows = ledger_rows(plan, 9, w, prints, "r", w, traffic=True)
    (t,) = [r for r in rows if r[3] == "traffic"]
    assert t[2] == 8 and t[5] == 4 and plan.traffic_draw is not None and t[9] == plan.traffic_draw.charge
    assert all(r[3] != "traffic" for r in ledger_rows(plan, 9, w, prints, "r", w))


def test_pre_0011_windows_have_no_bins() -> None:
    assert has_bins(5, 0) and has_bins(0, 0)
    assert not has_bins(0, 3) and not has_bins(2, 1)  # any empty array refuses the window's bins


def test_windows_before_the_moving_rows_have_no_bins() -> None:
    assert has_moving_rows(0, 0) and has_moving_rows(12, 12)
    assert not has_moving_rows(12, 0)  # partials written before migration 0019: no bound possible
    assert not has_moving_rows(12, 11)


def test_measure_and_rows() -> None:
    """Bins summed to the parent and noised once per (cell, bin); rows hold unclipped estimates."""
    plan = traffic_plan(release_resolutions=(9, 8))
    tree = Hierarchy(
        (9, 8),
        (np.array([1, 2, 3], dtype=np.uint64), np.array([100, 200], dtype=np.uint64)),
        (np.array([0, 0, 1]),),
    )
    base = np.array([[1, 0, 0, 2], [0, 3, 0, 0], [0, 0, 4, 0]], dtype=np.int64)
    assert to_resolution(tree, base, 8).tolist() == [[1, 3, 0, 2], [0, 0, 4, 0]]
    a = measure_traffic(plan, tree, base, seeded_keys(7))
    b = measure_traffic(plan, tree, base, seeded_keys(7))
    assert a.noisy.shape == (2, 4) and np.array_equal(a.noisy, b.noisy) and a.prints() == b.prints()
    rows = traffic_rows(datetime(2026, 1, 1), a, plan=5)
    assert [r[2] for r in rows] == [100, 200]
    assert rows[0][3] == [float(x) for x in a.noisy[0]] and rows[0][5] == float(a.noisy[0].sum())
    assert rows[0][4] == a.sigma and rows[0][6] == list(plan.traffic_mids_kmh) and rows[0][7] == 5
    with pytest.raises(ValueError, match="no budget"):
        cells_only = plan_from_settings(load_settings(budget_plan=("cells:1",)))
        measure_traffic(cells_only, tree, base, seeded_keys(7))
