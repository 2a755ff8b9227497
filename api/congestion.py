"""Congestion from released speeds: free-flow speed, index and level.

Free-flow speed of a cell = the 85th percentile of its own released mean speeds (km/h) over the
trailing 7 days, the convention of speed-based road indices (the speed most traffic reaches when
unimpeded). Congestion index = free-flow speed / current speed (a travel-time ratio: 1.0 is free
flow, 2.0 means trips take twice as long). Levels by index:

    free < 1.25 ≤ light < 1.5 ≤ moderate < 2.0 ≤ heavy < 3.0 ≤ severe
"""

from __future__ import annotations

from hexpulse.traffic_levels import LEVELS

FREE_FLOW_QUANTILE = 0.85
FREE_FLOW_DAYS = 7
MIN_FREE_FLOW_WINDOWS = 10  # fewer released speeds than this: no free-flow estimate
LEVEL_TEXT = {
    "free": "index < 1.25",
    "light": "1.25 ≤ index < 1.5",
    "moderate": "1.5 ≤ index < 2.0",
    "heavy": "2.0 ≤ index < 3.0",
    "severe": "index ≥ 3.0",
}


def congestion(current_kmh: float | None, free_flow_kmh: float | None) -> tuple[float | None, str | None]:
    """(index, level) or (None, None) when either speed is unknown."""
    if current_kmh is None or free_flow_kmh is None or free_flow_kmh <= 0:
        return None, None
    index = free_flow_kmh / max(current_kmh, 1.0)
    for level, upper in LEVELS:
        if index < upper:
            return round(index, 3), level
    return round(index, 3), "severe"
