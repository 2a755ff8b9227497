"""The neighbour test for corridors measured directly (``traffic.<set>``, issue #12): over the real
ingest and aggregate code (the streams and consume loop of tests/unit/aggregate/test_neighbour.py),
adding or removing one device moves a zone set's exact (zones × speed bins) matrix — what the
releaser builds from the moving rows its per-device-day bound keeps
(:func:`privacy.release.traffic_bound.bound_window`, :func:`~privacy.release.traffic_bound.bins_of_rows`,
:func:`privacy.release.zones.zone_totals`) — by at most the plan's ``traffic.<set>`` sensitivity L
in L2, given corridors disjoint within their set. (How many windows it moves: the bound's own test,
test_traffic_bound_neighbour.py.)"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings
from hexpulse.zones import Zone
from privacy.release.budget import ReleasePlan, plan_from_settings
from privacy.release.traffic_bound import MovingRows
from privacy.release.zones import zone_totals
from tests.support.neighbour import Schedule, Upload, bounded_bins, consume, message, ping, place
from tests.unit.aggregate.test_neighbour import (
    PARTITIONS,
    T0,
    adversary,
    honest_devices,
    ingestor_for,
    make_settings,
    schedules,
)
from tests.unit.privacy.release.test_zone_neighbour import zone

PLAN = ("cells:0.45", "traffic:0.10", "traffic.corridor:0.15", "zones.crowd:0.20", "zones.district:0.05")
CORRIDORS = [zone("west", "corridor", [0, 1, 2]), zone("east", "corridor", [3, 4]),
             zone("north", "corridor", [6])]  # fmt: skip


def corridor_settings(cells: int, wpd: int | None = None) -> Settings:
    s = make_settings(cells) if wpd is None else make_settings(cells, wpd=wpd)
    return s.model_copy(update={"budget_plan": PLAN})


Moving = dict[int, MovingRows]


def matrices(s: Settings, plan: ReleasePlan, moving: Moving, zones: list[Zone]) -> dict[int, np.ndarray]:
    """Per window: the set's exact (zones × bins) matrix the releaser draws from these rows."""
    base = load_service_area(s).cells
    k = len(plan.traffic_edges_kmh) - 1
    kept = bounded_bins(moving, base, k, plan.traffic_window_bound, s.window_s)
    return {w: zone_totals(zones, base, m) for w, m in kept.items()}


def worst_change(s: Settings, a: Moving, b: Moving, zones: list[Zone]) -> float:
    """The largest L2 change of the set's matrix over windows."""
    plan = plan_from_settings(s)
    ma, mb = matrices(s, plan, a, zones), matrices(s, plan, b, zones)
    zero = np.zeros((len(zones), len(plan.traffic_edges_kmh) - 1), dtype=np.int64)
    worst = 0.0
    for w in ma.keys() | mb.keys():
        d = (ma.get(w, zero) - mb.get(w, zero)).astype(np.float64)
        worst = max(worst, math.sqrt(float((d**2).sum())))
    return worst


def assert_within_draw_bound(s: Settings, a: Moving, b: Moving) -> None:
    draw = plan_from_settings(s).zone_traffic_draw("corridor")
    assert draw is not None
    change = worst_change(s, a, b, CORRIDORS)
    assert change <= draw.params.sensitivity + 1e-9, (change, draw.params.sensitivity)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    honest_devices(4),
    adversary(),
    schedules(),
    st.sampled_from([1, 3]),
)
def test_one_device_moves_the_corridor_matrix_by_at_most_its_bound(
    honest: tuple[list[Upload], ...], extra: list[Upload], schedule: Schedule, cells: int
) -> None:
    s = corridor_settings(cells)
    ing = ingestor_for(s)
    d = [u for dev in honest for u in dev]
    base = consume(place(d, PARTITIONS), s, ing, schedule).counted_moving()
    plus = consume(place(d + extra, PARTITIONS), s, ing, schedule).counted_moving()
    assert_within_draw_bound(s, base, plus)
    gone = honest[0][0].device
    minus = consume(place([u for u in d if u.device != gone], PARTITIONS), s, ing, schedule).counted_moving()
    assert_within_draw_bound(s, base, minus)


def test_the_bound_is_tight_all_l_cells_in_one_corridor() -> None:
    """A moving device whose L = 3 cells all lie in one corridor moves one (corridor, bin) entry
    by exactly 3 = L: the draw's bound is the worst case (√L would be too small)."""
    s = corridor_settings(cells=3, wpd=1440)  # due in every window
    ing = ingestor_for(s)
    t = T0 + 10_000
    pings = [ping(t - 100 * k, k, 12.0) for k in (0, 1, 2)]
    one = consume(place([Upload(t, "mallory", message("mallory", pings))], PARTITIONS), s, ing,
                  Schedule(poll_records=4)).counted_moving()  # fmt: skip
    draw = plan_from_settings(s).zone_traffic_draw("corridor")
    assert draw is not None and worst_change(s, one, {}, CORRIDORS) == 3.0 == draw.params.sensitivity
    (m,) = matrices(s, plan_from_settings(s), one, CORRIDORS).values()
    assert int(m.sum()) == 3 and int(m.max()) == 3  # one entry: west corridor, one speed bin
