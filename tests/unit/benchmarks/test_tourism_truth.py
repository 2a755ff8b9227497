"""The ground truth of benchmarks/bench_tourism.py (benchmarks/tourism_truth.py): a visitor per
pseudonym-day, the 00:00 UTC double count, the K bound and the dwell bins, so the tourism figures
mean what BENCHMARKS.md says."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from tourism_truth import coverage, day_truth, median_rel_err  # noqa: E402

TZ = "Asia/Shanghai"
DAY = date(2026, 11, 30)
START = 1_764_432_000  # 2026-11-29T16:00:00Z = 2026-11-30 00:00 in Shanghai
END = START + 86_400
UTC_MIDNIGHT = START + 8 * 3600  # 08:00 local


def _rows(*visits: tuple[int, int, list[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(device, area, window starts) → the truth's column arrays."""
    win = np.array([w for _, _, ws in visits for w in ws], np.int64)
    area = np.array([a for _, a, ws in visits for _ in ws], np.int64)
    dev = np.array([d for d, _, ws in visits for _ in ws], np.int64)
    return win, area, dev


def _truth(visits: list[tuple[int, int, list[int]]], k: int = 3, tourist: list[bool] | None = None):  # noqa: ANN202
    win, area, dev = _rows(*visits)
    kinds = np.array(tourist if tourist is not None else [True] * 8)
    return day_truth(win, area, dev, (win, area, dev), 2, (START, END), TZ, k, 60, kinds)


def test_a_device_across_00_utc_is_two_visitors_each_with_its_own_dwell() -> None:
    before = [UTC_MIDNIGHT - 60 * i for i in range(1, 21)]  # 20 min before 08:00 local
    after = [UTC_MIDNIGHT + 60 * i for i in range(5)]  # 5 min after
    t = _truth([(0, 0, before + after)], tourist=[False] * 8)[0]
    assert (t.zone_devices, t.visitors, t.double_counted, t.double_counted_tourists) == (1, 2, 1, 0)
    assert t.dwell == (1, 1, 0, 0)


def test_only_the_local_day_counts_and_dwell_bins_follow_the_edges() -> None:
    t = _truth([
        (1, 0, [START - 60, END]),  # the local days before and after
        (2, 0, [START + 3600 + 60 * i for i in range(15)]),  # 15 min: 15–60 min
        (3, 0, [START + 60 * i for i in range(180)]),  # 3 h: ≥ 3 h
        (4, 0, [START + 36_000 + 60 * i for i in range(179)]),  # 2 h 59 min: 1–3 h
    ])[0]  # fmt: skip
    assert (t.visitors, t.zone_devices, t.double_counted) == (3, 3, 0)
    assert t.dwell == (0, 1, 1, 1)


def test_k_keeps_each_pseudonym_days_first_pairs() -> None:
    late = UTC_MIDNIGHT + 7200
    got = _truth([(5, 1, [late]), (5, 0, [late + 60])], k=1)
    assert (got[1].visitors, got[1].dropped_by_k) == (1, 0)  # area 1 came first
    assert (got[0].visitors, got[0].dropped_by_k, got[0].zone_devices) == (0, 1, 1)


def test_coverage_and_median_rel_err() -> None:
    est = np.array([[100.0, 90.0], [103.0, 80.0]])
    truth = np.array([[100.0, 100.0]])
    assert coverage(est, 2.0, truth, 1.96) == 0.5  # errors 0 and 3 lie within 3.92; 10 and 20 do not
    assert median_rel_err(est, truth) == np.median([0.0, 0.1, 0.03, 0.2])
