"""Speed from released speed bins and the travel-time-weighted congestion index (pure arithmetic)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from api.congestion import cell_congestion, travel_time_index
from hexpulse.traffic_levels import LEVEL_NAMES
from releases.traffic import bins_speed

MIDS = np.array([13.6, 30.0, 55.0, 95.0])


def test_bins_speed_is_the_weighted_mean_of_the_midpoints() -> None:
    mean, sigma = bins_speed([10.0, 30.0, 60.0, 0.0], MIDS, 0.0)
    assert float(mean) == pytest.approx((10 * 13.6 + 30 * 30 + 60 * 55) / 100)
    assert float(sigma) == 0.0


def test_bins_speed_sigma_matches_the_spread_of_noisy_draws() -> None:
    rng = np.random.default_rng(3)
    exact, sig = np.array([40.0, 120.0, 200.0, 30.0]), 20.0
    mean, sigma = bins_speed(exact, MIDS, sig)
    draws, _ = bins_speed(exact + rng.normal(0, sig, (20_000, 4)), MIDS, sig)
    assert float(np.std(draws)) == pytest.approx(float(sigma), rel=0.05)
    assert float(np.mean(draws)) == pytest.approx(float(mean), abs=0.1)


def test_bins_speed_stays_within_the_bins_speeds() -> None:
    """A negative noisy bin can push Σ mid·b / Σ b past every bin's speed: the mean is cut there."""
    high, _ = bins_speed([-30.0, 5.0, 10.0, 40.0], MIDS, 20.0)  # the ratio alone: 121 km/h
    low, _ = bins_speed([40.0, 10.0, 5.0, -30.0], MIDS, 20.0)
    assert float(high) == 95.0 and float(low) == 13.6


def test_bins_speed_pools_rows_only_when_summed_first_and_refuses_empty_bins() -> None:
    rows = np.array([[1.0, 0, 0, 0], [0, 0, 0, 99.0]])
    per_row, _ = bins_speed(rows, MIDS, 1.0)
    pooled, _ = bins_speed(rows.sum(axis=0), MIDS, math.sqrt(2))
    assert float(pooled) == pytest.approx((13.6 + 99 * 95) / 100)  # not the mean of the rows' means
    assert float(np.mean(per_row)) != pytest.approx(float(pooled))
    empty, empty_sigma = bins_speed([0.4, 0.0, 0.0, 0.0], MIDS, 1.0)
    assert math.isnan(float(empty)) and math.isnan(float(empty_sigma))


def test_travel_time_index_is_one_at_free_flow_and_the_time_ratio_otherwise() -> None:
    quiet = np.array([[0.0, 0, 500, 0], [0, 0, 0, 800]])  # free flow 55 and 95 km/h
    at_free = np.array([[0.0, 0, 100, 0], [0, 0, 0, 300]])
    index, sigma = travel_time_index(at_free, quiet, MIDS, 0.0, 0.0)
    assert index == pytest.approx(1.0) and sigma == 0.0
    slow = np.array([[0.0, 100, 0, 0], [0, 0, 300, 0]])  # everyone one bin slower
    index, _ = travel_time_index(slow, quiet, MIDS, 0.0, 0.0)
    now, free = 100 / 30 + 300 / 55, 100 / 55 + 300 / 95
    assert index == pytest.approx(now / free)


