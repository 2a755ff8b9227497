"""The neighbour test of the traffic products' per-device-day window bound (issue #12), over the
real ingest, aggregate and sink code (the streams, crashes, replays and zombie owner of
tests/unit/aggregate/test_neighbour.py): adding or removing one device changes the speed bins the
releaser draws from (the moving rows its bound keeps, laid on the base cells) in at most W_t
windows of the device-day, each by at most L devices in L1, so by at most L in L2 at any
resolution or zone set (the draws' bound, privacy/release/window_draws.py). And the moving rows
the sink writes are the partials' speed bins: without the bound they sum to the same matrix."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings
from privacy.release.budget import plan_from_settings
from privacy.release.traffic_bound import MovingRows, bins_of_rows
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

W_T = 2
PLAN = ("cells:0.45", "traffic:0.10", "traffic.corridor:0.15", "zones.crowd:0.20", "zones.district:0.05")


def bound_settings(cells: int) -> Settings:
    s = make_settings(cells, wpd=1440)  # every window due: only the traffic bound limits windows
    return s.model_copy(update={"budget_plan": PLAN, "traffic_windows_per_device_day": W_T})


def kept(s: Settings, moving: dict[int, MovingRows]) -> dict[int, np.ndarray]:
    plan = plan_from_settings(s)
    assert plan.traffic_window_bound == W_T
    k = len(plan.traffic_edges_kmh) - 1
    return bounded_bins(moving, load_service_area(s).cells, k, plan.traffic_window_bound, s.window_s)


def assert_bounded(s: Settings, a: dict[int, MovingRows], b: dict[int, MovingRows]) -> None:
    ka, kb = kept(s, a), kept(s, b)
    changed = []
    for w in ka.keys() | kb.keys():
        zero = np.zeros_like(ka.get(w, kb.get(w)))
        l1 = int(np.abs(ka.get(w, zero) - kb.get(w, zero)).sum())
        assert l1 <= s.cells_per_window, (w, l1)
        if l1:
            changed.append(w)
    assert len(changed) <= W_T, changed


@st.composite
def driver(draw: st.DrawFn, name: str = "mallory") -> list[Upload]:
    """A device driving through 3–9 consecutive windows (a ping or two each, at driving speed):
    more moving windows than W_t, so the bound must bind for the property to hold."""
    t = T0 + draw(st.integers(0, 120_000))
    out = []
    for k in range(draw(st.integers(3, 9))):
        at = t + 60_000 * k
        pings = [ping(at - 900 * i, (k + i) % 7, draw(st.sampled_from([None, 12.0, 30.0]))) for i in range(2)]
        out.append(Upload(at, name, message(name, pings)))
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    honest_devices(4),
    st.tuples(adversary(), driver()).map(lambda ab: ab[0] + ab[1]),
    schedules(),
    st.sampled_from([1, 3]),
)
def test_one_device_moves_the_bounded_bins_in_at_most_w_t_windows(
    honest: tuple[list[Upload], ...], extra: list[Upload], schedule: Schedule, cells: int
) -> None:
    s = bound_settings(cells)
    ing = ingestor_for(s)
    d = [u for dev in honest for u in dev]
    base_sink = consume(place(d, PARTITIONS), s, ing, schedule)
    base = base_sink.counted_moving()
    assert_bounded(s, base, consume(place(d + extra, PARTITIONS), s, ing, schedule).counted_moving())
    gone = honest[0][0].device
    minus = consume(place([u for u in d if u.device != gone], PARTITIONS), s, ing, schedule).counted_moving()
    assert_bounded(s, base, minus)
    # The moving rows are the partials' speed bins, through every crash and replay.
    cells_ = load_service_area(s).cells
    k = len(plan_from_settings(s).traffic_edges_kmh) - 1
    partial_bins = base_sink.counted_bins()
    for w, rows in base.items():
        m = bins_of_rows(cells_, rows, k)
        for i in np.flatnonzero(m.sum(axis=1)):
            assert tuple(m[i]) == partial_bins[(w * 1000, int(cells_[i]))]
    assert sum(int(bins_of_rows(cells_, r, k).sum()) for r in base.values()) == sum(
        sum(v) for v in partial_bins.values())  # fmt: skip


def test_the_bound_binds_a_device_moving_in_four_windows_counts_in_two() -> None:
    s = bound_settings(cells=1)
    ing = ingestor_for(s)
    t = T0 + 10_000
    ups = [Upload(t + 60_000 * k, "driver", message("driver", [ping(t + 60_000 * k - 500, k, 12.0)]))
           for k in range(4)]  # fmt: skip
    moving = consume(place(ups, PARTITIONS), s, ing, Schedule(poll_records=1)).counted_moving()
    assert len(moving) == 4  # moving in four windows
    kept_ = kept(s, moving)
    assert [int(kept_[w].sum()) for w in sorted(kept_)] == [1, 1, 0, 0]
