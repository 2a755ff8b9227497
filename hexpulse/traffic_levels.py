"""Congestion levels by travel-time index (free-flow speed / current speed), as road-traffic
indices define them: free < 1.25 ≤ light < 1.5 ≤ moderate < 2.0 ≤ heavy < 3.0 ≤ severe.

One home for the thresholds: the API (``api/congestion.py``) and the simulator's ground truth
both read them here.
"""

from __future__ import annotations

LEVELS: tuple[tuple[str, float], ...] = (("free", 1.25), ("light", 1.5), ("moderate", 2.0), ("heavy", 3.0))
"""(level, upper bound of the index, exclusive); at or above the last bound: ``severe``."""
LEVEL_NAMES: tuple[str, ...] = (*(name for name, _ in LEVELS), "severe")


def level_of(index: float) -> str:
    """The level of a travel-time index (dimensionless; 1.0 = free flow)."""
    for level, upper in LEVELS:
        if index < upper:
            return level
    return "severe"
