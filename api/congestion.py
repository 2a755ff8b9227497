"""Congestion from released speeds: free-flow speed, index and level.

Where a window has released speed bins (``release_traffic``), a cell's free flow is the mean
speed of its bins *summed* over the quiet windows of the trailing days
(``HEXPULSE_TRAFFIC_FREE_FLOW_HOURS_UTC``, ``HEXPULSE_TRAFFIC_FREE_FLOW_DAYS``), divided once:
unbiased, with its σ (:func:`cell_congestion`). Windows without bins fall back to the released
cell speeds, with free flow = the 85th percentile of the cell's released mean speeds (km/h) over
the trailing 7 days (biased upward by the noise; kept only for those windows). Congestion index
= free-flow speed / current speed (a travel-time ratio: 1.0 is free flow, 2.0 means trips take
twice as long). Levels by index:

    free < 1.25 ≤ light < 1.5 ≤ moderate < 2.0 ≤ heavy < 3.0 ≤ severe"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hexpulse.traffic_levels import level_of
from releases.traffic import CellBins, bins_speed, matching_pool

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
    return round(index, 3), level_of(index)


# --- Speed from released speed bins, pooled free flow, travel-time-weighted index ------------
# The measurement benchmarks/bench_traffic.py chose: moving devices counted in speed bins (one
# device in one bin, so a bin vector has the sensitivity of one count). Everything below is
# post-processing of released bins, with its standard error by the delta method; the mean speed
# of bins (``bins_speed``) lives with the bins in releases/traffic.py (alerts use it too).


def travel_time_index(
    bins: npt.ArrayLike,
    quiet_bins: npt.ArrayLike,
    mids_kmh: npt.ArrayLike,
    sigma: npt.ArrayLike,
    quiet_sigma: npt.ArrayLike,
) -> tuple[float, float]:
    """A district's or the city's congestion index and its standard error (dimensionless).

    Travel-time weighted, as city traffic indices publish it: the time all measured vehicles take
    per km now over the time they would take at free flow. A device in bin k spends 1/mid_k hours
    per km, so the time now is linear in the released bins, Σ_ik b_ik / mid_k, and so is the
    time at free flow, Σ_ik b_ik · H_i, with H_i the segment's free-flow pace (h/km) pooled from
    its quiet-hour bins ``quiet_bins`` (Σ q/mid ÷ Σ q): no noisy speed is ever inverted, and the
    spread of speeds inside a bin cancels between the two times. ``bins``: (segments, k) released
    bins of one window; ``sigma``/``quiet_sigma``: σ of one entry of each (a pooled sum of T
    windows has σ·√T; or one σ per segment, shape (segments,)). σ of the index by the delta
    method over every entry."""
    b = np.atleast_2d(np.asarray(bins, dtype=np.float64))
    q = np.atleast_2d(np.asarray(quiet_bins, dtype=np.float64))
    pace = 1.0 / np.asarray(mids_kmh, dtype=np.float64)
    q_total = q.sum(axis=1)
    keep = q_total >= 1.0  # a segment without a free-flow pace is left out
    sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), q_total.shape)[keep][:, None]
    q_sig = np.broadcast_to(np.asarray(quiet_sigma, dtype=np.float64), q_total.shape)[keep][:, None]
    b, q, q_total = b[keep], q[keep], q_total[keep]
    if b.size == 0:
        return math.nan, math.nan
    raw_pace = (q @ pace) / q_total
    # Noisy quiet bins (a thin pool: σ√T per bin) can put a segment's free-flow pace outside the
    # paces of its bins, even below zero, where no mean of devices in them can lie; one such
    # segment could turn the whole series' free time negative. Cut to the bins' paces
    # (post-processing, never further from the truth), as bins_speed cuts a mean speed.
    free_pace = np.clip(raw_pace, pace.min(), pace.max())
    inside = (free_pace == raw_pace)[:, None]  # a cut pace does not move with its bins
    now = float((b @ pace).sum())
    free = float((b.sum(axis=1) * free_pace).sum())
    if free <= 0:
        return math.nan, math.nan
    index = now / free
    # ∂I/∂b_ik = (pace_k − I·H_i)/free; ∂I/∂H_i = −I·n_i/free, ∂H_i/∂q_ik = (pace_k − H_i)/Σq_i.
    var_b = float((((pace[None, :] - index * free_pace[:, None]) * sig) ** 2).sum())
    var_h = (((pace[None, :] - free_pace[:, None]) * q_sig * inside) ** 2).sum(axis=1) / q_total**2
    var_q = float(((index * b.sum(axis=1)) ** 2 * var_h).sum())
    return index, math.sqrt(var_b + var_q) / free


@dataclass(frozen=True, slots=True)
class BinsCongestion:
    """One cell's traffic from released bins: mean speed and free flow (km/h) with standard
    errors, index = free flow / mean speed (dimensionless) with its standard error, the level
    and the levels at the ends of the index's 95% interval. None where a speed is unknown."""

    speed_kmh: float | None
    speed_sigma_kmh: float | None
    free_flow_kmh: float | None
    free_flow_sigma_kmh: float | None
    index: float | None
    index_sigma: float | None
    level: str | None
    level_range: tuple[str, str] | None


