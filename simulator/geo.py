"""Local metric frame around the city center, and the great-circle distance.

Positions inside the generator are metres east/north of the center; pings carry WGS84 degrees.
An equirectangular projection is exact enough over the ~40 km the city spans (error < 0.1 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG), the one docs/ARCHITECTURE.md fixes for derived speeds."""


@dataclass(frozen=True)
class LocalFrame:
    """Metres east (x) and north (y) of ``(lat0, lon0)`` in degrees."""

    lat0: float
    lon0: float

    @property
    def m_per_deg_lat(self) -> float:
        phi = math.radians(self.lat0)
        return 111_132.954 - 559.822 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi)

    @property
    def m_per_deg_lon(self) -> float:
        phi = math.radians(self.lat0)
        return 111_412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi)

    def to_latlon(self, x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Degrees (lat, lon) of points ``x`` m east and ``y`` m north of the origin."""
        return self.lat0 + y / self.m_per_deg_lat, self.lon0 + x / self.m_per_deg_lon

    def point(self, x: float, y: float) -> tuple[float, float]:
        """(lon, lat) in degrees, GeoJSON order, of one point in metres."""
        return self.lon0 + x / self.m_per_deg_lon, self.lat0 + y / self.m_per_deg_lat


def haversine_m(lat1: FloatArray, lon1: FloatArray, lat2: FloatArray, lon2: FloatArray) -> FloatArray:
    """Great-circle distance in metres between points given in degrees (R = 6,371,008.8 m)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    out: FloatArray = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
    return out
