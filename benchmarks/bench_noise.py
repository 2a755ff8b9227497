"""Noise cost: the exact keyed samplers per draw, against OpenDP's sampler, and one whole window.

Prints CPU µs per draw of ``privacy.release.sampler`` (discrete Gaussian at the default plan's count
σ and speed σ, discrete Laplace) next to OpenDP's ``make_gaussian``/``make_laplace`` (what drew
the noise before; it cannot be keyed), and the time of ``privacy.release.values.release_values``
for one window of the bundled service area under the default plan (every measured family noised,
then reconciled) — the releaser's compute per window. No services needed. Last line: JSON.

Usage: ``.venv/bin/python benchmarks/bench_noise.py [--quick]``
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np

from hexpulse.service_area import load_service_area
from hexpulse.settings import load_settings
from privacy.release.budget import plan_from_settings
from privacy.release.consistency import build_hierarchy
from privacy.release.sampler import gaussian_vector, laplace_vector
from privacy.release.seeds import fresh_keys
from privacy.release.values import release_values

QUICK = "--quick" in sys.argv
DRAWS = 5_000 if QUICK else 20_000
REPEATS = 3 if QUICK else 5


def _best_us(fn: object, n: int) -> float:
    """Best of REPEATS runs, CPU µs per draw of this process (``time.process_time``: on a machine
    shared with other work, wall time measures the neighbours; OpenDP's Rust sampler runs in this
    process, so it is counted the same way)."""
    times = []
    for _ in range(REPEATS):
        t0 = time.process_time()
        fn()  # type: ignore[operator]
        times.append(time.process_time() - t0)
    return min(times) / n * 1e6


def main() -> None:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    settings = load_settings()
    plan = plan_from_settings(settings)
    sigma_count = plan.measured("count")[9].params.sigma
    sigma_speed = plan.measured("speed")[9].params.sigma
    domain = dp.vector_domain(dp.atom_domain(T="i64"))
    zeros = [0] * DRAWS
    figures: dict[str, float] = {}
    for name, sigma in (("count", sigma_count), ("speed", sigma_speed)):
        ours = _best_us(lambda s=sigma: gaussian_vector(fresh_keys().key("count", 9), s, DRAWS), DRAWS)
        m = dp.m.make_gaussian(domain, dp.l2_distance(T="i64"), scale=sigma)
        theirs = _best_us(lambda m=m: m(zeros), DRAWS)
        figures[f"gaussian_{name}_us"] = round(ours, 2)
        figures[f"opendp_gaussian_{name}_us"] = round(theirs, 2)
        print(f"discrete Gaussian sigma={sigma:.2f}: keyed exact sampler {ours:.2f} CPU us/draw, "
              f"OpenDP {theirs:.2f} CPU us/draw")  # fmt: skip
    b = 30.5
    ours = _best_us(lambda: laplace_vector(fresh_keys().key("count", 9), b, DRAWS), DRAWS)
    m = dp.m.make_laplace(domain, dp.l1_distance(T="i64"), scale=b)
    theirs = _best_us(lambda: m(zeros), DRAWS)
    figures["laplace_us"], figures["opendp_laplace_us"] = round(ours, 2), round(theirs, 2)
    print(f"discrete Laplace b={b}: keyed exact sampler {ours:.2f} CPU us/draw, "
          f"OpenDP {theirs:.2f} CPU us/draw")  # fmt: skip

    tree = build_hierarchy(load_service_area(settings), plan.resolutions)
    rng = np.random.default_rng(1)
    crowd = rng.poisson(30, tree.sizes[0]).astype(np.int64)
    exact = {"count": crowd, "moving": crowd // 2, "speed": crowd // 2 * 30}
    draws = sum(tree.sizes[tree.resolutions.index(d.res)] for d in plan.draws)
    cpu, wall = [], []
    for _ in range(REPEATS):
        t0, c0 = time.perf_counter(), time.process_time()
        release_values(plan, tree, exact, fresh_keys())
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    figures["window_release_values_cpu_s"] = round(min(cpu), 3)
    figures["window_release_values_wall_s_median"] = round(statistics.median(wall), 3)
    figures["window_draws"] = draws
    print(f"one window ({sum(tree.sizes)} cells at {list(tree.resolutions)}, {draws} draws): "
          f"best {min(cpu):.3f} CPU s, median wall {statistics.median(wall):.3f} s")  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