def _known(x: float) -> float | None:
    return None if math.isnan(x) else x


def cell_congestion(
    bins: Sequence[float],
    sigma: float,
    quiet: Sequence[float] | None,
    quiet_sigma: float,
    mids_kmh: Sequence[float],
) -> BinsCongestion:
    """Congestion of one segment (a cell or a corridor) from its window's released bins and the
    bins pooled over its quiet windows (``quiet``, summed before dividing; σ of one pooled bin
    ``quiet_sigma``). The index is free flow / mean speed, the ratio the simulator's ground truth
    levels; its σ by the delta method, (σ_I/I)² = (σ_F/F)² + (σ_V/V)² (the two come from disjoint
    windows: independent)."""
    v, sv = (float(x) for x in bins_speed(bins, mids_kmh, sigma))
    speed, speed_sigma = _known(v), _known(sv)
    f = sf = math.nan
    if quiet is not None:
        f, sf = (float(x) for x in bins_speed(quiet, mids_kmh, quiet_sigma))
    free, free_sigma = _known(f), _known(sf)
    if speed is None or free is None or free <= 0:
        return BinsCongestion(speed, speed_sigma, free, free_sigma, None, None, None, None)
    current = max(speed, 1.0)
    index = free / current
    index_sigma = index * math.hypot(sf / free, sv / current)
    lo, hi = max(index - 1.96 * index_sigma, 0.0), index + 1.96 * index_sigma
    return BinsCongestion(speed, speed_sigma, free, free_sigma, index, index_sigma, level_of(index),
                          (level_of(lo), level_of(hi)))  # fmt: skip


# --- JSON fields of a segment (a cell or a corridor) from its bins --------------------------------


def pair(lo: float | None, hi: float | None) -> list[float] | None:
    return None if lo is None or hi is None else [round(lo, 3), round(hi, 3)]


def ci95(x: float | None, sigma: float | None, floor: float | None = 0.0) -> list[float] | None:
    """x ± 1.96σ, the lower end clipped at ``floor`` (None: not clipped)."""
    if x is None or sigma is None:
        return None
    lo = x - 1.96 * sigma
    return pair(lo if floor is None else max(lo, floor), x + 1.96 * sigma)


def rounded(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


def bins_fields(now: CellBins, quiet: CellBins | None, recent: CellBins | None = None) -> dict[str, Any]:
    """The traffic fields of one segment (a res-8 cell or a corridor) in one window: moving
    devices, mean speed, pooled free flow (``quiet``, used only if its bins are ``now``'s), index,
    level, each with its 95% interval (devices, km/h, dimensionless). ``recent``: the segment's
    bins summed over the last windows up to this one (same bins as ``now``): speed, index and
    level then come from those minutes' devices (less noise, a lag of about half the windows),
    the moving devices still from this window alone."""
    pooled = matching_pool(now, quiet)
    speed_from = recent if recent is not None and recent.mids_kmh == now.mids_kmh else now
    c = cell_congestion(speed_from.bins, speed_from.sigma, None if pooled is None else pooled.bins,
                        0.0 if pooled is None else pooled.sigma, now.mids_kmh)  # fmt: skip
    moving = sum(now.bins)
    return {
        "moving": max(0, round(moving)),
        "moving_ci95": ci95(moving, now.sigma * math.sqrt(len(now.bins)), floor=None),
        "mean_speed_kmh": rounded(c.speed_kmh, 2),
        "speed_ci95_kmh": ci95(c.speed_kmh, c.speed_sigma_kmh),
        "free_flow_kmh": rounded(c.free_flow_kmh, 2),
        "free_flow_ci95_kmh": ci95(c.free_flow_kmh, c.free_flow_sigma_kmh),
        "free_flow_windows": 0 if pooled is None else pooled.windows,
        "speed_windows": speed_from.windows,
        "congestion_index": rounded(c.index, 3),
        "congestion_index_ci95": ci95(c.index, c.index_sigma),
        "level": c.level,
        "level_range": c.level_range,
    }
