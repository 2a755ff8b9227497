"""How far the privacy audit (tests/unit/privacy/release/test_audit.py) lands from its claim.

The audit's pass/fail is a lower confidence bound μ_lb on the Gaussian-DP μ that tells D′ from D,
compared with the claimed μ = 1. This repeats the same audit (same datasets, same draw counts,
fresh noise each time) for the deployed path and the three seeded bugs and reports μ_lb's mean,
minimum and maximum per variant, and how often each was flagged. No services needed.
Usage: ``.venv/bin/python benchmarks/bench_audit.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/support is not installed

from tests.support.audit import FAMILY, Auditor, halve_sigma  # noqa: E402
from tests.support.audit_stats import gdp_mu  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    auditor = Auditor(Path(tempfile.mkdtemp(prefix="hexpulse-audit-")))
    plan = auditor.release.plan
    variants = {
        "deployed": lambda: auditor.run(auditor.exact(False), auditor.exact(True)),
        "sigma_halved": lambda: auditor.run(auditor.exact(False), auditor.exact(True), halve_sigma(plan)),
        "broken_bounding": lambda: auditor.run(
            auditor.exact(False, cells_per_window=FAMILY), auditor.exact(True, cells_per_window=FAMILY)
        ),
        "sensitivity_two": lambda: auditor.run(
            auditor.exact(False, count_twice=True), auditor.exact(True, count_twice=True)
        ),
    }
    claimed = round(gdp_mu(plan.rho_cells_per_window), 3)
    figures: dict[str, object] = {"runs": args.runs, "claimed_mu": claimed}
    started = time.process_time()
    for name, run in variants.items():
        bounds, flagged = [], 0
        for _ in range(args.runs):
            auditor.forget_draws()
            result = run()
            bounds.append(result.mu_lower)
            flagged += result.exceeds_claim
        print(f"{name}: mu_lb mean {statistics.fmean(bounds):.3f} min {min(bounds):.3f} "
              f"max {max(bounds):.3f}, flagged {flagged}/{args.runs}", flush=True)  # fmt: skip
        figures[f"{name}_mu_lb_mean"] = round(statistics.fmean(bounds), 3)
        figures[f"{name}_mu_lb_min"] = round(min(bounds), 3)
        figures[f"{name}_mu_lb_max"] = round(max(bounds), 3)
        figures[f"{name}_flagged"] = flagged
    figures["cpu_s_per_audit"] = round((time.process_time() - started) / (len(variants) * args.runs), 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
