"""The exact variance of a sum of reconciled estimates, from the release plan alone.

The reconciled estimate (:func:`privacy.release.consistency.reconcile`, before clipping) is the
generalized least-squares solution x̂ = (HᵀWH)⁻¹HᵀW y, where H maps base cells to every measured
node and W = diag(1/σ²) holds the noise variance of each measured level. It is linear in y, so
Cov(x̂) = (HᵀWH)⁻¹ depends only on the plan (which levels are measured, with which σ) and on the
tree, never on the data. For a selection with base-cell weights a (a coarser cell counts as all of
its base descendants, since the estimates add up), Var(aᵀx̂) = aᵀ(HᵀWH)⁻¹a. The two-pass solver
computes (HᵀWH)⁻¹ b for b = HᵀW y; feeding it the base "measurement" y₀ = σ₀²·a and zeros at the
other measured levels makes b = a, so one solver call gives u = (HᵀWH)⁻¹a and the variance aᵀu.
Units: counts are persons, variances persons².
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from privacy.release.budget import ReleasePlan
from privacy.release.consistency import FloatArray, Hierarchy, IntArray, reconcile


def ancestor_index(tree: Hierarchy, level: int) -> IntArray:
    """For every base cell, the index of its ancestor at ``level`` (0 = the base itself)."""
    idx: IntArray = np.arange(tree.sizes[0], dtype=np.int64)
    for j in range(level):
        idx = tree.parent[j][idx]
    return idx


def level_variances(plan: ReleasePlan, tree: Hierarchy, metric: str = "count") -> dict[int, float]:
    """Noise variance (persons²) of each measured level of ``metric``, keyed by level index."""
    return {tree.resolutions.index(res): d.params.sigma**2 for res, d in plan.measured(metric).items()}


def base_weights(tree: Hierarchy, selection: Mapping[int, npt.NDArray[np.int64]]) -> FloatArray:
    """Base-cell weights a of a selection ``{level: indices of selected cells at that level}``: each
    base cell counts once per selected cell it lies in (a disjoint cover gives 0/1 weights)."""
    a = np.zeros(tree.sizes[0], dtype=np.float64)
    for level, idx in selection.items():
        if idx.size == 0:
            continue
        picked = np.zeros(tree.sizes[level], dtype=np.float64)
        np.add.at(picked, idx, 1.0)
        a += picked[ancestor_index(tree, level)]
    return a


def sum_variance(tree: Hierarchy, variances: Mapping[int, float], weights: FloatArray) -> float:
    """Var(Σᵢ aᵢ x̂ᵢ) of the reconciled base estimates x̂ for base weights ``weights`` (persons²)."""
    if 0 not in variances:
        raise ValueError("the base level must be measured")
    measured: dict[int, tuple[FloatArray | IntArray, float]] = {
        k: (np.zeros(tree.sizes[k]), v) for k, v in variances.items()
    }
    measured[0] = (weights * variances[0], variances[0])
    u = reconcile(tree, measured, nonneg=False).unconstrained[0]
    return max(float(weights @ u), 0.0)


def selection_variance(
    tree: Hierarchy, variances: Mapping[int, float], selection: Mapping[int, npt.NDArray[np.int64]]
) -> float:
    """Var of the sum of the reconciled estimates of the selected cells (persons²)."""
    return sum_variance(tree, variances, base_weights(tree, selection))
