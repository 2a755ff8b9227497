"""Empirical privacy audit of the deployed path (hole 7 of issue #9), and proof that it has teeth.

Neighbouring datasets D and D′ (tests/support/audit.py) run once each through the real ingest and
aggregate code; the releaser's release function then draws the window again and again, and a
learned test over each family's whole output (tests/support/audit_stats.py) bounds from below the
Gaussian-DP μ that tells D′ from D. The claim is μ = √(2ρ) for the window's ρ (here 1).

False-alarm rate: the deployed path is flagged with probability at most ``ALPHA`` = 10⁻⁴ per run
while it keeps its claim. Power: each of the three seeded bugs below (realistic ways to lose the
guarantee) must be flagged; BENCHMARKS.md ("Privacy audit", benchmarks/bench_audit.py) records
how far each lands from the claim over repeated runs. Noise comes from a CSPRNG, so draws differ
between runs; the datasets are fixed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.audit import ADVERSARY_MPS, FAMILY, Auditor, halve_sigma
from tests.support.audit_stats import discrete_gaussian_probit_gap


@pytest.fixture(scope="module")
def auditor(tmp_path_factory: pytest.TempPathFactory) -> Auditor:
    return Auditor(Path(tmp_path_factory.mktemp("audit")))


def test_neighbours_differ_by_the_charged_bound(auditor: Auditor) -> None:
    """Through ingest and aggregate, each adversary adds exactly one bounded contribution: 1 device,
    1 moving, the speed clamp in km/h, in its family's centre cell and nowhere else."""
    x0, x1 = auditor.exact(False), auditor.exact(True)
    centre = np.arange(auditor.area.cells.size) % FAMILY == 0
    clamp_kmh = int(np.floor(min(ADVERSARY_MPS, auditor.settings.speed_clamp_mps) * 3.6 + 0.5))
    for metric, bound in (("count", 1), ("moving", 1), ("speed", clamp_kmh)):
        diff = x1[metric] - x0[metric]
        assert (diff[centre] == bound).all() and (diff[~centre] == 0).all(), metric
    assert x0["count"].min() >= 6  # every cell is busy: the audit is not about clipping at zero


def test_gaussian_dp_is_the_yardstick_of_the_deployed_noise(auditor: Auditor) -> None:
    """The claim is read as Gaussian DP (μ = Δ/σ per draw); the discrete Gaussian's threshold
    tests exceed that by at most 2% at the audit's σ, small against the audit's margins."""
    for draw in auditor.release.plan.draws:
        mu = draw.params.bound / draw.params.scale
        assert discrete_gaussian_probit_gap(draw.params.scale, draw.params.bound) <= 1.02 * mu, draw


def test_audit_passes_the_deployed_path(auditor: Auditor) -> None:
    result = auditor.run(auditor.exact(False), auditor.exact(True))
    assert not result.exceeds_claim, f"the deployed path leaks more than it claims: {result}"


def test_audit_detects_sigma_halved(auditor: Auditor) -> None:
    """Seeded bug: every draw uses half the σ its ρ was charged for (ρ × 4, μ × 2)."""
    result = auditor.run(auditor.exact(False), auditor.exact(True), halve_sigma(auditor.release.plan))
    assert result.exceeds_claim, f"σ/2 went unnoticed: {result}"


def test_audit_detects_broken_bounding(auditor: Auditor) -> None:
    """Seeded bug: aggregate keeps 7 cells per device-window while the plan charges for 1, so each
    adversary counts in all 7 cells of its family (μ × ~5)."""
    x1 = auditor.exact(True, cells_per_window=FAMILY)
    assert (x1["count"] - auditor.exact(False)["count"] == 1).all()
    result = auditor.run(auditor.exact(False, cells_per_window=FAMILY), x1)
    assert result.exceeds_claim, f"a device in 7 cells went unnoticed: {result}"


def test_audit_detects_sensitivity_two(auditor: Auditor) -> None:
    """Seeded bug: every partial row is summed twice (a device's rows under two keys, e.g. its
    records in two partitions), so one device moves a cell by 2 while the noise is calibrated for 1."""
    result = auditor.run(auditor.exact(False, count_twice=True), auditor.exact(True, count_twice=True))
    assert result.exceeds_claim, f"Δ = 2 went unnoticed: {result}"
