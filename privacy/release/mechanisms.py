"""Noise for integer vectors: the parameters, their privacy cost, and the draw.

Counts and integerized sums get discrete Gaussian noise (zCDP, default) or discrete Laplace noise
(pure DP). The privacy cost of a scale is OpenDP's own privacy map; the noise itself is drawn by
the exact samplers of :mod:`privacy.release.sampler` from a keyed ChaCha20 keystream, so a draw
is reproducible by whoever holds its key and by nobody once the key is destroyed (noise once,
PRIVACY.md §5). Nothing here uses ``random`` or ``numpy.random``. A whole window's vector for one
(resolution, metric) is noised in one call, from one key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from privacy.release.sampler import gaussian_vector, laplace_vector

Mechanism = Literal["gaussian", "laplace"]
IntVector = npt.NDArray[np.int64]

#: Two-sided 95% normal quantile, used for intervals of Gaussian (and summed) noise.
Z95 = 1.959963984540054


@dataclass(frozen=True)
class NoiseParams:
    """One noise draw family over an integer vector (one entry per cell).

    One privacy unit changes at most ``entries`` entries (L, cells per window), each by at most
    ``bound`` (1 device, or the speed clamp in whole km/h). ``scale`` is the OpenDP scale: σ for
    the Gaussian, b for the Laplace (the sampler uses the same parameterization).
    """

    mechanism: Mechanism
    bound: int
    entries: int
    scale: float

    def __post_init__(self) -> None:
        if self.mechanism not in ("gaussian", "laplace"):
            raise ValueError(f"unknown noise mechanism {self.mechanism!r}")
        if self.bound < 1 or self.entries < 1:
            raise ValueError(f"bound and entries must be >= 1, not {self.bound} and {self.entries}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"noise scale must be a finite number > 0, not {self.scale}")

    @property
    def sensitivity(self) -> float:
        """L2 sensitivity √L·bound (Gaussian) or L1 sensitivity L·bound (Laplace)."""
        if self.mechanism == "gaussian":
            return math.sqrt(self.entries) * self.bound
        return float(self.entries * self.bound)

    @property
    def sigma(self) -> float:
        """Standard deviation of the noise, in the metric's units.

        Discrete Gaussian: σ (its variance is at most σ², equal within 1e-9 relative for σ ≥ 1).
        Discrete Laplace with parameter b: exact, from α = e^(−1/b): √(2α)/(1 − α).
        """
        if self.mechanism == "gaussian":
            return self.scale
        alpha = math.exp(-1.0 / self.scale)
        return math.sqrt(2.0 * alpha) / (1.0 - alpha)

    @property
    def rho(self) -> float:
        """zCDP ρ of one draw, from OpenDP's own privacy map (ε²/2 for the Laplace)."""
        return _rho(self.mechanism, self.bound, self.entries, self.scale)

    @property
    def epsilon(self) -> float | None:
        """Pure-DP ε of one Laplace draw (None for the Gaussian, which has no finite pure ε)."""
        if self.mechanism == "gaussian":
            return None
        return float(_measurement(self.mechanism, self.scale).map(self.entries * self.bound))


def params_for_rho(mechanism: Mechanism, bound: int, entries: int, rho: float) -> NoiseParams:
    """The least-noise parameters whose OpenDP privacy map is at most ``rho`` (zCDP).

    Gaussian: σ = Δ₂/√(2ρ). Laplace: ε = √(2ρ) (pure ε-DP implies ε²/2-zCDP), b = Δ₁/ε. OpenDP
    rounds its map upward, so the scale is nudged up until the map fits.
    """
    if not (math.isfinite(rho) and rho > 0):
        raise ValueError(f"rho must be a finite number > 0, not {rho}")
    sens = math.sqrt(entries) * bound if mechanism == "gaussian" else float(entries * bound)
    base = sens / math.sqrt(2.0 * rho)
    for bump in (1e-12, 1e-10, 1e-8, 1e-6):
        params = NoiseParams(mechanism, bound, entries, base * (1.0 + bump))
        if params.rho <= rho:
            return params
    raise ValueError(f"no noise scale meets rho={rho} for sensitivity {sens}")


@lru_cache(maxsize=256)
def _rho(mechanism: Mechanism, bound: int, entries: int, scale: float) -> float:
    measurement = _measurement(mechanism, scale)
    if mechanism == "gaussian":
        # ρ is quadratic in the L2 distance: L entries changed by `bound` cost L·map(bound).
        return entries * float(measurement.map(bound))
    eps = float(measurement.map(entries * bound))
    return eps * eps / 2.0


@lru_cache(maxsize=64)
def _measurement(mechanism: Mechanism, scale: float) -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    domain = dp.vector_domain(dp.atom_domain(T="i64"))
    if mechanism == "gaussian":
        return dp.m.make_gaussian(domain, dp.l2_distance(T="i64"), scale=scale)
    return dp.m.make_laplace(domain, dp.l1_distance(T="i64"), scale=scale)


def add_noise(values: IntVector, params: NoiseParams, key: bytes) -> IntVector:
    """Return ``values`` plus independent noise per entry, drawn from the keystream of ``key``
    (32 bytes; one key per vector, :mod:`privacy.release.seeds`)."""
    if params.mechanism == "gaussian":
        noise = gaussian_vector(key, params.scale, values.size)
    else:
        noise = laplace_vector(key, params.scale, values.size)
    out: IntVector = values.astype(np.int64) + noise
    return out
