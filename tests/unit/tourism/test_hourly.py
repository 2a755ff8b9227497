"""The hourly occupancy curve: the mean of the minute estimates per local hour with σ = √(Σσ²)/n,
local hours across daylight-saving changes and half-hour offsets, the peak against capacity with
the 80% warning, and the expansion factor (bounded, labelled)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from releases.zones import ZonePoint
from tourism.hourly import (
    MAX_EXPANSION,
    Z95,
    DateError,
    ExpansionError,
    check_expansion,
    check_local_date,
    hourly_curve,
    local_day_bounds,
    unit_label,
)


def point(start: datetime, est: float, sigma: float) -> ZonePoint:
    return ZonePoint(start, start + timedelta(seconds=60), 1, max(0, round(est)), est, sigma,
                     est - Z95 * sigma, est + Z95 * sigma, 7)  # fmt: skip


def day_points(local_date: date, timezone: str, value: float = 100.0, sigma: float = 20.0) -> list[ZonePoint]:
    start, end = local_day_bounds(local_date, timezone)
    n = int((end - start).total_seconds() // 60)
    return [point(start + timedelta(minutes=i), value, sigma) for i in range(n)]


def test_an_hour_is_the_mean_of_its_minutes_with_the_independent_draws_sigma() -> None:
    start, _ = local_day_bounds(date(2026, 7, 1), "UTC")
    ests = [10.0 * i for i in range(60)]
    sigmas = [5.0 + i % 7 for i in range(60)]
    pairs = zip(ests, sigmas, strict=True)
    pts = [point(start + timedelta(minutes=i), e, s) for i, (e, s) in enumerate(pairs)]
    hour = hourly_curve(pts[:45], date(2026, 7, 1), "UTC", None).hours[0]
    assert hour.windows == 45
    assert hour.estimate == pytest.approx(sum(ests[:45]) / 45)
    assert hour.sigma == pytest.approx(math.sqrt(sum(s * s for s in sigmas[:45])) / 45)
    assert hour.lo == pytest.approx(hour.estimate - Z95 * hour.sigma)


def test_sigma_matches_the_spread_of_simulated_hours() -> None:
    """400 seeded hours of noisy minutes: the stated σ is the spread of the hour's mean (±10%)."""
    rng = np.random.default_rng(14)
    start, _ = local_day_bounds(date(2026, 7, 1), "UTC")
    means, stated = [], []
    for _ in range(400):
        pts = [point(start + timedelta(minutes=i), 300 + rng.normal(0, 30), 30.0) for i in range(60)]
        hour = hourly_curve(pts, date(2026, 7, 1), "UTC", None).hours[0]
        means.append(hour.estimate)
        stated.append(hour.sigma)
    assert np.std(means) == pytest.approx(stated[0], rel=0.1)
    assert abs(np.mean(means) - 300) < 3 * stated[0] / math.sqrt(400)


@pytest.mark.parametrize(
    ("timezone", "local_date", "hours"),
    [("Asia/Shanghai", date(2026, 12, 1), 24), ("America/New_York", date(2026, 11, 1), 25),
     ("America/New_York", date(2026, 3, 8), 23), ("Asia/Kolkata", date(2026, 12, 1), 24)],
)  # fmt: skip
def test_hours_are_local_wall_clock_hours(timezone: str, local_date: date, hours: int) -> None:
    curve = hourly_curve(day_points(local_date, timezone), local_date, timezone, None)
    assert len(curve.hours) == hours
    assert all(h.windows == 60 for h in curve.hours)
    assert curve.hours[0].start.hour == 0 and curve.hours[0].start.date() == local_date
    assert all(h.start.minute == 0 for h in curve.hours)  # also at +05:30
    # The repeated hour of the fall-back day is two hours with different offsets.
    offsets = {h.start.utcoffset() for h in curve.hours}
    assert len(offsets) == (2 if hours != 24 else 1)


def test_peak_against_capacity_and_the_80_percent_warning() -> None:
    d = date(2026, 12, 1)
    start, _ = local_day_bounds(d, "Asia/Shanghai")
    pts = [point(start + timedelta(minutes=i), 1000.0 + (3000.0 if 600 <= i < 660 else 0.0), 40.0)
           for i in range(1440)]  # fmt: skip
    curve = hourly_curve(pts, d, "Asia/Shanghai", capacity=5000)
    assert curve.peak is not None and curve.peak.start.hour == 10
    assert curve.peak.estimate == pytest.approx(4000)
    assert curve.warning_at == pytest.approx(4000) and curve.warning
    assert curve.peak_share is not None
    assert curve.peak_share[0] == pytest.approx(0.8) and curve.peak_share[1] < 0.8 < curve.peak_share[2]
    quiet = hourly_curve(pts, d, "Asia/Shanghai", capacity=6000)
    assert not quiet.warning
    none = hourly_curve(pts, d, "Asia/Shanghai", capacity=None)
    assert none.peak_share is None and not none.warning and none.warning_at is None


def test_expansion_scales_values_and_sigma_and_is_labelled() -> None:
    d = date(2026, 12, 1)
    pts = day_points(d, "UTC", value=100.0, sigma=20.0)
    plain = hourly_curve(pts, d, "UTC", 1000)
    scaled = hourly_curve(pts, d, "UTC", 1000, expansion=2.5)
    assert scaled.hours[3].estimate == pytest.approx(2.5 * plain.hours[3].estimate)
    assert scaled.hours[3].sigma == pytest.approx(2.5 * plain.hours[3].sigma)
    assert plain.unit == "devices" and scaled.unit.startswith("visitors (devices × 2.5")
    assert unit_label(None) == "devices"


@pytest.mark.parametrize("bad", [0.0, 0.5, -1.0, MAX_EXPANSION + 1, math.inf, math.nan])
def test_expansion_is_bounded(bad: float) -> None:
    with pytest.raises(ExpansionError, match="between 1 and"):
        check_expansion(bad)
    assert check_expansion(None) is None and check_expansion(3.0) == 3.0


def test_local_day_bounds_are_utc_and_span_the_day() -> None:
    start, end = local_day_bounds(date(2026, 12, 1), "Asia/Shanghai")
    assert start == datetime(2026, 11, 30, 16, tzinfo=UTC) and end == datetime(2026, 12, 1, 16, tzinfo=UTC)
    assert hourly_curve([], date(2026, 12, 1), "UTC", 100).peak is None


def test_local_dates_are_bounded_by_the_retention_and_tomorrow() -> None:
    today = datetime.now(UTC).date()
    assert check_local_date(today + timedelta(days=1), 30) == today + timedelta(days=1)
    assert check_local_date(today - timedelta(days=30), 30) == today - timedelta(days=30)
    with pytest.raises(DateError, match="beyond the release retention of 30 days"):
        check_local_date(today - timedelta(days=31), 30)
    with pytest.raises(DateError, match="in the future"):
        check_local_date(date.max, 30)