def test_travel_time_index_sigma_matches_noisy_draws_and_skips_segments_without_free_flow() -> None:
    rng = np.random.default_rng(5)
    quiet = np.array([[0.0, 100, 3000, 200], [0, 50, 400, 4000], [0, 0, 0, 0]])
    now = np.array([[80.0, 150, 60, 0], [10, 60, 200, 90], [500, 0, 0, 0]])
    index, sigma = travel_time_index(now, quiet, MIDS, 15.0, 15.0 * 10)
    without_third, _ = travel_time_index(now[:2], quiet[:2], MIDS, 15.0, 150.0)
    assert index == pytest.approx(without_third)
    # The delta method is first order: quiet noise small against the quiet bins, as pooled hours are.
    index, sigma = travel_time_index(now[:2], quiet[:2], MIDS, 15.0, 50.0)
    noisy_quiet = quiet[:2] + rng.normal(0, 50, (4000, 2, 4))
    noisy_now = now[:2] + rng.normal(0, 15, (4000, 2, 4))
    pairs = zip(noisy_now, noisy_quiet, strict=True)
    draws = [travel_time_index(b, q, MIDS, 15.0, 50.0)[0] for b, q in pairs]
    assert float(np.std(draws)) == pytest.approx(sigma, rel=0.1)
    assert math.isnan(travel_time_index(now, np.zeros_like(quiet), MIDS, 1.0, 1.0)[0])


def test_travel_time_index_cuts_a_noisy_free_flow_pace_to_the_bins_paces() -> None:
    # A thin quiet pool whose low bin drew far below zero: its raw pace Σ q/mid ÷ Σ q is negative,
    # which turned the whole series' free time negative (index NaN in every window of a city run).
    quiet = np.array([[0.0, 0, 500, 0], [-300.0, 0, 0, 302]])
    assert (quiet[1] @ (1 / np.array(MIDS))) < 0
    now = np.array([[0.0, 100, 0, 0], [0, 0, 0, 300]])
    index, sigma = travel_time_index(now, quiet, MIDS, 15.0, 50.0)
    # The second segment's free pace is cut to its fastest bin's (1/95 h/km): the ratio of times.
    expected = (100 / 30 + 300 / 95) / (100 / 55 + 300 / 95)
    assert index == pytest.approx(expected) and math.isfinite(sigma)


def test_travel_time_index_takes_one_sigma_per_segment() -> None:
    quiet = np.array([[0.0, 100, 3000, 200], [0, 50, 400, 4000], [0, 0, 0, 0]])
    now = np.array([[80.0, 150, 60, 0], [10, 60, 200, 90], [500, 0, 0, 0]])
    same = travel_time_index(now, quiet, MIDS, 15.0, 50.0)
    assert travel_time_index(now, quiet, MIDS, [15.0] * 3, [50.0] * 3) == pytest.approx(same)
    # The segment without free flow is dropped with its σ, whatever that σ is.
    assert travel_time_index(now, quiet, MIDS, [15.0, 15.0, 1e6], [50.0, 50.0, 1e6]) == pytest.approx(same)
    assert travel_time_index(now, quiet, MIDS, [30.0, 15.0, 15.0], 50.0)[1] > same[1]


def test_cell_congestion_index_sigma_and_missing_parts() -> None:
    rng = np.random.default_rng(9)
    now, quiet = np.array([120.0, 200, 80, 0]), np.array([0.0, 200, 3000, 800])
    c = cell_congestion(now, 15.0, quiet, 60.0, MIDS)
    assert c.speed_kmh is not None and c.free_flow_kmh is not None and c.index is not None
    assert c.index == pytest.approx(c.free_flow_kmh / c.speed_kmh)
    noisy = [cell_congestion(now + rng.normal(0, 15, 4), 15.0, quiet + rng.normal(0, 60, 4), 60.0, MIDS).index
             for _ in range(4000)]  # fmt: skip
    assert float(np.std([x for x in noisy if x is not None])) == pytest.approx(c.index_sigma, rel=0.1)
    assert c.level is not None and c.level_range is not None
    lo, hi = (LEVEL_NAMES.index(x) for x in c.level_range)
    assert lo <= LEVEL_NAMES.index(c.level) <= hi
    no_ref = cell_congestion(now, 15.0, None, 0.0, MIDS)
    assert no_ref.speed_kmh == c.speed_kmh and no_ref.free_flow_kmh is None and no_ref.level is None
    empty = cell_congestion(np.zeros(4), 15.0, quiet, 60.0, MIDS)
    assert empty.speed_kmh is None and empty.index is None and empty.free_flow_kmh == c.free_flow_kmh
