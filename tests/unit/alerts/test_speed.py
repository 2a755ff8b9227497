"""``traffic_speed``: levels that fire below their thresholds (hysteresis reversed), a zone's speed
pooled from its cells' released bins with the delta-method σ (checked against a Monte Carlo of the
bins), and no reading when the bins cannot tell a speed."""

from __future__ import annotations

import h3
import numpy as np
import pytest

from alerts.levels import Level, Rule, State, step
from alerts.speed import covering_cells, decisive, zone_speed
from alerts.subscriptions import check
from releases.traffic import CellBins, bins_speed

MIDS = (13.6, 30.0, 55.0, 95.0)
SPEED = Rule((Level("slow", 30.0, 36.0), Level("jam", 15.0, 18.0)), min_windows=2, below=True)


def run(rule: Rule, values: list[float], sigma: float = 0.0) -> list[tuple[int, str]]:
    state, out = State(), []
    for i, v in enumerate(values):
        state, change = step(rule, state, v, sigma)
        if change:
            out.append((i, change.kind + ":" + str(change.after)))
    return out


def test_speed_levels_fire_below_and_clear_above_in_order() -> None:
    values = [50, 25, 24, 10, 9, 9, 20, 20, 40, 41, 41]
    assert run(SPEED, values) == [(2, "raised:1"), (4, "raised:2"), (7, "lowered:1"), (9, "cleared:0")]


def test_speed_hysteresis_keeps_the_level_between_threshold_and_clear() -> None:
    assert run(SPEED, [25, 25, 33, 33, 35, 35]) == [(1, "raised:1")]  # 33–35 is under clear 36
    assert run(SPEED, [25, 25, 37, 37]) == [(1, "raised:1"), (3, "cleared:0")]


def test_speed_confidence_is_the_probability_of_being_below() -> None:
    strict = Rule(SPEED.levels, min_windows=1, confidence=0.95, below=True)
    assert run(strict, [27.0], sigma=2.0) == []  # P(true < 30) ≈ 0.93
    assert run(strict, [26.0], sigma=2.0) == [(0, "raised:1")]  # ≈ 0.977
    assert strict.beyond(30.0, 2.0, 30.0) == pytest.approx(0.5)
    assert strict.beyond(26.08, 2.0, 30.0) == pytest.approx(0.975, abs=1e-3)


@pytest.mark.parametrize(
    ("levels", "msg"),
    [
        ((Level("slow", 15, 18), Level("jam", 30, 36)), "descending"),
        ((Level("slow", 30, 25),), "clear must be above"),
        ((Level("slow", 30, 30),), "clear must be above"),
        ((Level("slow", 0, 5),), "positive"),
    ],
)
def test_bad_speed_rules_are_refused(levels: tuple[Level, ...], msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        Rule(levels, below=True).check()


def test_a_subscription_metric_and_its_rule_direction_must_agree() -> None:
    with pytest.raises(ValueError, match="below their thresholds"):
        check("road", "traffic_speed", 1.0, Rule(SPEED.levels), "", ())
    with pytest.raises(ValueError, match="above their thresholds"):
        check("gates", "crowd_count", 1.0, SPEED, "", ())
    with pytest.raises(ValueError, match="crowd metrics only"):
        check("road", "traffic_speed", 2.5, SPEED, "", ())
    check("road", "traffic_speed", 1.0, SPEED, "", ())


def cells(n: int) -> list[int]:
    base = h3.latlng_to_cell(23.13, 113.32, 8)
    return sorted(h3.str_to_int(c) for c in h3.grid_disk(base, 1))[:n]


def test_zone_speed_pools_cells_before_dividing_and_its_sigma_matches_a_monte_carlo() -> None:
    exact = np.array([[4.0, 10.0, 30.0, 6.0], [20.0, 15.0, 5.0, 0.0], [1.0, 2.0, 12.0, 9.0]])
    sig = np.array([2.0, 3.0, 1.5])  # each cell's bins drawn with their own σ
    ids = cells(3)
    window = {c: CellBins(tuple(b), float(s), MIDS, 1) for c, b, s in zip(ids, exact, sig, strict=True)}
    got = zone_speed(window, ids)
    assert got is not None and got.cells == 3 and got.moving == pytest.approx(exact.sum())
    total = exact.sum(axis=0)
    assert got.speed_kmh == pytest.approx(float(total @ MIDS) / total.sum())
    # Monte Carlo: draw every cell's bins independently, pool, divide.
    rng = np.random.default_rng(5)
    draws = exact[None] + rng.normal(0.0, 1.0, (40_000, 3, 4)) * sig[None, :, None]
    speeds, _ = bins_speed(draws.sum(axis=1), MIDS, 0.0)
    assert got.sigma_kmh == pytest.approx(float(np.std(speeds)), rel=0.03)
    assert float(np.mean(speeds)) == pytest.approx(got.speed_kmh, abs=3 * got.sigma_kmh / 200)


def test_no_reading_without_bins_or_moving_devices_or_when_too_noisy() -> None:
    ids = cells(2)
    assert zone_speed({}, ids) is None
    assert zone_speed({ids[0]: CellBins((0.3, 0.0, 0.2, 0.0), 1.0, MIDS, 1)}, ids) is None  # < 1 device
    few = zone_speed({ids[0]: CellBins((2.0, 1.0, 0.0, 0.0), 3.0, MIDS, 1)}, ids)
    assert few is not None and not decisive(SPEED, few.sigma_kmh)  # σ well above the 3 km/h gap
    many = zone_speed({ids[0]: CellBins((200.0, 100.0, 50.0, 10.0), 3.0, MIDS, 1)}, ids)
    assert many is not None and decisive(SPEED, many.sigma_kmh)


def test_covering_cells_are_the_parents_of_the_zone_cells() -> None:
    parent = h3.latlng_to_cell(23.13, 113.32, 8)
    children = [h3.str_to_int(c) for c in h3.cell_to_children(parent, 9)]
    assert covering_cells(children, 8) == (h3.str_to_int(parent),)
