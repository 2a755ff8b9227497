"""Post-processing of one window's noisy releases across resolutions (free: no data is read).

The base cells of the service area and their H3 ancestors form a tree. Some levels are measured
(noisy counts with a known noise variance), the others are not. :func:`reconcile` computes the
least-squares (generalized, variance-weighted) estimate of every node subject to "parent = sum
of children" with the classic two-pass tree algorithm (Hay et al. 2010, with weights): bottom-up,
each node combines its own measurement with the sum of its children's estimates by inverse
variance; top-down, each family's discrepancy with its parent is shared out in proportion to
the children's variances. It then makes the result non-negative integers that still add up
(top-down: a family is the closest non-negative vector, in the same weighted norm, that sums to
its released parent, then rounded by largest remainders). Everything is vectorized with numpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hexpulse.cells import parents_of
from hexpulse.service_area import ServiceArea

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def sum_by(group: IntArray, weights: FloatArray | IntArray, n: int) -> FloatArray:
    """Per-group sums of ``weights`` (``n`` groups; groups without members sum to 0)."""
    return np.asarray(np.bincount(group, weights=weights, minlength=n), dtype=np.float64)


@dataclass(frozen=True)
class Hierarchy:
    """Cells per released resolution (finest first) and each level's parent index in the next."""

    resolutions: tuple[int, ...]
    cells: tuple[npt.NDArray[np.uint64], ...]
    parent: tuple[IntArray, ...]  # parent[k][i] = index in level k+1 of the parent of cells[k][i]

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(c.size for c in self.cells)


def build_hierarchy(area: ServiceArea, resolutions: tuple[int, ...]) -> Hierarchy:
    """The tree of the area's cells at ``resolutions`` (must start with the base resolution)."""
    res = tuple(sorted(set(resolutions), reverse=True))
    if res[0] != area.base_resolution:
        raise ValueError("the finest released resolution must be the base resolution")
    cells = tuple(area.cells_at(r) for r in res)
    parents: list[IntArray] = []
    for k in range(len(res) - 1):
        up = parents_of(cells[k], res[k + 1])
        parents.append(np.searchsorted(cells[k + 1], up).astype(np.int64))
    return Hierarchy(res, cells, tuple(parents))


@dataclass(frozen=True)
class Estimate:
    """Per level: the released values and the standard deviation of their error (same units)."""

    values: tuple[IntArray, ...]
    sigma: tuple[FloatArray, ...]
    unconstrained: tuple[FloatArray, ...]  # least-squares estimate before non-negativity/rounding


def reconcile(
    tree: Hierarchy, measured: Mapping[int, tuple[IntArray | FloatArray, float]], *, nonneg: bool = True
) -> Estimate:
    """Consistent estimates for every level from ``measured[level] = (noisy values, variance)``.

    Level 0 (the base) must be measured. Variances are the noise variances of the draws. The
    unconstrained estimates are consistent (each parent is the sum of its children) and unbiased;
    :mod:`privacy.release.covariance` gives the exact variance of any sum of them.
    """
    if 0 not in measured:
        raise ValueError("the base level must be measured")
    n_levels = len(tree.resolutions)
    z: list[FloatArray] = []
    var: list[FloatArray] = []
    child_sum: list[FloatArray] = [np.zeros(0)]
    child_var: list[FloatArray] = [np.zeros(0)]
    for k in range(n_levels):
        n = tree.sizes[k]
        if k == 0:
            y0, v0 = measured[0]
            z.append(y0.astype(np.float64))
            var.append(np.full(n, float(v0)))
            continue
        s = sum_by(tree.parent[k - 1], z[k - 1], n)
        vs = sum_by(tree.parent[k - 1], var[k - 1], n)
        child_sum.append(s)
        child_var.append(vs)
        if k in measured:
            y, v = measured[k]
            w_own, w_kids = 1.0 / float(v), 1.0 / vs
            z.append((y * w_own + s * w_kids) / (w_own + w_kids))
            var.append(1.0 / (w_own + w_kids))
        else:
            z.append(s)
            var.append(vs)

    final: list[FloatArray] = [np.zeros(0)] * n_levels
    post_var: list[FloatArray] = [np.zeros(0)] * n_levels
    final[-1], post_var[-1] = z[-1], var[-1]
    for k in range(n_levels - 2, -1, -1):
        p = tree.parent[k]
        gain = var[k] / child_var[k + 1][p]
        final[k] = z[k] + gain * (final[k + 1][p] - child_sum[k + 1][p])
        post_var[k] = var[k] - gain * var[k] + gain * gain * post_var[k + 1][p]

    sigma = tuple(np.sqrt(np.maximum(v, 0.0)) for v in post_var)
    if not nonneg:
        return Estimate(tuple(np.rint(f).astype(np.int64) for f in final), sigma, tuple(final))
    values: list[IntArray] = [np.zeros(0, dtype=np.int64)] * n_levels
    values[-1] = np.rint(np.maximum(final[-1], 0.0)).astype(np.int64)
    for k in range(n_levels - 2, -1, -1):
        values[k] = _split(values[k + 1], tree.parent[k], final[k], var[k])
    return Estimate(tuple(values), sigma, tuple(final))


def _split(totals: IntArray, group: IntArray, target: FloatArray, weight: FloatArray) -> IntArray:
    """Per group g: non-negative integers x summing to totals[g], closest to ``target`` in the norm
    Σ (x − target)² / weight. The continuous solution is x = max(0, target − λ_g·weight); λ_g is
    found by bisection, then largest remainders restore integer sums."""
    n_groups = totals.size
    w = np.maximum(weight, 1e-12)
    total_abs = sum_by(group, np.abs(target), n_groups)
    w_min = np.full(n_groups, np.inf)
    np.minimum.at(w_min, group, w)
    t_max = np.full(n_groups, -np.inf)
    np.maximum.at(t_max, group, target)
    lo = -(totals + total_abs + 1.0) / w_min  # every child ≥ its total: sum ≥ total
    hi = np.maximum(t_max, 0.0) / w_min + 1.0  # every child 0: sum ≤ total
    for _ in range(80):
        mid = (lo + hi) / 2.0
        x = np.maximum(target - mid[group] * w, 0.0)
        too_big = sum_by(group, x, n_groups) > totals
        lo = np.where(too_big, mid, lo)
        hi = np.where(too_big, hi, mid)
    x = np.maximum(target - hi[group] * w, 0.0)
    # Scale each family onto its total exactly (bisection leaves a tiny gap), then round.
    sums = sum_by(group, x, n_groups)
    factor = np.divide(totals, sums, out=np.zeros(n_groups), where=sums > 0)
    x = x * factor[group]
    base = np.floor(x).astype(np.int64)
    short = totals - sum_by(group, base, n_groups).astype(np.int64)
    frac = x - base
    order = np.lexsort((-frac, group))
    first = np.searchsorted(group[order], np.arange(n_groups))
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size) - first[group[order]]
    base += (rank < short[group]).astype(np.int64)
    out: IntArray = base
    return out
