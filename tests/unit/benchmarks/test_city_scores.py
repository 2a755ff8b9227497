"""The scoring rules of benchmarks/bench_city.py (benchmarks/city_scores.py): what counts as a
hit, a miss and an unscored crossing, so the city figures mean what BENCHMARKS.md says."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from city_scores import (  # noqa: E402
    AlertScore,
    TrafficScore,
    corridors_of,
    margin_ok,
    rule_for,
    true_index,
    truth_events,
)

RAMP = [0.0, 100.0, 300.0, 600.0, 1000.0, 1000.0, 1000.0, 600.0, 100.0, 0.0, 0.0, 0.0]


def test_rule_levels_sit_below_the_peak_with_margin() -> None:
    rule = rule_for(RAMP)
    assert [lv.threshold for lv in rule.levels] == [400.0, 800.0]
    assert all(lv.clear == pytest.approx(0.8 * lv.threshold) for lv in rule.levels)
    assert max(RAMP) >= 1.1 * rule.levels[-1].threshold


def test_truth_events_and_their_margin() -> None:
    rule = rule_for(RAMP)
    events = truth_events(rule, RAMP)
    # Up to warning, then critical (min_windows 2); down through warning (600 holds it) to normal.
    assert [(b, a) for _, b, a in events] == [(0, 1), (1, 2), (2, 1), (1, 0)]
    assert all(margin_ok(rule, RAMP, e) for e in events)
    flat = [0.0, 0.0, 420.0, 420.0, 420.0, 0.0]  # 5 % over the warning threshold: not a clear crossing
    assert not margin_ok(rule, flat, (3, 0, 1))


def test_alert_matching_within_min_windows() -> None:
    rule = rule_for(RAMP)
    truth = truth_events(rule, RAMP)
    score = AlertScore()
    late = (truth[0][0] + 2, 0, 1)  # two windows late: still a match (min_windows = 2)
    wrong = (0, 0, 2)  # a jump that never happened
    score.add("z", rule, RAMP, [late, truth[1], wrong])
    s = score.summary()
    assert s["alert_precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["alert_recall"] == pytest.approx(2 / 4)


def test_true_index_is_travel_time_weighted() -> None:
    rows = [[0, 1, 100, 30.0, 60.0, "heavy"], [0, 2, 300, 60.0, 60.0, "free"],
            [0, 3, 50, 5.0, 60.0, "severe"]]  # fmt: skip
    # cells 1 and 2: time now 100/30 + 300/60, at free flow 400/60.
    assert true_index(rows, {1, 2}) == pytest.approx((100 / 30 + 300 / 60) / (400 / 60))
    assert true_index(rows, set()) is None


def test_traffic_score_counts_a_missing_level_as_wrong() -> None:
    score = TrafficScore()
    truth = [[0, 1, 150, 40.0, 60.0, "light"], [0, 2, 150, 50.0, 60.0, "free"],
             [0, 3, 99, 10.0, 60.0, "severe"]]  # fmt: skip
    served = {1: {"mean_speed_kmh": 44.0, "level": "light"}, 2: {"mean_speed_kmh": None, "level": None}}
    score.cells.add(truth, served)
    s = score.summary()
    assert s["cells_scored"] == 2  # the cell under 100 moving devices is not scored
    assert s["cells_traffic_speed_mae_kmh"] == 4.0
    assert s["cells_congestion_level_exact"] == 0.5
    assert s["cells_without_speed"] == 1
    assert math.isnan(score.cells.speed_err[1])
    assert s["corridors_scored"] == 0 and s["traffic_speed_mae_kmh"] is None  # no corridor served


def test_corridors_are_the_headline_row_and_cells_the_second() -> None:
    score = TrafficScore()
    truth = [[0, "ring-1", 400, 30.0, 60.0, "heavy"], [0, "ring-2", 300, 58.0, 60.0, "free"],
             [0, "ring-3", 20, 5.0, 60.0, "severe"]]  # fmt: skip
    served = {"ring-1": {"mean_speed_kmh": 33.0, "level": "moderate"},
              "ring-2": {"mean_speed_kmh": 57.0, "level": "free"}}  # fmt: skip
    score.corridors.add(truth, served)
    score.add_index("corridors", 1.1, 1.0)
    score.add_index("cells", 2.0, 1.0)
    s = score.summary()
    assert s["corridors_scored"] == 2 and s["traffic_speed_mae_kmh"] == 2.0
    assert s["congestion_level_exact"] == 0.5 and s["congestion_level_within_one"] == 1.0
    assert s["city_index_rel_err"] == pytest.approx(0.1)
    assert s["cells_city_index_rel_err"] == pytest.approx(1.0)
    rows = score.rows()
    assert rows["corridors"]["level_confusion"] == {"heavy": {"moderate": 1}, "free": {"free": 1}}
    assert true_index(truth, {"ring-1", "ring-2"}) == pytest.approx((400 / 30 + 300 / 58) / (700 / 60))


def test_corridors_of_keeps_the_corridor_set() -> None:
    doc = {"corridors": [{"zone_id": "a-1", "zone_set": "corridor"},
                         {"zone_id": "d", "zone_set": "district"}]}  # fmt: skip
    assert list(corridors_of(doc)) == ["a-1"]
    assert corridors_of({"cells": []}) == {}
