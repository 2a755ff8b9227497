"""Empirical privacy audit of the deployed path (black box, neighbouring inputs).

Neighbours: D has 10 devices in every base cell; D' has one device more: a "heavy" device that
pings 20 times in one cell and 3 times in each of its 6 neighbours under the same parent, at
200 m/s. The path (aggregate's bounding → noise → least-squares reconciliation → non-negative
integers) runs on both many times and a
threshold test "released count ≥ t" (and "≤ t") gives, with Clopper-Pearson bounds, a lower bound
ε_lb = ln((P̂₁ − δ) / P̂₀) that holds with confidence 1 − ALPHA over all thresholds (Bonferroni).
A correct mechanism yields ε_lb ≤ ε with probability ≥ 1 − ALPHA; the same audit of a path with the
noise removed must flag it.

Runs: with releases at resolutions 9 and 8 only, every res-8 family of the service area is an
independent copy of the mechanism (noise is independent per cell; reconciliation acts within a
family), so one window of the bundled area is ~600 independent runs on the same neighbour pair.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

import privacy.release.values
from aggregate.bounding import Bounds, compute_partials
from aggregate.columns import Pings
from hexpulse.service_area import load_service_area
from hexpulse.settings import load_settings
from privacy.release.budget import ReleasePlan, eps_from_rho, plan_from_settings
from privacy.release.consistency import Hierarchy, build_hierarchy
from privacy.release.seeds import seeded_keys
from privacy.release.values import release_values

ALPHA = 0.001
DELTA = 1e-6
THRESHOLDS = np.arange(-10, 31)  # released count values around the true 10 / 11


def _setup() -> tuple[ReleasePlan, Hierarchy, np.ndarray]:
    settings = load_settings(
        release_resolutions=(9, 8),
        release_metrics=("count",),
        windows_per_device_day=1,
        budget_rho_per_day=0.05,
        report_delta=DELTA,
    )
    plan = plan_from_settings(settings)
    tree = build_hierarchy(load_service_area(settings), plan.resolutions)
    sizes = np.bincount(tree.parent[0], minlength=tree.sizes[1])
    full = np.flatnonzero(sizes == 7)
    # The first child (lowest index) of every full family is the cell that differs.
    first = np.full(tree.sizes[1], -1)
    for i in range(tree.sizes[0] - 1, -1, -1):
        first[tree.parent[0][i]] = i
    return plan, tree, first[full]


W0_MS = 1_900_000_000_000 // 60_000 * 60_000


def _bounded(tree: Hierarchy, target: np.ndarray, heavy: bool) -> np.ndarray:
    """Exact per-cell device counts after aggregate's bounding of a synthetic window of pings."""
    base = tree.cells[0]
    cell = np.repeat(base, 40)  # 10 devices × 4 pings per cell
    device = np.arange(cell.size, dtype=np.uint64) // 4 + 1
    ts = W0_MS + np.tile(np.arange(4) * 10_000, base.size * 10)
    speed = np.ones(cell.size, dtype=np.float32)
    if heavy:
        # One extra device per family: most pings in the target cell, a few in each sibling.
        siblings = [np.flatnonzero(tree.parent[0] == tree.parent[0][t]) for t in target]
        h_cell = np.concatenate([np.concatenate([np.full(20, base[t]), np.repeat(base[sib[sib != t]], 3)])
                                 for t, sib in zip(target, siblings, strict=True)])  # fmt: skip
        h_dev = np.concatenate([np.full(20 + 3 * (sib.size - 1), 10**12 + i, dtype=np.uint64)
                                for i, sib in enumerate(siblings)])  # fmt: skip
        cell = np.concatenate([cell, h_cell])
        device = np.concatenate([device, h_dev])
        ts = np.concatenate([ts, W0_MS + np.arange(h_cell.size) % 38 * 1000])
        speed = np.concatenate([speed, np.full(h_cell.size, 200.0, dtype=np.float32)])
    n = cell.size
    pings = Pings(
        np.arange(n, dtype=np.int64), device, ts.astype(np.int64), np.zeros(n), np.zeros(n), speed, cell
    )
    part = compute_partials(pings, Bounds(window_ms=60_000))
    out = np.zeros(base.size, dtype=np.int64)
    out[np.searchsorted(base, part.cell)] = part.devices
    return out


def _samples(plan: ReleasePlan, tree: Hierarchy, target: np.ndarray, heavy: bool, windows: int) -> np.ndarray:
    exact = _bounded(tree, target, heavy)
    out = [
        release_values(plan, tree, {"count": exact}, seeded_keys(i + 1000 * heavy))
        .metrics["count"].values[0][target]
        for i in range(windows)
    ]
    return np.concatenate(out)


def test_bounding_limits_the_heavy_device_to_one_cell() -> None:
    _, tree, target = _setup()
    diff = _bounded(tree, target, True) - _bounded(tree, target, False)
    assert set(np.flatnonzero(diff)) == set(target.tolist()) and (diff[target] == 1).all()


def _cp_upper(k: int, n: int, a: float) -> float:
    return 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))


def _cp_lower(k: int, n: int, a: float) -> float:
    return 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))


def epsilon_lower_bound(x0: np.ndarray, x1: np.ndarray, delta: float) -> float:
    """Largest ε_lb over threshold events, each bound at level ALPHA / (#events × 2 bounds)."""
    a = ALPHA / (4 * THRESHOLDS.size)
    best = 0.0
    for t in THRESHOLDS:
        for s0, s1 in ((x0 >= t, x1 >= t), (x1 <= t, x0 <= t)):  # both directions of the shift
            for e0, e1 in ((s0, s1), (s1, s0)):
                p1 = _cp_lower(int(e1.sum()), e1.size, a)
                p0 = _cp_upper(int(e0.sum()), e0.size, a)
                if p1 - delta > 0 and p0 > 0:
                    best = max(best, math.log((p1 - delta) / p0))
    return best


def test_release_path_does_not_leak_more_than_claimed() -> None:
    plan, tree, target = _setup()
    claimed = eps_from_rho(plan.rho_per_device_day, DELTA)
    x0 = _samples(plan, tree, target, False, 30)
    x1 = _samples(plan, tree, target, True, 30)
    assert x0.size >= 15_000
    eps_lb = epsilon_lower_bound(x0, x1, DELTA)
    assert eps_lb <= claimed, f"empirical ε ≥ {eps_lb:.3f} exceeds the claimed ε = {claimed:.3f}"


def test_audit_catches_a_path_without_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    plan, tree, target = _setup()
    claimed = eps_from_rho(plan.rho_per_device_day, DELTA)
    monkeypatch.setattr(
        privacy.release.values, "add_noise", lambda values, _params, _key: values.astype(np.int64)
    )
    x0 = _samples(plan, tree, target, False, 10)
    x1 = _samples(plan, tree, target, True, 10)
    assert epsilon_lower_bound(x0, x1, DELTA) > claimed
