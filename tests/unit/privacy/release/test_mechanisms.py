"""The deployed noise path: the keyed exact sampler draws, and the noise has the stated distribution.

The noise is a deterministic function of its key, so with the fixed (seeded) keys below each
distribution test has a fixed outcome; each is stated with the false-alarm rate it would have
over the choice of key, ALPHA = 0.001 (the suite's three such tests together: < 0.3%).
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from scipy import stats

from hexpulse.service_area import load_service_area
from hexpulse.settings import load_settings
from privacy.release import sampler
from privacy.release.budget import plan_from_settings
from privacy.release.consistency import build_hierarchy
from privacy.release.mechanisms import NoiseParams, add_noise, params_for_rho
from privacy.release.seeds import seeded_keys
from privacy.release.values import release_values

ALPHA = 0.001
WINDOWS = 4  # × 5146 base cells of the bundled area ≈ 20,600 draws per test


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="scale"):
        NoiseParams("gaussian", 1, 1, 0.0)
    with pytest.raises(ValueError, match="bound"):
        NoiseParams("gaussian", 0, 1, 1.0)
    with pytest.raises(ValueError, match="rho"):
        params_for_rho("gaussian", 1, 1, 0.0)
    with pytest.raises(ValueError, match="mechanism"):
        NoiseParams("uniform", 1, 1, 1.0)  # type: ignore[arg-type]
    p = NoiseParams("gaussian", 1, 1, 2.0)
    with pytest.raises(AttributeError):
        p.scale = 3.0  # type: ignore[misc]


def test_scale_meets_rho_exactly() -> None:
    for mech in ("gaussian", "laplace"):
        for bound, entries in ((1, 1), (180, 1), (1, 3)):
            p = params_for_rho(mech, bound, entries, 3e-4)  # type: ignore[arg-type]
            assert p.rho <= 3e-4
            assert p.rho == pytest.approx(3e-4, rel=1e-6)
    g = params_for_rho("gaussian", 1, 1, 0.5)
    assert g.scale == pytest.approx(1.0, rel=1e-9)  # σ = Δ/√(2ρ)


def test_the_keyed_sampler_draws_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    """One keyed sampler call per vector; no draw from random, numpy.random or OpenDP."""
    import opendp.mod

    calls: list[tuple[str, int]] = []
    real = {name: getattr(sampler, name) for name in ("gaussian_vector", "laplace_vector")}

    def spy(name: str) -> object:
        def wrapped(key: bytes, scale: float, n: int) -> np.ndarray:
            calls.append((name, n))
            return real[name](key, scale, n)  # type: ignore[no-any-return]

        return wrapped

    def forbidden(*_a: object, **_k: object) -> None:
        raise AssertionError("noise must come from the keyed sampler only")

    import privacy.release.mechanisms as mechanisms

    for name in real:
        monkeypatch.setattr(mechanisms, name, spy(name))
    monkeypatch.setattr(opendp.mod.Measurement, "__call__", forbidden)
    for name in ("random", "gauss", "randint", "choice"):
        monkeypatch.setattr(random, name, forbidden)
    for name in ("default_rng", "normal", "laplace", "randint", "random"):
        monkeypatch.setattr(np.random, name, forbidden)
    values = np.full(1000, 50, dtype=np.int64)
    key = seeded_keys(0).key("count", 9)
    noisy = add_noise(values, NoiseParams("gaussian", 1, 1, 10.0), key)
    assert calls == [("gaussian_vector", 1000)]  # one call for the whole vector
    assert noisy.dtype == np.int64 and not np.array_equal(noisy, values)
    assert np.array_equal(noisy, add_noise(values, NoiseParams("gaussian", 1, 1, 10.0), key))
    add_noise(values, NoiseParams("laplace", 1, 1, 10.0), key)
    assert calls[-1] == ("laplace_vector", 1000)


def _discrete_gaussian_pmf(support: np.ndarray, sigma: float) -> np.ndarray:
    k = np.arange(-int(12 * sigma) - 1, int(12 * sigma) + 2)
    norm = np.exp(-(k**2) / (2 * sigma**2)).sum()
    out: np.ndarray = np.exp(-(support.astype(float) ** 2) / (2 * sigma**2)) / norm
    return out


def _variance_ok(resid: np.ndarray, sigma2: np.ndarray | float) -> None:
    """Two-sided chi-square test of Var = sigma2 at level ALPHA (mean known to be 0)."""
    stat = float(np.sum(resid.astype(float) ** 2 / sigma2))
    n = resid.size
    lo, hi = stats.chi2.ppf(ALPHA / 2, n), stats.chi2.ppf(1 - ALPHA / 2, n)
    assert lo <= stat <= hi, f"variance ratio {stat / n:.4f} outside [{lo / n:.4f}, {hi / n:.4f}]"


def test_base_only_path_is_discrete_gaussian() -> None:
    """Exact counts → release path (base resolution only) → residuals ~ discrete Gaussian(σ)."""
    settings = load_settings(release_resolutions=(9,), budget_resolution_shares=("9:1",))
    plan = plan_from_settings(settings)
    tree = build_hierarchy(load_service_area(settings), plan.resolutions)
    sigma = plan.measured("count")[9].params.sigma
    exact = {m: np.full(tree.sizes[0], 5000, dtype=np.int64) for m in plan.metrics}
    resid = np.concatenate(
        [release_values(plan, tree, exact, seeded_keys(i)).metrics["count"].values[0] - 5000
         for i in range(WINDOWS)]  # fmt: skip
    )
    _variance_ok(resid, sigma**2)
    # Chi-square goodness of fit on bins of width σ/2 (tails pooled), against the exact pmf.
    edges = np.concatenate(([-np.inf], np.arange(-3.0, 3.01, 0.5) * sigma, [np.inf]))
    observed = np.histogram(resid, bins=edges)[0]
    support = np.arange(-int(15 * sigma), int(15 * sigma) + 1)
    pmf = _discrete_gaussian_pmf(support, sigma)
    expected = np.array(
        [pmf[(support >= a) & (support < b)].sum() for a, b in zip(edges[:-1], edges[1:], strict=True)]
    )
    expected = expected / expected.sum() * resid.size
    _, p_value = stats.chisquare(observed, expected)
    assert p_value > ALPHA


def test_reconciled_path_has_the_stated_sigma() -> None:
    """Default plan (res 9 and 8 measured, reconciled, 7 derived): residuals match released σ."""
    settings = load_settings()
    plan = plan_from_settings(settings)
    tree = build_hierarchy(load_service_area(settings), plan.resolutions)
    exact = {m: np.full(tree.sizes[0], 5000, dtype=np.int64) for m in plan.metrics}
    truth = [np.full(tree.sizes[0], 5000.0)]
    for k in range(1, len(tree.resolutions)):
        truth.append(np.bincount(tree.parent[k - 1], weights=truth[-1], minlength=tree.sizes[k]))
    resid: list[list[np.ndarray]] = [[], []]
    sig: list[np.ndarray] = []
    for i in range(WINDOWS):
        est = release_values(plan, tree, exact, seeded_keys(i)).metrics["count"]
        for k in (0, 1):
            resid[k].append(est.values[k] - truth[k])
        sig = [est.sigma[0], est.sigma[1]]
    for k in (0, 1):
        _variance_ok(np.concatenate(resid[k]), np.tile(sig[k], WINDOWS) ** 2)
    # Reconciliation makes the base more precise than σ/√share would... and never worse than the
    # base measurement alone would be for res 8 (7 children summed).
    base_sigma = plan.measured("count")[9].params.sigma
    assert float(np.median(sig[0])) <= base_sigma
    assert float(np.median(sig[1])) < math.sqrt(7) * base_sigma


def test_laplace_path_is_discrete_laplace() -> None:
    """HEXPULSE_NOISE_MECHANISM=laplace: residuals ~ discrete Laplace, pmf ∝ exp(−|x|/b)."""
    settings = load_settings(
        noise_mechanism="laplace", release_resolutions=(9,), budget_resolution_shares=("9:1",)
    )
    plan = plan_from_settings(settings)
    tree = build_hierarchy(load_service_area(settings), plan.resolutions)
    params = plan.measured("count")[9].params
    exact = {m: np.full(tree.sizes[0], 5000, dtype=np.int64) for m in plan.metrics}
    resid = np.concatenate(
        [release_values(plan, tree, exact, seeded_keys(i)).metrics["count"].values[0] - 5000
         for i in range(WINDOWS)]  # fmt: skip
    )
    _variance_ok(resid, params.sigma**2)
    b = params.scale
    edges = np.concatenate(([-np.inf], np.arange(-3.0, 3.01, 0.5) * b, [np.inf]))
    support = np.arange(-int(40 * b), int(40 * b) + 1)
    pmf = np.exp(-np.abs(support) / b)
    expected = np.array(
        [pmf[(support >= lo) & (support < hi)].sum() for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    )
    expected = expected / expected.sum() * resid.size
    _, p_value = stats.chisquare(np.histogram(resid, bins=edges)[0], expected)
    assert p_value > ALPHA
