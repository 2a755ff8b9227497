"""Privacy utility: how close the DP releases are to the exact counts, and how fast they appear.

Data: the simulated city (``simulator``; stadium crowd 6,000 devices, 9,000 devices,
30 one-minute windows) and its ground-truth file of exact per-window, per-cell counts, which are
what the aggregate layer writes as partials. The release path (:func:`privacy.release.values.
release_values`: exact keyed noise → reconciliation → non-negative integers) runs ``TRIALS`` times
per window (fresh keys each time) with the default budget (ρ = 1 per device-day, 1,440 windows a day).

Prints: the strategy comparison (where the budget goes), coverage of the 95% intervals, the
error-vs-budget curve, the ratio to independent discrete-Laplace releases with basic composition
at the same device-day ε, and the release lag measured against the real ClickHouse with the
``hexpulse release`` loop. Last line: JSON figures.

Also the sums of estimates (issue #11, benchmarks/utility_sums.py): city_sum_bias per resolution
(and what the clipped display values give), area_ci95_coverage over random 5–500 km² polygons at
cover resolutions 9/8/7, and area σ by polygon size.

Usage: ``.venv/bin/python benchmarks/bench_utility.py [--quick] [--sums-only]``
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from utility_sums import score_sums

from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings, load_settings
from hexpulse.store import apply_migrations, connect
from hexpulse.times import naive_utc, windows_per_day
from privacy.release.budget import ReleasePlan, eps_from_rho, plan_from_settings
from privacy.release.consistency import Hierarchy, build_hierarchy, sum_by
from privacy.release.covariance import ancestor_index
from privacy.release.mechanisms import NoiseParams, add_noise
from privacy.release.seeds import fresh_keys
from privacy.release.values import interval, release_values
from simulator import SimConfig, generate

QUICK = "--quick" in sys.argv
SUMS_ONLY = "--sums-only" in sys.argv  # just the sums section (benchmarks/utility_sums.py)
TRIALS = 2 if QUICK else 6
SUM_DRAWS = 60 if QUICK else 2000
SUM_POLYGONS = 24 if QUICK else 60
START_MS = 1_900_000_000_000 // 60_000 * 60_000
SIM = SimConfig(devices=9000, stadium_crowd=6000, duration_s=1800, interval_s=15, start_ms=START_MS,
                malformed_rate=0.0, seed=1)  # fmt: skip


Windows = list[tuple[int, dict[str, np.ndarray]]]


@dataclass
class Scores:
    rel9: list[float]
    rel8: list[float]
    sig9: list[float] = field(default_factory=list)
    sig8: list[float] = field(default_factory=list)
    covered: int = 0
    total: int = 0
    covered_nonzero: int = 0
    total_nonzero: int = 0

    def add(self, k: int, truth: np.ndarray, value: np.ndarray, sigma: np.ndarray, raw: np.ndarray) -> None:
        if k == 0:
            big = truth >= 1000
            self.rel9 += (np.abs(value[big] - truth[big]) / truth[big]).tolist()
            self.sig9 += sigma[big].tolist()
        elif k == 1:
            big = truth >= 500
            self.rel8 += (np.abs(value[big] - truth[big]) / truth[big]).tolist()
            self.sig8 += sigma[big].tolist()
        lo, hi = interval(value, raw, sigma)
        hit = (lo <= truth) & (truth <= hi)
        self.covered += int(hit.sum())
        self.total += hit.size
        nz = truth > 0
        self.covered_nonzero += int(hit[nz].sum())
        self.total_nonzero += int(nz.sum())

    def summary(self) -> dict[str, float]:
        return {
            "median_rel_err_res9_ge1000": round(statistics.median(self.rel9), 5),
            "median_rel_err_res8_ge500": round(statistics.median(self.rel8), 5),
            "ci95_coverage_all": round(self.covered / self.total, 4),
            "ci95_coverage_nonzero": round(self.covered_nonzero / self.total_nonzero, 4),
            "sigma_res9_ge1000": round(statistics.median(self.sig9), 2),
            "sigma_res8_ge500": round(statistics.median(self.sig8), 2),
            "n_res9_ge1000": len(self.rel9),
            "n_res8_ge500": len(self.rel8),
        }


def city_windows(settings: Settings, tree: Hierarchy) -> list[tuple[int, dict[str, np.ndarray]]]:
    """(window start ms, exact base vectors per metric in tree order) for every window of the run."""
    sim = generate(SIM, settings)
    base = tree.cells[0]
    by_window: dict[int, dict[str, np.ndarray]] = {}
    for w, cell, devices, moving, speed in sim.truth.cells:
        vec = by_window.setdefault(
            w, {m: np.zeros(base.size, dtype=np.int64) for m in ("count", "moving", "speed")}
        )
        i = int(np.searchsorted(base, np.uint64(cell)))
        vec["count"][i] += devices
        vec["moving"][i] += moving
        vec["speed"][i] += speed
    print(f"city: {SIM.devices} devices, stadium peak {sim.truth.stadium['peak']} devices, "
          f"{len(by_window)} windows")  # fmt: skip
    return sorted(by_window.items())


def levels(tree: Hierarchy, base: np.ndarray) -> list[np.ndarray]:
    out = [base.astype(np.int64)]
    for k in range(1, len(tree.resolutions)):
        out.append(sum_by(tree.parent[k - 1], out[-1], tree.sizes[k]).astype(np.int64))
    return out


def score_plan(plan: ReleasePlan, tree: Hierarchy, windows: Windows, trials: int) -> Scores:
    scores = Scores([], [])
    for _, exact in windows:
        truth = levels(tree, exact["count"])
        for _ in range(trials):
            est = release_values(plan, tree, exact, fresh_keys()).metrics["count"]
            for k in range(len(tree.resolutions)):
                scores.add(k, truth[k], est.values[k], est.sigma[k], est.unconstrained[k])
    return scores


def score_independent(
    draws: dict[int, NoiseParams], tree: Hierarchy, windows: Windows, trials: int
) -> Scores:
    """Each measured resolution noised and clipped on its own; unmeasured ones summed from the base."""
    scores = Scores([], [])
    for _, exact in windows:
        truth = levels(tree, exact["count"])
        for _ in range(trials):
            base_noisy = None
            for k, res in enumerate(tree.resolutions):
                if res in draws:
                    p = draws[res]
                    noisy = add_noise(truth[k], p, fresh_keys().key("count", res))
                    sigma = np.full(truth[k].size, p.sigma)
                    if k == 0:
                        base_noisy = noisy
                else:
                    assert base_noisy is not None
                    noisy = levels(tree, base_noisy)[k]
                    base_var = np.full(tree.sizes[0], draws[tree.resolutions[0]].sigma ** 2)
                    sigma = np.sqrt(sum_by(ancestor_index(tree, k), base_var, tree.sizes[k]))
                scores.add(k, truth[k], np.maximum(noisy, 0), sigma, noisy.astype(float))
    return scores


def strategies(settings: Settings, tree: Hierarchy, windows: Windows) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    options = {
        "base_only(9:1)": ("9:1",),
        "split(9:.6,8:.4)+LS": ("9:0.6", "8:0.4"),
        "split(9:.5,8:.3,7:.2)+LS": ("9:0.5", "8:0.3", "7:0.2"),
        "split(1/3 each)+LS": ("9:1", "8:1", "7:1"),
    }
    for name, shares in options.items():
        total = sum(float(s.split(":")[1]) for s in shares)
        norm = tuple(f"{s.split(':')[0]}:{float(s.split(':')[1]) / total}" for s in shares)
        plan = plan_from_settings(settings.model_copy(update={"budget_resolution_shares": norm}))
        out[name] = score_plan(plan, tree, windows, TRIALS).summary()
        print(f"  {name:28s} {out[name]}", flush=True)
    thirds = ("9:0.3333333", "8:0.3333333", "7:0.3333333")
    plan = plan_from_settings(settings.model_copy(update={"budget_resolution_shares": thirds}))
    draws = {d.res: d.params for d in plan.draws if d.metric == "count"}
    out["split(1/3 each), no LS"] = score_independent(draws, tree, windows, TRIALS).summary()
    print(f"  {'split(1/3 each), no LS':28s} {out['split(1/3 each), no LS']}", flush=True)
    return out


def laplace_basic(settings: Settings, tree: Hierarchy, windows: Windows) -> dict[str, float]:
    """Independent discrete-Laplace releases of every (window, resolution, metric), basic composition
    of pure ε at the same device-day ε as our ρ gives at δ."""
    eps_day = eps_from_rho(settings.budget_rho_per_day, settings.report_delta)
    draws_per_day = (
        windows_per_day(settings.window_s) * len(settings.release_resolutions) * len(settings.release_metrics)
    )
    eps_draw = eps_day / draws_per_day
    p = NoiseParams("laplace", 1, 1, 1.0 / eps_draw)
    draws = {r: p for r in settings.release_resolutions}
    s = score_independent(draws, tree, windows, TRIALS).summary()
    s["eps_per_draw"] = eps_draw
    s["sigma"] = p.sigma
    return s


def pipeline_dp_compare(settings: Settings, tree: Hierarchy, windows: Windows) -> dict[str, float]:
    """PipelineDP (Google's batch DP engine) on the same windows: res-9 counts over the same public
    partitions, Gaussian noise, one device per partition per window. Its batch model accounts one
    aggregation at a time, so each window gets ε_day/W and δ/W (basic composition across the day's
    W windows) for counts alone, which is more than our counts get (half of the window's ρ)."""
    try:
        import pipeline_dp
    except ImportError:
        return {"skipped": 1.0}
    eps_day = eps_from_rho(settings.budget_rho_per_day, settings.report_delta)
    w = settings.windows_per_device_day
    rel: list[float] = []
    base = tree.cells[0]
    for _, exact in windows:
        records = [
            (f"{i}-{j}", i) for i in np.flatnonzero(exact["count"]).tolist() for j in range(exact["count"][i])
        ]
        accountant = pipeline_dp.NaiveBudgetAccountant(
            total_epsilon=eps_day / w, total_delta=settings.report_delta / w
        )
        engine = pipeline_dp.DPEngine(accountant, pipeline_dp.LocalBackend())
        params = pipeline_dp.AggregateParams(
            noise_kind=pipeline_dp.NoiseKind.GAUSSIAN,
            metrics=[pipeline_dp.Metrics.COUNT],
            max_partitions_contributed=settings.cells_per_window,
            max_contributions_per_partition=1,
        )
        extractors = pipeline_dp.DataExtractors(
            privacy_id_extractor=lambda r: r[0],
            partition_extractor=lambda r: r[1],
            value_extractor=lambda r: 0,
        )
        result = engine.aggregate(records, params, extractors, public_partitions=list(range(base.size)))
        accountant.compute_budgets()
        noisy = dict(result)
        big = np.flatnonzero(exact["count"] >= 1000)
        rel += [abs(max(noisy[i].count, 0) - exact["count"][i]) / exact["count"][i] for i in big.tolist()]
    return {"median_rel_err_res9_ge1000": round(float(statistics.median(rel)), 5), "n": len(rel)}


def release_lag(settings: Settings, windows: Windows, tree: Hierarchy) -> dict[str, float]:
    """Run ``hexpulse release`` against a private database and advance progress in real time.

    The city's windows are moved to the last hour: the releaser's noise keys exist only for days
    the key ring holds (today − key retention … tomorrow). Needs the development master key
    (``hexpulse keyring init``, which ``make bench`` runs).
    """
    shift_ms = (int(time.time()) // 60 * 60 - 3600) * 1000 - windows[0][0]
    windows = [(w_ms + shift_ms, exact) for w_ms, exact in windows]
    db = f"hexpulse_bench_utility_{os.getpid()}"
    s = settings.model_copy(update={"clickhouse_database": db, "topic_pings": f"bench-util-{os.getpid()}"})
    admin = connect(s, use_db=False)
    apply_migrations(admin, db, s.exact_database)
    client = connect(s)
    n = 12 if QUICK else 20
    rows = []
    for w_ms, exact in windows[:n]:
        w = naive_utc(w_ms / 1000)
        nz = np.flatnonzero(exact["count"])
        rows += [(w, int(tree.cells[0][i]), int(i % 3), int(exact["count"][i]), int(exact["moving"][i]),
                  int(exact["speed"][i]), 1) for i in nz]  # fmt: skip
    client.execute(
        f"INSERT INTO {s.exact_database}.partials "
        "(window_start, cell, partition, devices, moving, speed_sum, close_offset) VALUES",
        rows,
    )
    env = {**os.environ, "HEXPULSE_CLICKHOUSE_DATABASE": db, "HEXPULSE_TOPIC_PINGS": s.topic_pings,
           "HEXPULSE_LOG_LEVEL": "WARNING"}  # fmt: skip
    exe = str(Path(sys.executable).parent / "hexpulse")
    proc = subprocess.Popen([exe, "release", "--poll-s", "1"], env=env)
    seen: list[float] = []
    try:
        time.sleep(4)  # start-up (imports, service area, plan)
        for w_ms, _ in windows[:n]:
            horizon = naive_utc(w_ms / 1000 + 60)
            now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
            t0 = time.time()
            client.execute(
                f"INSERT INTO {s.exact_database}.progress "
                "(topic, partition, horizon, watermark_ms, close_offset, closed_by, written_at) VALUES",
                [(s.topic_pings, p, horizon, w_ms + 60_000, w_ms, "watermark", now) for p in range(3)],
            )
            deadline = t0 + 20
            w = naive_utc(w_ms / 1000)
            while time.time() < deadline:
                ((c,),) = client.execute(
                    f"SELECT count() FROM {db}.release_windows WHERE window_start = %(w)s", {"w": w}
                )
                if c:
                    seen.append(time.time() - t0)
                    break
                time.sleep(0.05)
            time.sleep(0.5)
        recorded = [r[0] for r in client.execute(f"SELECT lag_s FROM {db}.release_windows FINAL")]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        for name in (db, s.exact_database):
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
    return {
        "windows": len(seen),
        "observed_lag_s_p50": round(float(np.percentile(seen, 50)), 3),
        "observed_lag_s_p95": round(float(np.percentile(seen, 95)), 3),
        "recorded_lag_s_p95": round(float(np.percentile(recorded, 95)), 3),
    }


def main() -> None:
    settings = load_settings()
    tree = build_hierarchy(load_service_area(settings), tuple(settings.release_resolutions))
    windows = city_windows(settings, tree)
    plan = plan_from_settings(settings)
    sums = score_sums(plan, tree, load_service_area(settings), windows, SUM_DRAWS, SUM_POLYGONS)
    print(f"sums of estimates ({SUM_DRAWS} draws, {SUM_POLYGONS} polygons): {json.dumps(sums)}", flush=True)
    sum_figures = {
        "city_sum_bias": {r: v["mean"] for r, v in sums["city_sum_bias"].items()},
        "city_sum_bias_clipped": {r: v["mean"] for r, v in sums["city_sum_bias_clipped"].items()},
        "area_ci95_coverage": sums["area_ci95_coverage"],
        "area_sigma_by_size": sums["area_sigma_by_size_res9"],
    }
    if SUMS_ONLY:
        print(json.dumps(sum_figures))
        return
    print(f"default plan: rho/device-day={plan.rho_per_device_day:.6f} eps={plan.eps_per_device_day:.4f} "
          f"(delta={plan.delta:g}); draws: " + ", ".join(f"{d.metric}@{d.res} sigma={d.params.sigma:.2f}"
                                                         for d in plan.draws))  # fmt: skip
    print("where the budget goes (count, default budget):")
    strategies(settings, tree, windows)
    ours = score_plan(plan, tree, windows, TRIALS).summary()
    print(f"deployed default: {ours}")
    print("error vs budget (rho per device-day):")
    curve = {}
    for rho in (0.1, 0.25, 0.5, 1.0, 2.0, 4.0):
        p = plan_from_settings(settings.model_copy(update={"budget_rho_per_day": rho}))
        sc = score_plan(p, tree, windows, max(1, TRIALS // 2)).summary()
        curve[rho] = sc
        eps = eps_from_rho(rho, settings.report_delta)
        r9, r8 = sc["median_rel_err_res9_ge1000"], sc["median_rel_err_res8_ge500"]
        s9, s8 = sc["sigma_res9_ge1000"], sc["sigma_res8_ge500"]
        print(
            f"  rho={rho:<5} eps={eps:6.2f} res9>=1000 {r9:.4f} (sigma {s9:7.2f})  "
            f"res8>=500 {r8:.4f} (sigma {s8:7.2f})"
        )
    lap = laplace_basic(settings, tree, windows)
    print(f"independent discrete Laplace, basic composition: {lap}")
    ratio = ours["median_rel_err_res9_ge1000"] / lap["median_rel_err_res9_ge1000"]
    pdp = pipeline_dp_compare(settings, tree, windows)
    print(f"pipeline-dp (counts at res 9 only, eps_day/W and delta/W per window): {pdp}")
    lag = release_lag(settings, windows, tree)
    print(f"release lag: {lag}")
    figures = {
        "median_rel_err_res9_ge1000": ours["median_rel_err_res9_ge1000"],
        "median_rel_err_res8_ge500": ours["median_rel_err_res8_ge500"],
        "ci95_coverage": ours["ci95_coverage_nonzero"],
        "ci95_coverage_all_cells": ours["ci95_coverage_all"],
        "err_ratio_vs_laplace_basic": round(ratio, 4),
        "release_lag_s_p95": lag["recorded_lag_s_p95"],
        "err_ratio_vs_pipeline_dp": round(
            ours["median_rel_err_res9_ge1000"] / pdp["median_rel_err_res9_ge1000"], 4
        )
        if "median_rel_err_res9_ge1000" in pdp
        else None,
        "eps_per_device_day": round(plan.eps_per_device_day, 4),
        **sum_figures,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
