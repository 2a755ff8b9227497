"""One window's released values: exact vectors → keyed noise → reconciliation → ``release_cells`` rows.

This is the deployed noise path (the releaser calls it; tests and the audit call it directly):
:func:`exact_totals` lays a window's exact partials on the public partitions, :func:`release_values`
noises each measured (metric, resolution) vector once and reconciles the resolutions,
:func:`cell_rows` turns the estimates into rows with σ, 95% intervals and mean speeds.
It reads and writes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from privacy.release.budget import ReleasePlan
from privacy.release.consistency import Estimate, Hierarchy, reconcile, sum_by
from privacy.release.exceptions import ReleaseError
from privacy.release.ledger import fingerprint
from privacy.release.mechanisms import Z95, IntVector, add_noise
from privacy.release.seeds import DrawKeys

CELL_COLUMNS = (
    "window_start, res, cell, count, count_sigma, count_lo, count_hi, moving, moving_sigma, "
    "moving_lo, moving_hi, speed_kmh, speed_lo_kmh, speed_hi_kmh, count_est, moving_est, plan"
)
#: Mean speed is published only where the released moving count is at least this many of its
#: own standard deviations (so its relative error is ≤ 1/3 at one σ); otherwise it is null.
SPEED_MIN_MOVING_SIGMAS = 3.0


@dataclass(frozen=True)
class WindowValues:
    """Released estimates of one window per metric (only the released metrics are present)."""

    metrics: dict[str, Estimate]

    def prints(self, tree: Hierarchy) -> dict[tuple[int, str], int]:
        """The ledger fingerprint of every (resolution, metric) family's released integers."""
        return {
            (res, metric): fingerprint(est.values[k])
            for metric, est in self.metrics.items()
            for k, res in enumerate(tree.resolutions)
        }


def exact_totals(
    base: npt.NDArray[np.uint64], rows: Sequence[tuple[int, int, int, int]]
) -> tuple[dict[str, IntVector], int]:
    """A window's exact totals per metric in the order of ``base`` (zeros for quiet cells).

    ``rows`` are partials ``(cell, devices, moving, speed_sum)`` in any order; a cell may appear
    once per Kafka partition and its rows are summed. Also returns how many rows name a cell
    outside ``base`` (they are left out).
    """
    n = base.size
    out = {m: np.zeros(n, dtype=np.int64) for m in ("count", "moving", "speed")}
    if not rows:
        return out, 0
    cells = np.array([r[0] for r in rows], dtype=np.uint64)
    idx = np.minimum(np.searchsorted(base, cells), n - 1)
    inside = base[idx] == cells
    for col, metric in enumerate(("count", "moving", "speed"), start=1):
        vals = np.array([r[col] for r in rows], dtype=np.int64)
        np.add.at(out[metric], idx[inside], vals[inside])
    return out, int((~inside).sum())


def release_values(
    plan: ReleasePlan, tree: Hierarchy, exact: dict[str, IntVector], keys: DrawKeys
) -> WindowValues:
    """The deployed noise path for one window: exact base-cell vectors → noisy, reconciled values.

    ``exact[metric]`` holds the window's exact (already bounded) integer totals per base cell, in
    the order of ``tree.cells[0]``. Each measured (metric, resolution) vector is noised once, from
    the keystream of ``keys.key(metric, res)`` (:mod:`privacy.release.seeds`: the releaser's are
    secret and per window; tests and audits use seeded or fresh ones).
    """
    out: dict[str, Estimate] = {}
    for metric in plan.metrics:
        levels = [exact[metric].astype(np.int64)]
        for k in range(1, len(tree.resolutions)):
            levels.append(sum_by(tree.parent[k - 1], levels[-1], tree.sizes[k]).astype(np.int64))
        measured: dict[int, tuple[IntVector, float]] = {}
        for res, draw in plan.measured(metric).items():
            k = tree.resolutions.index(res)
            measured[k] = (add_noise(levels[k], draw.params, keys.key(metric, res)), draw.params.sigma**2)
        out[metric] = reconcile(tree, measured)
    return WindowValues(out)


def interval(
    value: npt.NDArray[np.int64], unconstrained: npt.NDArray[np.float64], sigma: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """95% interval per cell: the unconstrained least-squares estimate ± 1.96σ, cut at 0 and widened
    to contain the released value. Before the cut it covers the truth with probability 95% (the
    estimate is unbiased and Gaussian-like); the cut at 0 never removes a truth (counts are ≥ 0)."""
    lo = np.minimum(np.maximum(unconstrained - Z95 * sigma, 0.0), value)
    hi = np.maximum(unconstrained + Z95 * sigma, value)
    return lo, hi


def cell_rows(
    window_start: datetime, tree: Hierarchy, values: WindowValues, speed_cap_kmh: int, *, plan: int
) -> list[tuple[object, ...]]:
    """``release_cells`` rows: counts with σ and 95% interval, mean speed (km/h) or null, the
    unbiased least-squares estimates ``count_est``/``moving_est`` (persons, before clipping and
    rounding; σ is their standard error, and every sum must add these, never the clipped counts)
    and the hash of the plan they were drawn under (the last column)."""
    nan = float("nan")
    rows: list[tuple[object, ...]] = []
    count, moving, speed = (values.metrics.get(m) for m in ("count", "moving", "speed"))
    if count is None:
        raise ReleaseError("the release plan has no counts")  # plan_from_settings refuses that
    for k, res in enumerate(tree.resolutions):
        c, cs = count.values[k], count.sigma[k]
        c_lo, c_hi = interval(c, count.unconstrained[k], cs)
        if moving is not None:
            m_lo, m_hi = interval(moving.values[k], moving.unconstrained[k], moving.sigma[k])
        for i, cell in enumerate(tree.cells[k].tolist()):
            row: list[object] = [
                window_start,
                res,
                cell,
                int(c[i]),
                float(cs[i]),
                float(c_lo[i]),
                float(c_hi[i]),
            ]
            if moving is None:
                row += [0, nan, nan, nan]
            else:
                row += [int(moving.values[k][i]), float(moving.sigma[k][i]), float(m_lo[i]), float(m_hi[i])]
            row += list(_mean_speed(speed, moving, k, i, speed_cap_kmh))
            row.append(float(count.unconstrained[k][i]))
            row.append(nan if moving is None else float(moving.unconstrained[k][i]))
            row.append(plan)
            rows.append(tuple(row))
    return rows


def _mean_speed(
    speed: Estimate | None, moving: Estimate | None, k: int, i: int, cap: int
) -> tuple[float | None, float | None, float | None]:
    if speed is None or moving is None:
        return None, None, None
    m, s_m = float(moving.values[k][i]), float(moving.sigma[k][i])
    if m <= 0 or m < SPEED_MIN_MOVING_SIGMAS * s_m:
        return None, None, None
    total, s_t = float(speed.values[k][i]), float(speed.sigma[k][i])
    mean = min(total / m, float(cap))
    # Delta method for a ratio of independent noisy totals.
    sd = math.sqrt(s_t**2 + (mean * s_m) ** 2) / m
    return mean, max(0.0, mean - Z95 * sd), min(float(cap), mean + Z95 * sd)
