"""Least-squares reconciliation: equals dense weighted least squares; outputs add up and are ≥ 0."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hexpulse.service_area import service_area_from_geojson
from privacy.release.consistency import Hierarchy, build_hierarchy, reconcile, sum_by

# A small polygon (~40 res-9 cells, a handful of res-8 and res-7 parents) in the bundled area.
_POLY = {
    "type": "Polygon",
    "coordinates": [
        [[113.320, 23.120], [113.345, 23.120], [113.345, 23.140], [113.320, 23.140], [113.320, 23.120]]
    ],
}
TREE = build_hierarchy(service_area_from_geojson(_POLY, 9), (9, 8, 7))


def _design(tree: Hierarchy) -> list[np.ndarray]:
    """Per level, the 0/1 matrix mapping base cells to that level's cells."""
    out = [np.eye(tree.sizes[0])]
    for k in range(1, len(tree.sizes)):
        m = np.zeros((tree.sizes[k], tree.sizes[k - 1]))
        m[tree.parent[k - 1], np.arange(tree.sizes[k - 1])] = 1
        out.append(m @ out[-1])
    return out


def test_two_pass_equals_dense_weighted_least_squares() -> None:
    rng = np.random.default_rng(7)  # test data only; the product never uses numpy for noise
    design = _design(TREE)
    variances = {0: 4.0, 1: 9.0, 2: 25.0}
    measured = {k: (rng.integers(-20, 200, TREE.sizes[k]), v) for k, v in variances.items()}
    est = reconcile(TREE, measured, nonneg=False)
    a = np.vstack([design[k] / np.sqrt(v) for k, (_, v) in measured.items()])
    b = np.concatenate([y / np.sqrt(v) for y, v in measured.values()])
    x, *_ = np.linalg.lstsq(a, b, rcond=None)
    cov = np.linalg.inv(a.T @ a)
    for k in range(3):
        np.testing.assert_allclose(est.unconstrained[k], design[k] @ x, atol=1e-8)
        np.testing.assert_allclose(est.sigma[k] ** 2, np.diag(design[k] @ cov @ design[k].T), rtol=1e-8)


def test_unmeasured_parents_are_sums_of_children() -> None:
    y = np.arange(TREE.sizes[0], dtype=np.int64) * 3
    est = reconcile(TREE, {0: (y, 16.0)})
    np.testing.assert_array_equal(est.values[1], sum_by(TREE.parent[0], y, TREE.sizes[1]).astype(np.int64))
    kids = np.bincount(TREE.parent[0], minlength=TREE.sizes[1])
    np.testing.assert_allclose(est.sigma[1], 4.0 * np.sqrt(kids))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-300, 3000), min_size=TREE.sizes[0], max_size=TREE.sizes[0]),
    st.lists(st.integers(-300, 3000), min_size=TREE.sizes[1], max_size=TREE.sizes[1]),
    st.floats(0.5, 5000.0),
    st.floats(0.5, 5000.0),
)
def test_released_values_are_consistent_nonnegative_integers(
    base: list[int], mid: list[int], v0: float, v1: float
) -> None:
    est = reconcile(TREE, {0: (np.array(base), v0), 1: (np.array(mid), v1)})
    for k in range(3):
        assert est.values[k].dtype == np.int64
        assert (est.values[k] >= 0).all()
    for k in (1, 2):
        np.testing.assert_array_equal(
            sum_by(TREE.parent[k - 1], est.values[k - 1], TREE.sizes[k]).astype(np.int64), est.values[k]
        )
