"""A zone's traffic speed in one released window, for ``traffic_speed`` subscriptions.

Post-processing of the released speed bins (``release_traffic``), no budget of its own: the
bins of the traffic-resolution cells covering the zone are summed per bin, then divided once
(:func:`releases.traffic.bins_speed`), so the speed is the mean over every moving device
counted in those cells, with its σ by the delta method. A res-8 cell holds every road in it: a
zone's speed mixes the corridor it is drawn on with the streets beside it (docs/ALERTS.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import h3

from alerts.levels import Rule
from releases.traffic import CellBins, bins_speed, pool_cells


@dataclass(frozen=True, slots=True)
class ZoneSpeed:
    """Mean speed of the moving devices counted in a zone's cells (km/h) and its standard error
    (km/h); ``moving``: their released number (devices, Σ of the summed bins); ``cells``: how
    many covering cells had bins in the window."""

    speed_kmh: float
    sigma_kmh: float
    moving: float
    cells: int


def covering_cells(base_cells: Iterable[int], res: int) -> tuple[int, ...]:
    """The H3 cells at ``res`` (ints, sorted) that hold a zone's base cells (``res`` at most the
    base resolution, which the settings enforce for the traffic resolution)."""
    return tuple(sorted({h3.str_to_int(h3.cell_to_parent(h3.int_to_str(c), res)) for c in base_cells}))


def zone_speed(window: Mapping[int, CellBins], cells: Iterable[int]) -> ZoneSpeed | None:
    """The zone's speed in a window from its cells' released bins, or None when no covering cell
    has bins or they hold less than one moving device in all (no speed can be divided out)."""
    present = [window[c] for c in cells if c in window]
    pooled = pool_cells(present)
    if pooled is None:
        return None
    v, sv = (float(x) for x in bins_speed(pooled.bins, pooled.mids_kmh, pooled.sigma))
    if math.isnan(v):
        return None
    return ZoneSpeed(v, sv, float(sum(pooled.bins)), len(present))


def decisive(rule: Rule, sigma_kmh: float) -> bool:
    """Whether a speed this uncertain may decide anything: its σ is at most the smallest gap
    between a level's threshold and its clear value. Beyond that a window cannot tell a level
    from its clearing, so it is *no reading* (the state stays as it is) rather than a coin toss
    that the hysteresis would then have to absorb."""
    gap = min(abs(lv.clear - lv.threshold) for lv in rule.levels)
    return math.isfinite(sigma_kmh) and sigma_kmh <= gap
