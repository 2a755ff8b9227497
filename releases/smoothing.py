"""Smoothing of released counts across windows: post-processing of released values only (free).

Each cell's count is modelled as a *local level* (a random walk) observed once per window with the
release's own noise: level_t = level_{t-1} + w_t and y_t = level_t + v_t, where v_t has the released
σ of that window and cell (noise is drawn independently per window) and w_t is the process noise,
σ_w = sqrt(process_abs² + (process_rel · level)²) devices per window, so a stadium may change by a
few percent a minute and a quiet street by a few devices. The filter is the Kalman filter of that
model, run causally (each value uses only windows up to its own) and vectorized over cells, over the
last ``windows`` released windows; a window far outside the prediction (|innovation| > ``jump_z``
standard deviations) widens the prior by the innovation itself, so a crowd that arrives or leaves
is followed within a window or two instead of being averaged away (the adaptive step of FAST-style
filters). The result is an estimate with its model standard deviation: it trades a lag for less
noise, measured in ``benchmarks/bench_smoothing.py`` (BENCHMARKS.md "Smoothing").

Input goes through :func:`cell_estimate`, the one accessor of a released cell's estimate and σ.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hexpulse.settings import Settings
from releases.models import CellRow

FloatArray = npt.NDArray[np.float64]
Smoothed = dict[int, tuple[float, float]]
"""Per cell: (smoothed count, its σ), devices."""

#: Prior variance of a cell that has no released value yet (devices²): uninformative.
_UNKNOWN_VAR = 1e12


@dataclass(frozen=True)
class SmoothingParams:
    """``windows``: how many released windows (the latest included) the filter reads;
    ``process_abs`` (devices per window) and ``process_rel`` (fraction of the level per window):
    the process noise; ``jump_z``: the innovation, in its standard deviations, beyond which the
    level is taken to have jumped (``inf`` turns the adaptive step off)."""

    windows: int
    process_abs: float
    process_rel: float
    jump_z: float

    @classmethod
    def from_settings(cls, settings: Settings) -> SmoothingParams:
        return cls(
            windows=settings.smoothing_windows,
            process_abs=settings.smoothing_process_abs,
            process_rel=settings.smoothing_process_rel,
            jump_z=settings.smoothing_jump_z,
        )

    def describe(self) -> str:
        """One sentence for API payloads and the transparency page."""
        jump = "off" if math.isinf(self.jump_z) else f"{self.jump_z:g} σ"
        return (
            f"local-level Kalman filter per cell over the last {self.windows} released windows; "
            f"process noise sqrt({self.process_abs:g}² + ({self.process_rel:g}·level)²) devices per "
            f"window; jump step at {jump}"
        )


def cell_estimate(row: CellRow) -> tuple[float, float]:
    """The unbiased estimate of one released cell's count and its standard error, in devices (the
    clipped display count would bias the filter upward in quiet cells)."""
    return float(row.count_est), float(row.count_sigma)


def history_arrays(
    history: Sequence[Mapping[int, CellRow]], cells: npt.NDArray[np.uint64]
) -> tuple[FloatArray, FloatArray]:
    """Estimates and σ (devices) of ``cells`` in each window of ``history`` (oldest first), shaped
    (windows, cells); a cell missing from a window is NaN there."""
    values = np.full((len(history), cells.size), np.nan)
    sigmas = np.full((len(history), cells.size), np.nan)
    for t, released in enumerate(history):
        for i, cell in enumerate(cells.tolist()):
            row = released.get(cell)
            if row is not None:
                values[t, i], sigmas[t, i] = cell_estimate(row)
    return values, sigmas


def local_level(
    values: FloatArray, sigmas: FloatArray, params: SmoothingParams
) -> tuple[FloatArray, FloatArray]:
    """Filtered level at the last window and its standard deviation, per cell (devices).

    ``values`` and ``sigmas`` are (windows, cells), oldest window first; NaN marks a missing value
    (the filter only predicts through it)."""
    if values.shape != sigmas.shape or values.ndim != 2 or values.shape[0] == 0:
        raise ValueError("values and sigmas must be non-empty arrays of the same (windows, cells) shape")
    level = np.zeros(values.shape[1])
    var = np.full(values.shape[1], _UNKNOWN_VAR)
    z2 = params.jump_z**2
    for t in range(values.shape[0]):
        y, r = values[t], sigmas[t] ** 2
        seen = np.isfinite(y) & np.isfinite(r) & (r > 0)
        q = params.process_abs**2 + (params.process_rel * np.maximum(level, 0.0)) ** 2
        prior = np.minimum(var + q, _UNKNOWN_VAR) if t else var
        innov = np.where(seen, y - level, 0.0)
        jumped = seen & (innov**2 > z2 * (prior + np.where(seen, r, 0.0)))
        prior = np.where(jumped, prior + innov**2, prior)
        r = np.where(seen, r, 1.0)
        gain = np.where(seen, prior / (prior + r), 0.0)
        level = level + gain * innov
        # prior·r/(prior + r), not (1 − gain)·prior: that cancels catastrophically when prior ≫ r.
        var = np.where(seen, prior * r / (prior + r), prior)
    return level, np.sqrt(var)


def smooth(history: Sequence[Mapping[int, CellRow]], params: SmoothingParams) -> Smoothed:
    """Per cell of the newest window: (smoothed count, its σ), devices, from ``history`` (released
    cells of consecutive windows, oldest first, the newest last)."""
    if not history:
        return {}
    cells = np.array(sorted(history[-1]), dtype=np.uint64)
    values, sigmas = history_arrays(history[-params.windows :], cells)
    level, sd = local_level(values, sigmas, params)
    return {int(c): (float(x), float(s)) for c, x, s in zip(cells.tolist(), level, sd, strict=True)}
