"""Smoothing across windows: error of raw released counts vs the per-cell local-level filter.

Data: the simulated city (``simulator``; 9,000 devices, stadium crowd 6,000, one hour of one-minute
windows: the crowd arrives during 5–40 % of the run and leaves during 60–80 %) and its ground truth
of exact per-window, per-cell counts. Every window goes through the deployed release path
(:func:`privacy.release.values.release_values` at the default plan, fresh keys per window and
trial), so consecutive windows carry independent noise as in production. For each window from the
``windows``-th on, :func:`releases.smoothing.local_level` reads the released values of the last
``windows`` windows, exactly as ``GET /v1/density?smooth=true`` does.

Two inputs are scored: the released non-negative integer (``count``, what the accessor reads
today) and the unconstrained least-squares estimate (``count_est``, unbiased, what it reads once
the release tables hold it). Per input: median relative error of res-9 cells with ≥ 1,000 and
res-8 cells with ≥ 500 true devices, RMSE over all cells at res 9 and over occupied ones, the
95%-interval coverage of the smoothed value, and the signed bias at the stadium (its res-8 cell)
during arrival and departure, with the lag it adds: the extra bias over the raw estimate's,
divided by the ramp's mean change per window (in windows; positive = trailing the truth). A sweep
over the process noise picks the default; the last line is JSON.

Usage: ``.venv/bin/python benchmarks/bench_smoothing.py [--quick]`` (``--quick``: 1 trial, small sweep)
"""

from __future__ import annotations

import itertools
import json
import math
import statistics
import sys
from dataclasses import dataclass

import numpy as np

from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings, load_settings
from privacy.release.budget import plan_from_settings
from privacy.release.consistency import Hierarchy, build_hierarchy, sum_by
from privacy.release.mechanisms import Z95
from privacy.release.seeds import seeded_keys
from privacy.release.values import release_values
from releases.smoothing import SmoothingParams, local_level
from simulator import SimConfig, generate

QUICK = "--quick" in sys.argv
TRIALS = 1 if QUICK else 5
START_MS = 1_900_000_000_000 // 60_000 * 60_000
SIM = SimConfig(devices=9000, stadium_crowd=6000, duration_s=3600, interval_s=15, start_ms=START_MS,
                malformed_rate=0.0, seed=1)  # fmt: skip

Arr = np.ndarray


@dataclass
class Released:
    truth: list[Arr]  # per level, (windows, cells)
    value: list[Arr]  # released non-negative integers
    est: list[Arr]  # unconstrained least-squares estimates
    sigma: list[Arr]


def city(settings: Settings, tree: Hierarchy) -> list[Arr]:
    """Exact res-9 count vectors per window (tree order), as (windows, cells), then summed upward."""
    sim = generate(SIM, settings)
    base = tree.cells[0]
    starts = sorted({w for w, *_ in sim.truth.cells})
    index = {w: t for t, w in enumerate(starts)}
    exact = np.zeros((len(starts), base.size), dtype=np.int64)
    for w, cell, devices, _moving, _speed in sim.truth.cells:
        exact[index[w], int(np.searchsorted(base, np.uint64(cell)))] += devices
    print(f"city: {SIM.devices} devices, stadium peak {sim.truth.stadium['peak']}, {len(starts)} windows")
    out = [exact]
    for k in range(1, len(tree.resolutions)):
        out.append(
            np.stack([sum_by(tree.parent[k - 1], row, tree.sizes[k]) for row in out[-1]]).astype(np.int64)
        )
    return out


