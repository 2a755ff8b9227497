"""How many of each kind of device a run has: a market share of a real district's population.

The figures (docs/SIMULATOR.md says what each is based on) describe Guangzhou's Tianhe district.
A run at the default size simulates every device of a feed with ``MARKET_SHARE`` of that
population; ``--devices`` scales the whole city down (or up) by one factor, the devices per
person, so each kind keeps its proportion and road traffic keeps its real speeds (the vehicles are
real; only the share of them that carries a simulated device scales).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator.geo import FloatArray
from simulator.traffic import peak_factor

RESIDENTS = 1_700_000
"""People living in the district (issue #12's figure for Tianhe, 96 km²)."""
INBOUND_COMMUTERS = 500_000
"""People who work in the district and live elsewhere (assumption: Tianhe holds Guangzhou's
central business district, so its daytime population exceeds its residents)."""
POPULATION = RESIDENTS + INBOUND_COMMUTERS
MARKET_SHARE = 0.35
"""Share of people whose phone is in the feed (a carrier or SDK feed: 30–40 %)."""
AREA_KM2 = 96.0
STADIUM_SEATS = 55_000
"""Tianhe Stadium (Tianhe Sports Center's main stadium) holds about 55,000."""
STADIUM_ATTENDANCE = 0.9
"""A well-attended match fills 90 % of the seats."""
SCENIC_VISITORS_PER_DAY = (12_000, 8_000, 30_000)
"""Visitors per day of SCENIC_AREAS (Canton Tower, Haixinsha, Huacheng Square), people
(docs/SIMULATOR.md says what they rest on)."""
SCENIC_BUSIEST_SHARE = 0.9
"""Share of tourists who visit the busiest area; the others' shares follow their visitors."""
_REACH = max(SCENIC_VISITORS_PER_DAY) / SCENIC_BUSIEST_SHARE
SCENIC_VISIT_PROB = tuple(v / _REACH for v in SCENIC_VISITORS_PER_DAY)
"""Probability that a tourist includes each area (independently, redrawn when none is)."""
SCENIC_TOURISTS_PER_DAY = _REACH * (1.0 - math.prod(1.0 - q for q in SCENIC_VISIT_PROB))
"""Tourists a day, people: with the redraw each area's expected visitors are its daily visitors."""
SCENIC_UTC_OFFSET_H = 8.0
"""The scenic areas' local time (Asia/Shanghai, no daylight saving) minus UTC, hours."""
SCENIC_OPEN_LOCAL_H = (9.0, 21.0)
"""Local hours between which visitors arrive (opening hours)."""
SCENIC_PEAK_LOCAL_H = 13.5
SCENIC_PEAK_SD_H = 2.5
"""Arrivals follow a normal curve over local time (mean, sd in hours) cut to the opening hours."""
SCENIC_LEAD_S = 4 * 3600.0
"""Visitors who arrived up to this long before a run (s) are in it: their visits still run."""
TRIPS_PER_PERSON_DAY = 2.5
"""Trips a person makes a day (typical of large Chinese cities' travel surveys)."""
REGIONAL_SHARE = 0.03
"""Devices of the feed outside the service area (ingest drops them as ``outside_area``)."""

DEFAULT_DEVICES = round(POPULATION * MARKET_SHARE)

_GRID_S = 60.0


def _arrival_shape(t_ms: FloatArray) -> FloatArray:
    local_h = (t_ms / 3.6e6 + SCENIC_UTC_OFFSET_H) % 24.0
    lo, hi = SCENIC_OPEN_LOCAL_H
    bell = np.exp(-0.5 * ((local_h - SCENIC_PEAK_LOCAL_H) / SCENIC_PEAK_SD_H) ** 2)
    out: FloatArray = np.where((local_h >= lo) & (local_h < hi), bell, 0.0)
    return out


_DAY_NORM = float(_arrival_shape(np.arange(0.0, 86_400.0, _GRID_S) * 1000.0).sum())


def arrival_cdf(start_ms: int, t0_s: float, t1_s: float) -> tuple[FloatArray, FloatArray]:
    """Grid times (s since ``start_ms``) from ``t0_s`` to ``t1_s`` and the cumulative share of one
    day's visitors arriving up to each (0 at ``t0_s``; its last value: days' worth of arrivals)."""
    edges = np.arange(t0_s, t1_s + _GRID_S, _GRID_S)
    mid = start_ms + (edges[:-1] + 0.5 * _GRID_S) * 1000.0
    cdf = np.concatenate([[0.0], np.cumsum(_arrival_shape(mid)) / _DAY_NORM])
    return edges, cdf


def visitor_days(start_ms: int, duration_s: float) -> float:
    """Days' worth of visitors (a whole day's arrivals = 1) whose visit overlaps a run of
    ``duration_s`` s starting at ``start_ms``: arrivals from ``SCENIC_LEAD_S`` before it to its end."""
    return float(arrival_cdf(start_ms, -SCENIC_LEAD_S, duration_s)[1][-1])


def arrival_times(n: int, start_ms: int, duration_s: float, rng: np.random.Generator) -> FloatArray:
    """``n`` arrival times (s since ``start_ms``) drawn from the local-time arrival curve over the
    span :func:`visitor_days` counts (uniform over it when it holds no opening hour)."""
    edges, cdf = arrival_cdf(start_ms, -SCENIC_LEAD_S, duration_s)
    u = rng.random(n)
    span = edges[-1] - edges[0]
    out: FloatArray = edges[0] + u * span if cdf[-1] <= 0.0 else np.interp(u * cdf[-1], cdf, edges)
    return out


@dataclass(frozen=True)
class Census:
    """Device counts of one run (vehicles come from the traffic model, the rest from here)."""

    devices_per_person: float
    tourists: int
    regional: int
    travel_share: float
    """Share of the remaining people (residents, commuters) who make a trip during the run."""


def census(devices: int, duration_s: float, start_ms: int, tourist_share: float | None = None) -> Census:
    """Tourists, regional devices and the share travelling, for ``devices`` devices in a run of
    ``duration_s`` s starting at ``start_ms`` (the stadium crowd: ``SimConfig.crowd``).
    ``tourist_share``: devices per tourist (default: the city's devices per person)."""
    p = devices / POPULATION
    share = p if tourist_share is None else tourist_share
    tourists = round(SCENIC_TOURISTS_PER_DAY * share * visitor_days(start_ms, duration_s))
    regional = round(REGIONAL_SHARE * devices)
    # Departures spread over the run and the 30 % before it (trips under way at its start).
    peak = peak_factor(start_ms + duration_s * 500.0)
    travel = min(1.0, TRIPS_PER_PERSON_DAY * 1.3 * duration_s / 86_400.0 * peak)
    return Census(p, tourists, regional, travel)
