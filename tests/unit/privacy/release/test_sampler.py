"""The exact samplers: the right distributions, reproducible per key, independent across keys.

The samplers are deterministic given the key, so every test below uses fixed keys and has a fixed
outcome. Each statistical test is still stated with its false-alarm rate: over the choice of key,
it would reject a correct sampler with probability ALPHA = 0.001. The one test with real
randomness (OpenDP's sampler, which cannot be seeded) has that false-alarm rate per run.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from privacy.release import sampler
from privacy.release.sampler import KeyStream, gaussian_vector, laplace_vector
from privacy.release.seeds import seeded_keys

ALPHA = 0.001
N = 20_000


def _key(i: int) -> bytes:
    return seeded_keys(i).key("count", 9)


def _gof(draws: np.ndarray, pmf_of: object, scale: float) -> float:
    """p-value of a chi-square goodness of fit on integer bins about scale/2 wide over ±3·scale
    (tails pooled) against the exact pmf."""
    width = max(1, int(scale // 2))
    reach = max(3 * scale, 2.0) // width * width
    edges = np.concatenate(([-np.inf], np.arange(-reach, reach + width, width) - 0.5, [np.inf]))
    observed = np.histogram(draws, bins=edges)[0]
    support = np.arange(-int(40 * scale) - 2, int(40 * scale) + 3)
    pmf = pmf_of(support)  # type: ignore[operator]
    pmf = pmf / pmf.sum()
    expected = np.array(
        [pmf[(support >= a) & (support < b)].sum() for a, b in zip(edges[:-1], edges[1:], strict=True)]
    )
    return float(stats.chisquare(observed, expected * draws.size).pvalue)


def test_keystream_is_rfc8439_chacha20() -> None:
    """The all-zero key's keystream is RFC 8439's test vector A.1 #1: draws stay reproducible
    across library versions for as long as a day key lives."""
    stream = KeyStream(bytes(32))
    words = [stream.word() for _ in range(4)]
    assert b"".join(w.to_bytes(4, "little") for w in words).hex() == "76b8e0ada0f13d90405d6ae55386bd28"
    with pytest.raises(ValueError, match="32 bytes"):
        KeyStream(b"short")


@pytest.mark.parametrize("n", [6, 1000, 2**40 + 3])
def test_uniform_integers_are_uniform(n: int) -> None:
    stream = KeyStream(_key(n))
    draws = np.array([stream.below(n) for _ in range(30_000)], dtype=np.float64)
    assert draws.min() >= 0 and draws.max() < n
    # Each value for n = 6; else 20 equal-width bins of [0, n), equal mass up to 1/n.
    bins = np.arange(7) - 0.5 if n == 6 else np.linspace(0, n, 21)
    assert stats.chisquare(np.histogram(draws, bins=bins)[0]).pvalue > ALPHA


@pytest.mark.parametrize("sigma", [1.0, 48.98979485566356, 12471.3])
def test_discrete_gaussian_matches_the_exact_pmf(sigma: float) -> None:
    draws = gaussian_vector(_key(1), sigma, N)
    assert draws.dtype == np.int64
    assert _gof(draws, lambda x: np.exp(-(x.astype(float) ** 2) / (2 * sigma**2)), sigma) > ALPHA
    # Mean 0 and variance ≈ σ² (the discrete Gaussian's is slightly below σ² for small σ).
    assert abs(draws.mean()) < 3.29 * sigma / math.sqrt(N)
    lo, hi = stats.chi2.ppf(ALPHA / 2, N), stats.chi2.ppf(1 - ALPHA / 2, N)
    assert lo <= float(np.sum(draws.astype(float) ** 2)) / sigma**2 <= hi


@pytest.mark.parametrize("scale", [0.7, 7.3, 180.0])
def test_discrete_laplace_matches_the_exact_pmf(scale: float) -> None:
    draws = laplace_vector(_key(2), scale, N)
    assert _gof(draws, lambda x: np.exp(-np.abs(x) / scale), scale) > ALPHA


def test_same_key_reproduces_the_draw() -> None:
    a = gaussian_vector(_key(3), 49.0, 5000)
    assert np.array_equal(a, gaussian_vector(_key(3), 49.0, 5000))
    # A prefix is a prefix: the i-th entry depends only on the key and the entries before it.
    assert np.array_equal(a[:100], gaussian_vector(_key(3), 49.0, 100))
    assert np.array_equal(laplace_vector(_key(3), 30.0, 500), laplace_vector(_key(3), 30.0, 500))


def test_different_keys_are_independent() -> None:
    """Pearson correlation of draws under two keys: r·√n ~ N(0, 1) under independence."""
    a = gaussian_vector(_key(4), 49.0, N).astype(float)
    b = gaussian_vector(_key(5), 49.0, N).astype(float)
    r = float(np.corrcoef(a, b)[0, 1])
    assert abs(r) * math.sqrt(N) < stats.norm.ppf(1 - ALPHA / 2)
    # Keys that differ in one draw family only (another metric, another resolution) too.
    c = gaussian_vector(seeded_keys(4).key("moving", 9), 49.0, N).astype(float)
    d = gaussian_vector(seeded_keys(4).key("count", 8), 49.0, N).astype(float)
    for x, y in ((a, c), (a, d), (c, d)):
        assert abs(float(np.corrcoef(x, y)[0, 1])) * math.sqrt(N) < stats.norm.ppf(1 - ALPHA / 6)


@pytest.mark.parametrize("mechanism", ["gaussian", "laplace"])
def test_same_distribution_as_opendp(mechanism: str) -> None:
    """Two-sample chi-square test (homogeneity of binned counts) against OpenDP's vetted sampler,
    which draws from the OS (false-alarm rate ALPHA per run)."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    domain = dp.vector_domain(dp.atom_domain(T="i64"))
    scale = 48.98979485566356 if mechanism == "gaussian" else 30.5
    if mechanism == "gaussian":
        theirs = np.asarray(dp.m.make_gaussian(domain, dp.l2_distance(T="i64"), scale=scale)([0] * N))
        ours = gaussian_vector(_key(6), scale, N)
    else:
        theirs = np.asarray(dp.m.make_laplace(domain, dp.l1_distance(T="i64"), scale=scale)([0] * N))
        ours = laplace_vector(_key(6), scale, N)
    edges = np.concatenate(([-np.inf], np.arange(-3.0, 3.01, 0.25) * scale, [np.inf]))
    table = np.array([np.histogram(ours, bins=edges)[0], np.histogram(theirs, bins=edges)[0]])
    assert stats.chi2_contingency(table).pvalue > ALPHA


