"""The curve benchmarks/consumer_memory.py reports: slopes per hour of event time, warm-up left out."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from consumer_memory import curve  # noqa: E402

T0 = 1_796_000_000_000


def _rows(rss: list[float]) -> list[dict[str, object]]:
    return [
        {"sample": "window", "n": i + 1, "horizon_ms": T0 + i * 60_000, "rss_mb": m, "gc_objects": 100}
        for i, m in enumerate(rss)
    ]


def test_a_steady_rise_is_measured_per_event_hour_after_warm_up() -> None:
    # 10 warm-up windows at a level of their own, then +1 MB per window = +60 MB per event hour.
    rows = _rows([50.0] * 10 + [100.0 + i for i in range(40)])
    got = curve(rows, warmup_windows=10)
    assert got["slope_mb_per_event_h"] == pytest.approx(60.0)
    assert got["slope_first_half"] == pytest.approx(60.0)
    assert got["slope_second_half"] == pytest.approx(60.0)
    assert (got["rss_after_warmup_mb"], got["rss_last_mb"], got["rss_peak_mb"]) == (100.0, 139.0, 139.0)


def test_a_level_off_shows_as_a_flat_second_half() -> None:
    rows = _rows([50.0] * 10 + [100.0 + i for i in range(20)] + [120.0] * 20)
    got = curve(rows, warmup_windows=10)
    assert got["slope_first_half"] == pytest.approx(60.0)
    assert got["slope_second_half"] == pytest.approx(0.0, abs=1e-9)


def test_trims_and_other_lines_are_reported_apart() -> None:
    rows = _rows([100.0] * 12)
    rows[5]["rss_trimmed_mb"] = 90.0
    rows.append({"sample": "growth", "n": 12, "size_diff_kb": 1.0})
    got = curve(rows, warmup_windows=2)
    assert got["windows"] == 12
    assert got["trims_window_before_after_mb"] == [(6, 100.0, 90.0)]
    assert curve([]) == {"windows": 0}
