"""The hourly occupancy curve of an area's local day, from its zone's minute releases (free:
post-processing of released values, no budget).

Occupancy is devices present in the zone in a minute window. An hour's value is the mean of the
unbiased minute estimates released in that local hour; the minute draws are independent, so its
standard error is √(Σσᵢ²)/n. An optional expansion factor turns devices into visitors (the share of
visitors a data source sees is the caller's knowledge, not ours): values and σ scale by it and the
unit says so. Hours are local wall-clock hours of the area's time zone, so a day has 23 or 25 of
them across a daylight-saving change (the repeated hour keeps its UTC offset in its label).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hexpulse.errors import HexpulseError
from releases.zones import ZonePoint

#: z of a two-sided 95% interval.
Z95 = 1.959963984540054
#: Scenic-area rules flag occupancy at 80% of the published capacity.
WARNING_SHARE = 0.8
#: Largest expansion factor accepted (visitors per device seen); larger ones are a typo.
MAX_EXPANSION = 100.0


class ExpansionError(HexpulseError, ValueError):
    """The expansion factor is outside (0, MAX_EXPANSION] (HTTP 400)."""


class DateError(HexpulseError, ValueError):
    """A local date no release can hold (HTTP 400)."""


def check_local_date(day: date, retention_days: int, name: str = "date") -> date:
    """``day`` if the release tables can hold it: not older than the release retention and not
    after tomorrow (UTC; an area's local date may be a day ahead), else :class:`DateError`."""
    today = datetime.now(UTC).date()
    oldest = today - timedelta(days=retention_days)
    if day < oldest:
        raise DateError(f"{name} {day} is beyond the release retention of {retention_days} days"
                        f" (the oldest kept day is {oldest})")  # fmt: skip
    if day > today + timedelta(days=1):
        raise DateError(f"{name} {day} is in the future: nothing is released for it yet")
    return day


def check_expansion(expansion: float | None) -> float | None:
    """``expansion`` if it is a finite factor in [1, MAX_EXPANSION], else :class:`ExpansionError`."""
    if expansion is None:
        return None
    if not (math.isfinite(expansion) and 1.0 <= expansion <= MAX_EXPANSION):
        raise ExpansionError(
            f"expansion must be a factor between 1 and {MAX_EXPANSION:g} (visitors per device seen)"
        )
    return expansion


def unit_label(expansion: float | None) -> str:
    """What the values count: devices, or visitors as devices × the caller's factor."""
    if expansion is None:
        return "devices"
    return f"visitors (devices × {expansion:g}, an expansion factor given by the caller, not measured)"


def local_day_bounds(local_date: date, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of ``local_date`` in ``timezone``, as aware UTC datetimes (23–25 hours long)."""
    tz = ZoneInfo(timezone)
    start = datetime.combine(local_date, time(), tz)
    end = datetime.combine(local_date + timedelta(days=1), time(), tz)
    return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Hour:
    """One local hour: ``start`` aware in the area's zone; ``estimate``/``sigma``/``lo``/``hi`` the
    mean occupancy (unit of the curve) and its standard error and 95% interval; ``display`` the
    clipped integer; ``windows`` the minute releases it averages (fewer than 60 while the hour is
    not over or a window was not released)."""

    start: datetime
    estimate: float
    sigma: float
    lo: float
    hi: float
    display: int
    windows: int


@dataclass(frozen=True)
class Curve:
    """An area's hourly occupancy on ``local_date``; ``peak`` the hour with the largest estimate
    (None when nothing was released); ``capacity`` in visitors (None: not stated); ``peak_share``
    the peak over capacity with its 95% interval; ``warning`` whether the peak estimate reaches 80%
    of capacity. ``unit`` labels every value (devices, or visitors with the expansion factor)."""

    local_date: date
    timezone: str
    unit: str
    expansion: float | None
    hours: list[Hour]
    peak: Hour | None
    capacity: int | None
    warning_at: float | None
    peak_share: tuple[float, float, float] | None
    warning: bool


def _hour(start: datetime, points: Sequence[ZonePoint], scale: float) -> Hour:
    n = len(points)
    mean = scale * sum(p.count_est for p in points) / n
    sigma = scale * math.sqrt(sum(p.count_sigma**2 for p in points)) / n
    return Hour(start, mean, sigma, mean - Z95 * sigma, mean + Z95 * sigma, max(0, round(mean)), n)


def hourly_curve(
    points: Sequence[ZonePoint], local_date: date, timezone: str, capacity: int | None,
    expansion: float | None = None,
) -> Curve:  # fmt: skip
    """The curve of ``points`` (the zone's released minute values of the local day) by local hour."""
    tz = ZoneInfo(timezone)
    by_hour: dict[datetime, list[ZonePoint]] = {}
    for p in points:
        local = p.window_start.astimezone(tz)
        # Keyed by the hour's UTC instant: the repeated hour of a DST change stays two hours.
        key = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        by_hour.setdefault(key, []).append(p)
    scale = expansion or 1.0
    hours = [_hour(k.astimezone(tz), by_hour[k], scale) for k in sorted(by_hour)]
    peak = max(hours, key=lambda h: h.estimate) if hours else None
    warning_at = None if capacity is None else WARNING_SHARE * capacity
    share = None
    if peak is not None and capacity:
        share = (peak.estimate / capacity, peak.lo / capacity, peak.hi / capacity)
    warning = peak is not None and warning_at is not None and peak.estimate >= warning_at
    return Curve(local_date, timezone, unit_label(expansion), expansion, hours, peak, capacity,
                 warning_at, share, warning)  # fmt: skip
