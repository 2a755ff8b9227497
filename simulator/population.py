"""How many of each kind of device a run has: a market share of a real district's population.

The figures (docs/SIMULATOR.md says what each is based on) describe Guangzhou's Tianhe district.
A run at the default size simulates every device of a feed with ``MARKET_SHARE`` of that
population; ``--devices`` scales the whole city down (or up) by one factor, the devices per
person, so each kind keeps its proportion and road traffic keeps its real speeds (the vehicles are
real; only the share of them that carries a simulated device scales).
"""

from __future__ import annotations

from dataclasses import dataclass

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
"""Visitors per day of SCENIC_AREAS (Canton Tower, Haixinsha, Huacheng Square): assumptions of
the right order for major city landmarks on an ordinary day, not counts from a source."""
SCENIC_OPEN_H = 12.0
"""Hours a day the visitors spread over."""
TRIPS_PER_PERSON_DAY = 2.5
"""Trips a person makes a day (typical of large Chinese cities' travel surveys)."""
REGIONAL_SHARE = 0.03
"""Devices of the feed outside the service area (ingest drops them as ``outside_area``)."""

DEFAULT_DEVICES = round(POPULATION * MARKET_SHARE)


@dataclass(frozen=True)
class Census:
    """Device counts of one run (vehicles come from the traffic model, the rest from here)."""

    devices_per_person: float
    tourists: int
    regional: int
    travel_share: float
    """Share of the remaining people (residents, commuters) who make a trip during the run."""


def census(devices: int, duration_s: float, start_ms: int) -> Census:
    """Tourists, regional devices and the share travelling, for ``devices`` devices in a run of
    ``duration_s`` s starting at ``start_ms`` (the stadium crowd: ``SimConfig.crowd``)."""
    p = devices / POPULATION
    # A visitor's phone is in the run when the visit overlaps it: arrivals over the run plus
    # those still there from the ~2 h before.
    overlap = min(1.0, (duration_s + 2 * 3600.0) / (SCENIC_OPEN_H * 3600.0))
    tourists = round(sum(SCENIC_VISITORS_PER_DAY) * p * overlap)
    regional = round(REGIONAL_SHARE * devices)
    # Departures spread over the run and the 30 % before it (trips under way at its start).
    peak = peak_factor(start_ms + duration_s * 500.0)
    travel = min(1.0, TRIPS_PER_PERSON_DAY * 1.3 * duration_s / 86_400.0 * peak)
    return Census(p, tourists, regional, travel)