def release(settings: Settings, tree: Hierarchy, truth: list[Arr], trial: int) -> Released:
    """One release per window at the default plan; seeded keys, one per (trial, window), so the
    noise is independent across windows (as the releaser's per-window keys are) and the figures
    are reproducible."""
    plan = plan_from_settings(settings)
    zeros = np.zeros(tree.sizes[0], dtype=np.int64)
    value = [np.zeros(t.shape) for t in truth]
    est = [np.zeros(t.shape) for t in truth]
    sigma = [np.zeros(t.shape) for t in truth]
    for w in range(truth[0].shape[0]):
        exact = {"count": truth[0][w], "moving": zeros, "speed": zeros}
        keys = seeded_keys(1_000_003 * trial + w)
        out = release_values(plan, tree, exact, keys).metrics["count"]
        for k in range(len(tree.resolutions)):
            value[k][w], est[k][w], sigma[k][w] = out.values[k], out.unconstrained[k], out.sigma[k]
    return Released(truth, value, est, sigma)


def filtered(y: Arr, s: Arr, params: SmoothingParams) -> tuple[Arr, Arr]:
    """The smoothed value (and σ) at every window t ≥ windows−1, from windows t−windows+1 … t."""
    n = params.windows
    out = np.full(y.shape, np.nan)
    sd = np.full(y.shape, np.nan)
    for t in range(n - 1, y.shape[0]):
        out[t], sd[t] = local_level(y[t - n + 1 : t + 1], s[t - n + 1 : t + 1], params)
    return out, sd


def _median_rel(x: Arr, truth: Arr, floor: int) -> float:
    big = truth >= floor
    return float(np.median(np.abs(x[big] - truth[big]) / truth[big]))


def stadium_cell(truth: list[Arr]) -> int:
    """The res-8 cell holding the most devices at any window: the stadium's."""
    return int(np.unravel_index(np.argmax(truth[1]), truth[1].shape)[1])


def score(rel: list[Released], params: SmoothingParams, use: str, tree: Hierarchy, phases: dict[str, slice],
          stadium: int) -> dict[str, float]:  # fmt: skip
    n0 = params.windows - 1
    m9r, m9s, m8r, m8s, se_r, se_s, se_c, occ_r, occ_s = [], [], [], [], [], [], [], [], []
    cov = cov_n = 0
    bias: dict[str, list[float]] = {f"{p}_{w}": [] for p in phases for w in ("raw", "smoothed")}
    slope: dict[str, float] = {}
    for r in rel:
        for k in (0, 1):
            y = getattr(r, use)[k]
            x, sd = filtered(y, r.sigma[k], params)
            truth = r.truth[k][n0:]
            raw, sm = y[n0:], x[n0:]  # raw: the unsmoothed input itself
            if k == 0:
                m9r.append(_median_rel(raw, truth, 1000))
                m9s.append(_median_rel(sm, truth, 1000))
                se_r.append(float(np.mean((raw - truth) ** 2)))
                se_s.append(float(np.mean((sm - truth) ** 2)))
                occ = truth > 0
                occ_r.append(float(np.mean((raw[occ] - truth[occ]) ** 2)))
                occ_s.append(float(np.mean((sm[occ] - truth[occ]) ** 2)))
                se_c.append(float(np.mean((np.maximum(sm, 0.0) - truth) ** 2)))
                hit = np.abs(sm - truth) <= Z95 * sd[n0:]
                cov += int(hit.sum())
                cov_n += hit.size
            else:
                m8r.append(_median_rel(raw, truth, 500))
                m8s.append(_median_rel(sm, truth, 500))
                t_all = r.truth[k][:, stadium]
                for name, series in (("raw", y[:, stadium]), ("smoothed", x[:, stadium])):
                    for p, sl in phases.items():
                        bias[f"{p}_{name}"].append(float(np.nanmean(series[sl] - t_all[sl])))
                for p, sl in phases.items():
                    slope[p] = float(np.mean(np.diff(t_all[sl])))
    out = {
        "median_rel_err_res9_ge1000_raw": statistics.mean(m9r),
        "median_rel_err_res9_ge1000_smoothed": statistics.mean(m9s),
        "median_rel_err_res8_ge500_raw": statistics.mean(m8r),
        "median_rel_err_res8_ge500_smoothed": statistics.mean(m8s),
        "rmse_res9_all_raw": math.sqrt(statistics.mean(se_r)),
        "rmse_res9_all_smoothed": math.sqrt(statistics.mean(se_s)),
        "rmse_res9_all_smoothed_clipped": math.sqrt(statistics.mean(se_c)),
        "rmse_res9_occupied_raw": math.sqrt(statistics.mean(occ_r)),
        "rmse_res9_occupied_smoothed": math.sqrt(statistics.mean(occ_s)),
        "ci95_coverage_smoothed_res9": cov / cov_n,
    }
    out |= {f"stadium_res8_bias_{k}": statistics.mean(v) for k, v in bias.items()}
    for p in phases:
        # The bias the filter adds during a ramp, in windows of the ramp's own pace: its lag.
        out[f"stadium_res8_slope_{p}"] = slope[p]
        extra = out[f"stadium_res8_bias_{p}_smoothed"] - out[f"stadium_res8_bias_{p}_raw"]
        out[f"stadium_res8_lag_added_windows_{p}"] = -extra / slope[p]
    out["rmse_ratio_res9_all"] = out["rmse_res9_all_smoothed"] / out["rmse_res9_all_raw"]
    out["median_err_ratio_res9_ge1000"] = (
        out["median_rel_err_res9_ge1000_smoothed"] / out["median_rel_err_res9_ge1000_raw"]
    )
    out["median_err_ratio_res8_ge500"] = (
        out["median_rel_err_res8_ge500_smoothed"] / out["median_rel_err_res8_ge500_raw"]
    )
    return {k: round(v, 4) for k, v in out.items()}


