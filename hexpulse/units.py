"""Unit conversions shared by the stages: speeds in whole km/h, metres per degree."""

from __future__ import annotations

from typing import Any, overload

import numpy as np
import numpy.typing as npt

KMH_PER_MPS = 3.6
"""km/h in one m/s."""
METRES_PER_DEGREE = 111_320.0
"""Metres per degree of latitude (and of longitude at the equator), the usual approximation."""

F64 = npt.NDArray[np.float64]


@overload
def whole_kmh(speed_mps: float) -> int: ...
@overload
def whole_kmh(speed_mps: F64) -> F64: ...
def whole_kmh(speed_mps: Any) -> Any:
    """A speed in m/s rounded half up to whole km/h (the unit of ``partials.speed_sum``).

    Arrays stay float64 (NaN where the speed is NaN); a scalar becomes an ``int``.
    """
    kmh = np.floor(np.asarray(speed_mps, dtype=np.float64) * KMH_PER_MPS + 0.5)
    return int(kmh) if kmh.ndim == 0 else kmh
