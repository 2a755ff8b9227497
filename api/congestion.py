"""Congestion from released speeds: free-flow speed, index and level.

Free-flow speed of a cell = the 85th percentile of its own released mean speeds (km/h) over the
trailing 7 days, the convention of speed-based road indices (the speed most traffic reaches when
unimpeded). Congestion index = free-flow speed / current speed (a travel-time ratio: 1.0 is free
flow, 2.0 means trips take twice as long). Levels by index:

    free < 1.25 ≤ light < 1.5 ≤ moderate < 2.0 ≤ heavy < 3.0 ≤ severe
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

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
    return round(index, 3), _level(index)


# --- Speed from released speed bins, pooled free flow, travel-time-weighted index ------------
# The measurement benchmarks/bench_traffic.py chose: moving devices counted in speed bins (one
# device in one bin, so a bin vector has the sensitivity of one count). Everything below is
# post-processing of released bins, with its standard error by the delta method.

FloatArray = npt.NDArray[np.float64]


def bins_speed(
    bins: npt.ArrayLike, mids_kmh: npt.ArrayLike, sigma: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Mean speed (km/h) of released speed bins and its standard error (km/h).

    ``bins``: unbiased bin estimates, shape (..., k) (pool windows by summing them *before* this
    division, e.g. a free-flow speed over quiet hours); ``mids_kmh``: each bin's representative
    speed (k); ``sigma``: the noise σ of each entry of ``bins`` (scalar or broadcastable; the sum
    of T windows has σ·√T). Where the bins hold less than one device the mean is NaN.
    Mean = Σ mid·b / Σ b; its gradient in b_i is (mid_i − mean) / Σ b, so with independent
    entries σ_mean² = Σ (mid_i − mean)² σ_i² / (Σ b)²."""
    b = np.asarray(bins, dtype=np.float64)
    mids = np.asarray(mids_kmh, dtype=np.float64)
    total = b.sum(axis=-1)
    ok = total >= 1.0
    safe = np.where(ok, total, 1.0)
    mean = (b @ mids) / safe
    sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), b.shape)
    var = (((mids - mean[..., None]) * sig) ** 2).sum(axis=-1) / safe**2
    return np.where(ok, mean, np.nan), np.where(ok, np.sqrt(var), np.nan)


def travel_time_index(
    bins: npt.ArrayLike, quiet_bins: npt.ArrayLike, mids_kmh: npt.ArrayLike, sigma: float, quiet_sigma: float
) -> tuple[float, float]:
    """A district's or the city's congestion index and its standard error (dimensionless).

    Travel-time weighted, as city traffic indices publish it: the time all measured vehicles take
    per km now over the time they would take at free flow. A device in bin k spends 1/mid_k hours
    per km, so the time now is linear in the released bins, Σ_ik b_ik / mid_k, and so is the
    time at free flow, Σ_ik b_ik · H_i, with H_i the segment's free-flow pace (h/km) pooled from
    its quiet-hour bins ``quiet_bins`` (Σ q/mid ÷ Σ q): no noisy speed is ever inverted, and the
    spread of speeds inside a bin cancels between the two times. ``bins``: (segments, k) released
    bins of one window; ``sigma``/``quiet_sigma``: σ of one entry of each (a pooled sum of T
    windows has σ·√T). σ of the index by the delta method over every entry."""
    b = np.atleast_2d(np.asarray(bins, dtype=np.float64))
    q = np.atleast_2d(np.asarray(quiet_bins, dtype=np.float64))
    pace = 1.0 / np.asarray(mids_kmh, dtype=np.float64)
    q_total = q.sum(axis=1)
    keep = q_total >= 1.0  # a segment without a free-flow pace is left out
    b, q, q_total = b[keep], q[keep], q_total[keep]
    if b.size == 0:
        return math.nan, math.nan
    free_pace = (q @ pace) / q_total
    now = float((b @ pace).sum())
    free = float((b.sum(axis=1) * free_pace).sum())
    if free <= 0:
        return math.nan, math.nan
    index = now / free
    # ∂I/∂b_ik = (pace_k − I·H_i)/free; ∂I/∂H_i = −I·n_i/free, ∂H_i/∂q_ik = (pace_k − H_i)/Σq_i.
    var_b = float((((pace[None, :] - index * free_pace[:, None]) * sigma) ** 2).sum())
    var_h = (((pace[None, :] - free_pace[:, None]) * quiet_sigma) ** 2).sum(axis=1) / q_total**2
    var_q = float(((index * b.sum(axis=1)) ** 2 * var_h).sum())
    return index, math.sqrt(var_b + var_q) / free


def _level(index: float) -> str:
    for level, upper in LEVELS:
        if index < upper:
            return level
    return "severe"
