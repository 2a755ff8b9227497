"""The variance of sums of reconciled estimates: equals the dense covariance and the empirical one."""

from __future__ import annotations

import numpy as np

from hexpulse.service_area import service_area_from_geojson
from hexpulse.settings import load_settings
from privacy.release.budget import plan_from_settings
from privacy.release.consistency import build_hierarchy, reconcile, sum_by
from privacy.release.covariance import ancestor_index, base_weights, level_variances, selection_variance
from privacy.release.seeds import seeded_keys
from privacy.release.values import release_values
from tests.unit.privacy.release.test_consistency import TREE, _design

VARIANCES = {0: 4.0, 1: 9.0, 2: 25.0}


def _dense_cov(variances: dict[int, float]) -> np.ndarray:
    design = _design(TREE)
    a = np.vstack([design[k] / np.sqrt(v) for k, v in variances.items()])
    return np.asarray(np.linalg.inv(a.T @ a))


def _mixed_selection() -> dict[int, np.ndarray]:
    """One res-7 cell, a res-8 cell outside it and a few base cells outside both."""
    top = np.array([0])
    in_top = ancestor_index(TREE, 2) == 0
    mids = np.flatnonzero(TREE.parent[1] != 0)[:1]
    in_mid = np.isin(ancestor_index(TREE, 1), mids)
    bases = np.flatnonzero(~in_top & ~in_mid)[:3]
    return {2: top, 1: mids, 0: bases}


def test_sum_variance_equals_dense_inverse() -> None:
    for variances in (VARIANCES, {0: 4.0}, {0: 16.0, 1: 9.0}):
        cov = _dense_cov(variances)
        sel = _mixed_selection()
        a = base_weights(TREE, sel)
        assert set(np.unique(a)) <= {0.0, 1.0} and a.sum() > 3
        assert np.isclose(selection_variance(TREE, variances, sel), a @ cov @ a, rtol=1e-9)
        everything = np.ones(TREE.sizes[0])
        assert np.isclose(selection_variance(TREE, variances, {0: np.arange(TREE.sizes[0])}),
                          everything @ cov @ everything, rtol=1e-9)  # fmt: skip
        # one cell alone: the per-cell σ² the release rows carry
        est = reconcile(TREE, {k: (np.zeros(TREE.sizes[k]), v) for k, v in variances.items()}, nonneg=False)
        for k in range(3):
            assert np.isclose(selection_variance(TREE, variances, {k: np.array([1])}), est.sigma[k][1] ** 2)


def test_unconstrained_estimates_add_up() -> None:
    rng = np.random.default_rng(3)  # test data only
    measured = {k: (rng.integers(-50, 500, TREE.sizes[k]), v) for k, v in VARIANCES.items()}
    est = reconcile(TREE, measured)
    for k in range(2):
        parents = sum_by(TREE.parent[k], est.unconstrained[k], TREE.sizes[k + 1])
        np.testing.assert_allclose(parents, est.unconstrained[k + 1], atol=1e-8)


def test_empirical_variance_of_a_sum_matches() -> None:
    """The deployed path (discrete Gaussian noise, keyed draws) at the default plan: over 400 draws
    the sum of a mixed-resolution selection's estimates is unbiased and has the computed variance."""
    settings = load_settings()
    plan = plan_from_settings(settings)
    tree = build_hierarchy(service_area_from_geojson(_POLY_BIG, 9), plan.resolutions)
    rng = np.random.default_rng(11)  # test data only
    truth = rng.integers(0, 40, tree.sizes[0]) * (rng.random(tree.sizes[0]) < 0.3)
    exact = {"count": truth.astype(np.int64)}
    count_plan = plan.__class__(**{**plan.__dict__, "metrics": ("count",),
                                   "draws": tuple(d for d in plan.draws if d.metric == "count")})  # fmt: skip
    sel = {1: np.array([0, 2]), 0: np.flatnonzero(tree.parent[0] == 1)[:4]}
    a = base_weights(tree, sel)
    var = selection_variance(tree, level_variances(count_plan, tree), sel)
    sums = np.array([
        a @ release_values(count_plan, tree, exact, seeded_keys(s)).metrics["count"].unconstrained[0]
        for s in range(400)
    ])  # fmt: skip
    true_sum = float(a @ truth)
    # 400 draws: the mean is within 4 standard errors and the variance within ±25% (χ² with 399
    # degrees of freedom: a false alarm well below 1e-4).
    assert abs(sums.mean() - true_sum) < 4 * np.sqrt(var / sums.size)
    assert 0.75 < sums.var(ddof=1) / var < 1.25
    # the clipped values are biased on the same (seeded, so deterministic) draws: what sums must
    # never add up
    clipped = np.array([
        a @ release_values(count_plan, tree, exact, seeded_keys(s)).metrics["count"].values[0]
        for s in range(40)
    ])  # fmt: skip
    assert clipped.mean() > 1.2 * true_sum


_POLY_BIG = {
    "type": "Polygon",
    "coordinates": [
        [[113.300, 23.110], [113.350, 23.110], [113.350, 23.150], [113.300, 23.150], [113.300, 23.110]]
    ],
}