def test_scales_are_rounded_up_never_down() -> None:
    """The sampler's σ² (or b) is the smallest multiple of 2^-32 at or above the plan's."""
    for value in (48.98979485566356, 1.0, 1e-3, 12471.3):
        exact = Fraction(value) ** 2
        n = sampler._scaled_up(exact)
        assert Fraction(n, 2**32) >= exact > Fraction(n - 1, 2**32)
    with pytest.raises(ValueError, match="finite number > 0"):
        gaussian_vector(_key(7), 0.0, 3)
    with pytest.raises(ValueError, match="finite number > 0"):
        laplace_vector(_key(7), float("nan"), 3)


def test_bernoulli_exp_is_exact_for_large_arguments() -> None:
    """exp(−γ) for γ > 1 goes through the ⌊γ⌋ factors of exp(−1): check γ = 2.5 by frequency."""
    stream = KeyStream(_key(8))
    hits = sum(sampler.bernoulli_exp(stream, 5, 2) for _ in range(N))
    p = math.exp(-2.5)
    assert abs(hits - N * p) < stats.norm.ppf(1 - ALPHA / 2) * math.sqrt(N * p * (1 - p))


@pytest.mark.parametrize(("num", "den"), [(1, 3), (1, 2), (2**40 + 1, 2**41), (7, 2**70 + 9), (5, 5)])
def test_bernoulli_is_exact(num: int, den: int) -> None:
    """Bernoulli(num/den) by word-wise comparison with num/den's binary expansion: terminating
    (1/2), non-terminating (1/3), multi-word denominators and p = 1, by frequency."""
    stream = KeyStream(_key(9))
    hits = sum(sampler.bernoulli(stream, num, den) for _ in range(N))
    p = num / den
    if p == 1.0:
        assert hits == N
        return
    sd = math.sqrt(N * p * (1 - p))
    assert abs(hits - N * p) <= max(stats.norm.ppf(1 - ALPHA / 2) * sd, 0.5)