def main() -> None:
    settings = load_settings()
    tree = build_hierarchy(load_service_area(settings), tuple(settings.release_resolutions))
    truth = city(settings, tree)
    rel = [release(settings, tree, truth, trial) for trial in range(TRIALS)]
    n_w = truth[0].shape[0]
    phases = {
        "arrival": slice(int(0.05 * n_w), int(0.40 * n_w)),
        "departure": slice(int(0.60 * n_w), int(0.80 * n_w)),
    }
    stadium = stadium_cell(truth)
    print(f"stadium res-8 cell peak: {int(truth[1][:, stadium].max())} devices; trials: {TRIALS}")
    default = SmoothingParams.from_settings(settings)
    sweep_abs = (2.0,) if QUICK else (0.0, 2.0, 5.0)
    sweep_rel = (0.05, 0.1) if QUICK else (0.02, 0.05, 0.1, 0.2)
    sweep_z = (3.0, 4.0, math.inf)
    print("sweep (input count_est, 10 windows): process_abs process_rel jump_z -> res9 rmse ratio, "
          "res9>=1000 / res8>=500 median error ratio, stadium departure bias (res 8)")  # fmt: skip
    for a, r_, z in itertools.product(sweep_abs, sweep_rel, sweep_z):
        p = SmoothingParams(default.windows, a, r_, z)
        s = score(rel, p, "est", tree, phases, stadium)
        cols = ("rmse_ratio_res9_all", "median_err_ratio_res9_ge1000", "median_err_ratio_res8_ge500",
                "stadium_res8_bias_departure_smoothed")  # fmt: skip
        print(f"  {a:5g} {r_:5g} {z:5g} -> " + " ".join(f"{s[c]:.3f}" for c in cols), flush=True)
    results = {}
    for use in ("value", "est"):
        results[use] = score(rel, default, use, tree, phases, stadium)
        print(f"default {default.describe()}; input {'count' if use == 'value' else 'count_est'}:")
        for key, v in results[use].items():
            print(f"  {key:45s} {v}")
    figures = {"params": default.__dict__ | {"jump_z": default.jump_z}, "trials": TRIALS, "windows": n_w,
               "input_count": results["value"], "input_count_est": results["est"]}  # fmt: skip
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
