"""The budget plan's ``traffic.<set>`` products (issue #12): parsing, the draw's bound and σ, the
window's charge, the stored record, the ledger row and what ``/v1/privacy`` publishes."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pytest

from hexpulse.settings import load_settings
from privacy.release.budget import ReleasePlan, plan_from_settings, plan_rows
from privacy.release.exceptions import BudgetError
from privacy.release.ledger import ledger_rows
from privacy.release.plans import PlanRecord, record_from_json
from privacy.release.shares import funded_sets, parse_plan

PLAN = ("cells:0.45", "traffic:0.10", "traffic.corridor:0.15", "zones.crowd:0.20", "zones.district:0.05")


def corridor_plan(plan: tuple[str, ...] = PLAN, **kw: Any) -> ReleasePlan:
    return plan_from_settings(load_settings(budget_plan=plan, release_metrics=("count",), **kw))


def test_parse_accepts_traffic_of_a_set_and_refuses_bad_names() -> None:
    assert parse_plan(PLAN)["traffic.corridor"] == 0.15
    for bad in ("traffic.", "traffic.Corridor", "traffic.a-b", "traffic.corridor.x"):
        with pytest.raises(BudgetError, match="'traffic.<set>'") as info:
            parse_plan(("cells:0.5", f"{bad}:0.1"))
        assert "\n" not in str(info.value)
    with pytest.raises(BudgetError, match="more than the whole"):
        parse_plan(("cells:0.9", "traffic.corridor:0.2"))


def test_a_set_funded_by_its_traffic_alone_is_registered_and_measured() -> None:
    """``hexpulse zones load`` and the API register the sets :func:`funded_sets` names."""
    assert funded_sets(PLAN) == ("corridor", "crowd", "district")
    assert funded_sets(("cells:0.5", "zones.corridor:0.1", "traffic.corridor:0.1")) == ("corridor",)
    assert funded_sets(("cells:0.5", "traffic.corridor:0")) == ()
    plan = corridor_plan()
    assert plan.measures_set("corridor") and plan.zone_draw("corridor") is None
    assert not plan.measures_set("scenic")


def test_the_draw_is_bound_l_over_one_entry_at_the_base() -> None:
    """σ of one (zone, bin) = L / √(2 ρ_share,window), ρ_share,window = 0.15 / W_t (120: a
    device-day counts in its first W_t moving windows)."""
    plan = corridor_plan()
    d = plan.zone_traffic_draw("corridor")
    assert d is not None and d.metric == "traffic.corridor" and d.res == plan.base_resolution == 9
    assert d.params.bound == 1 and d.params.entries == 1
    assert d.params.sigma == pytest.approx(1 / math.sqrt(2 * 0.15 / 120), rel=1e-9)
    assert plan.rho_per_device_day == pytest.approx(0.95, rel=1e-6)
    l3 = corridor_plan(cells_per_window=3).zone_traffic_draw("corridor")
    assert l3 is not None and l3.params.sensitivity == 3 and l3.params.entries == 1
    assert l3.params.sigma == pytest.approx(3 / math.sqrt(2 * 0.15 / 120), rel=1e-9)


def test_a_window_is_charged_for_the_corridors_only_with_corridors_and_bins() -> None:
    plan = corridor_plan()
    d, t = plan.zone_traffic_draw("corridor"), plan.traffic_draw
    assert d is not None and t is not None
    with_all = plan.window_charge(("corridor", "crowd"))
    assert with_all - plan.window_charge(("crowd",)) == pytest.approx(d.charge)
    no_bins = plan.window_charge(("corridor", "crowd"), traffic=False)
    assert with_all - no_bins == pytest.approx(d.charge + t.charge)
    assert plan.charge_per_window == pytest.approx(plan.window_charge(("corridor", "crowd", "district")))


def test_corridors_without_the_cell_bins_still_have_edges() -> None:
    plan = corridor_plan(("cells:0.8", "traffic.corridor:0.2"))
    assert plan.traffic_draw is None and plan.funds_bins
    assert plan.traffic_edges_kmh == (7.2, 20.0, 35.0, 50.0, 65.0, 80.0, 180.0)
    assert PlanRecord(plan, 180, "a").document()["traffic_edges_kmh"] == list(plan.traffic_edges_kmh)
    # Only the speed bins of the cells are bounded by the traffic resolution.
    assert corridor_plan(("cells:0.8", "traffic.corridor:0.2"), traffic_resolution=10).funds_bins


def test_plans_without_corridors_keep_their_record() -> None:
    """A plan that funds no ``traffic.<set>`` has the document (and hash) it had before."""
    old = corridor_plan(("cells:0.35", "traffic:0.35", "zones.crowd:0.25", "zones.district:0.05"))
    doc = PlanRecord(old, 180, "a").document()
    assert not old.zone_traffic_draws and all(not d["metric"].startswith("traffic.") for d in doc["draws"])
    bare = corridor_plan(("cells:1",))
    assert not bare.funds_bins and "traffic_edges_kmh" not in PlanRecord(bare, 180, "a").document()


def test_record_round_trips_the_corridor_draw() -> None:
    plan = corridor_plan()
    for drawn in (True, False):
        rec = PlanRecord(plan, 180, "area", traffic_drawn=drawn)
        back = record_from_json(rec.to_json())
        assert back.hash == rec.hash and back.plan.zone_traffic_draws == plan.zone_traffic_draws
        assert back.plan.draws == plan.draws  # the corridor draw is not read as a cells draw
        assert back.draws_bins is drawn and back.charge == pytest.approx(rec.charge)
    only = corridor_plan(("cells:0.8", "traffic.corridor:0.2"))
    rec = PlanRecord(only, 180, "area")
    assert rec.draws_bins and not rec.draws_traffic
    assert record_from_json(rec.to_json()).plan.traffic_edges_kmh == only.traffic_edges_kmh


def test_ledger_row_for_the_corridor_draw() -> None:
    plan = corridor_plan()
    w = datetime(2026, 1, 1, 8, 0)
    prints = {(9, "count"): 1, (8, "count"): 2, (7, "count"): 3, (8, "traffic"): 4}
    prints[(9, "traffic.corridor")] = 5
    rows = ledger_rows(plan, 9, w, prints, "r", w, traffic=True, zone_traffic_sets=["corridor"])
    (c,) = [r for r in rows if r[3] == "traffic.corridor"]
    d = plan.zone_traffic_draw("corridor")
    assert d is not None and c[2] == 9 and c[5] == 5 and c[9] == d.charge and c[7] == d.params.sensitivity
    assert all(r[3] != "traffic.corridor" for r in ledger_rows(plan, 9, w, prints, "r", w, traffic=True))
    with pytest.raises(ValueError, match="traffic.scenic"):
        ledger_rows(plan, 9, w, prints, "r", w, zone_traffic_sets=["scenic"])


def test_plan_rows_publish_the_corridor_draw() -> None:
    rows = {r["product"]: r for r in plan_rows(corridor_plan())}
    c = rows["traffic.corridor"]
    assert c["per"] == "window" and c["share"] == 0.15
    assert c["rho_per_device_day"] == pytest.approx(0.15, rel=1e-6)
    assert c["sigma"] == pytest.approx(1 / math.sqrt(2 * 0.15 / 120), rel=1e-9)
    assert "'corridor'" in c["what"] and "7.2–20" in c["what"] and "zone" in c["what"]
    assert rows["traffic"]["sigma"] == pytest.approx(1 / math.sqrt(2 * 0.10 / 120), rel=1e-9)
