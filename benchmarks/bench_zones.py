"""Registered zones measured directly: error, σ against the optimum, interval coverage.

Data: the simulated city of ``bench_utility.py`` (9,000 devices, a 6,000-device stadium crowd,
30 one-minute windows) and its ground truth of exact per-window, per-cell counts (what aggregate
writes as partials). Zones: the city's registered zones (``simulator.places.ZONE_SETS``: set
``crowd`` = the stadium and three scenic areas, set ``district`` = four 4.9 km squares), their
cells chosen as the API chooses them (``api.zones.zone_cells``: base cells of the service area
whose centres lie in the polygon). Each window's zone sets go through the deployed zone path
(``privacy.release.zones.measure_zones``, the function the releaser calls: exact zone totals →
one keyed discrete-Gaussian draw per set) ``TRIALS`` times with fresh keys, at the default budget
plan (``HEXPULSE_BUDGET_PLAN``). The truth of a zone is summed here directly from the ground-truth
rows, not with the releaser's code.

Figures (last line, JSON):
- ``zone_median_rel_err``: median |estimate − truth| / truth over (zone, window, trial) with a
  truth of at least 500 devices (target ≤ 0.10);
- ``area_sigma_vs_optimal`` per set: the measured standard deviation of estimate − truth divided
  by the optimal σ of one count at the set's share, L / √(2 ρ_set,window) with
  ρ_set,window = share · ρ_day / W (= 26.83/√share at the defaults; target ≤ 1.1);
- ``zone_ci95_coverage``: how often the published 95% interval holds the truth.

Usage: ``.venv/bin/python benchmarks/bench_zones.py [--quick]``
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime

import numpy as np

from api.zones import zone_cells
from hexpulse.service_area import load_service_area
from hexpulse.settings import load_settings
from hexpulse.zones import OPEN_END, Zone
from privacy.release.budget import plan_from_settings
from privacy.release.seeds import fresh_keys
from privacy.release.zones import measure_zones, select_disjoint, zone_rows
from simulator import SimConfig, generate
from simulator.geo import LocalFrame
from simulator.places import ZONE_SETS

QUICK = "--quick" in sys.argv
TRIALS = 5 if QUICK else 40
START_MS = 1_900_000_000_000 // 60_000 * 60_000
SIM = SimConfig(devices=9000, stadium_crowd=6000, duration_s=1800, interval_s=15, start_ms=START_MS,
                malformed_rate=0.0, seed=1)  # fmt: skip


def main() -> None:
    settings = load_settings()
    plan = plan_from_settings(settings)
    area = load_service_area(settings)
    base = area.cells
    frame = LocalFrame(*SIM.center)
    t0 = datetime(2020, 1, 1, tzinfo=UTC)
    zones = [
        Zone(a.slug, 1, zone_set, a.name, "{}", zone_cells(a.polygon(frame), settings.base_resolution,
             area.cell_set), t0, OPEN_END)  # fmt: skip
        for zone_set, areas in ZONE_SETS.items()
        for a in areas
    ]
    measured, dropped = select_disjoint(zones, plan)
    assert not dropped, f"zones left out: {[z.zone_id for z in dropped]}"
    started = time.monotonic()
    sim = generate(SIM, settings)
    print(f"city: {SIM.devices} devices, stadium peak {sim.truth.stadium['peak']} devices "
          f"(generated in {time.monotonic() - started:.1f} s)")  # fmt: skip

    # Ground truth per (window, zone), summed directly from the truth rows.
    owner = {c: z.zone_id for z in measured if z.zone_set == "crowd" for c in z.cells}
    district = {c: z.zone_id for z in measured if z.zone_set == "district" for c in z.cells}
    truth: dict[tuple[int, str], int] = defaultdict(int)
    exact: dict[int, np.ndarray] = {}
    for w, cell, devices, _, _ in sim.truth.cells:
        vec = exact.setdefault(w, np.zeros(base.size, dtype=np.int64))
        vec[int(np.searchsorted(base, np.uint64(cell)))] += devices
        for table in (owner, district):
            if int(cell) in table:
                truth[(w, table[int(cell)])] += devices
    windows = sorted(exact)
    print(f"{len(windows)} windows; zones: " + ", ".join(
        f"{z.zone_id} ({z.zone_set}, {len(z.cells)} cells, truth median "
        f"{statistics.median(truth[(w, z.zone_id)] for w in windows):.0f})" for z in measured))  # fmt: skip

    err: dict[str, list[float]] = defaultdict(list)
    rel: list[float] = []
    rel_by_set: dict[str, list[float]] = defaultdict(list)
    covered = total = 0
    started = time.monotonic()
    for w in windows:
        for _ in range(TRIALS):
            values = measure_zones(plan, measured, base, exact[w], fresh_keys())
            for row in zone_rows(datetime(2030, 1, 1), values, plan=0):
                _, zone_set, zone_id, _, _, est, _, lo, hi, _, _ = row
                t = truth[(w, str(zone_id))]
                err[str(zone_set)].append(float(est) - t)  # type: ignore[arg-type]
                covered += int(float(lo) <= t <= float(hi))  # type: ignore[arg-type]
                total += 1
                if t >= 500:
                    r = abs(float(est) - t) / t  # type: ignore[arg-type]
                    rel.append(r)
                    rel_by_set[str(zone_set)].append(r)
    elapsed = time.monotonic() - started
    per_day_w = settings.windows_per_device_day
    shares = dict(plan.shares)
    sets: dict[str, dict[str, float]] = {}
    for zone_set in plan.zone_sets:
        draw = plan.zone_draw(zone_set)
        assert draw is not None
        share = shares[f"zones.{zone_set}"]
        rho_window = share * settings.budget_rho_per_day / per_day_w
        optimal = settings.cells_per_window / math.sqrt(2 * rho_window)
        e = np.array(err[zone_set])
        sd = float(e.std(ddof=1))
        sets[zone_set] = {
            "share": share,
            "optimal_sigma": round(optimal, 3),
            "published_sigma": round(draw.params.sigma, 3),
            "measured_sd": round(sd, 3),
            "measured_bias": round(float(e.mean()), 3),
            "area_sigma_vs_optimal": round(sd / optimal, 4),
            "published_sigma_vs_optimal": round(draw.params.sigma / optimal, 6),
            "n": int(e.size),
            "zone_median_rel_err_ge500": round(statistics.median(rel_by_set[zone_set]), 5)
            if rel_by_set[zone_set] else float("nan"),  # fmt: skip
        }
        print(f"  zones.{zone_set}: {sets[zone_set]}")
    figures = {
        "trials": TRIALS,
        "windows": len(windows),
        "zones": len(measured),
        "zone_median_rel_err": round(statistics.median(rel), 5),
        "n_ge500": len(rel),
        "area_sigma_vs_optimal": {s: v["area_sigma_vs_optimal"] for s, v in sets.items()},
        "zone_ci95_coverage": round(covered / total, 4),
        "draws_per_s": round(len(windows) * TRIALS * len(plan.zone_sets) / elapsed, 1),
        "sets": sets,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
