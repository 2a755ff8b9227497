"""Traffic, step 1: which per-window measurement of speed survives the noise of the budget plan.

Question (issue #12, item 2): a cell or corridor segment holds ``n`` moving devices in one window;
which release lets a control room read its mean speed (km/h) and congestion level? Candidates, each
priced by the deployed noise calibration (``privacy.release.mechanisms.params_for_rho``, the
function the releaser uses) at a share of the device-day ρ:

- ``sum180`` (today): speed sum of per-device speeds clamped at ``HEXPULSE_SPEED_CLAMP_MPS``
  (sensitivity 180 km/h) and the moving count, at the σ of the **default plan's res-8 draws**
  (``plan_from_settings``), mean = sum / moving;
- ``centred<cap>``: per-device speed clipped to [7, cap] km/h, released as Σ (clipped − 7)
  (sensitivity cap − 7, a new ``traffic`` product at share ``s``), mean = 7 + sum / moving with the
  moving count taken from the cells' existing res-8 draw (already paid for);
- ``bins<k>``: the moving devices counted in ``k`` speed bins, one device in one bin (a vector with
  the L2 sensitivity of one count, replaces the moving count), mean = Σ bin midpoint × bin / Σ bin.

Levels: the thresholds of ``api.congestion`` (free-flow / mean speed, the issue's thresholds) with the
free-flow speed pooled before dividing over ``QUIET`` quiet windows of the same cell
(Σ released sums / Σ released counts, the issue's item 3), against the truth (the road's
free-flow speed and the exact mean over moving devices, unclamped).

Data: synthetic, stated here, not the simulated city: per device speed = mean × lognormal
(σ_log 0.25), a device is moving at ≥ 7.2 km/h (``HEXPULSE_MOVING_SPEED_MPS`` = 2 m/s); scenarios
free-flow ∈ {50, 60, 80} km/h × travel-time index ∈ {1.0, 1.2, 1.4, 1.75, 2.5, 3.5}; noise is
continuous Gaussian at the discrete Gaussian's σ (σ ≥ 10 here, where the two agree to well under
1 %). Quiet windows hold 60 moving devices at free flow.

Figures per (candidate, share, n): ``speed_mae_kmh`` (target ≤ 8), ``level_exact`` (≥ 0.80),
``level_within_one`` (≥ 0.95). Last line: JSON of all rows.

Usage: ``.venv/bin/python benchmarks/bench_traffic.py [--quick]``
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from api.congestion import travel_time_index
from hexpulse.settings import load_settings
from hexpulse.traffic_levels import LEVELS
from privacy.release.budget import plan_from_settings
from privacy.release.mechanisms import params_for_rho
from releases.traffic import bins_speed

F64 = npt.NDArray[np.float64]
QUICK = "--quick" in sys.argv
TRIALS = 40 if QUICK else 400
QUIET = 300  # quiet windows pooled for one free-flow speed (5 quiet hours)
QUIET_N = 60  # moving devices in a quiet window
MOVING_KMH = 7.2
FREE_FLOWS = (50.0, 60.0, 80.0)
INDICES = (1.0, 1.2, 1.4, 1.75, 2.5, 3.5)
NS = (100, 200, 400, 800, 1600)
SHARES = (0.1, 0.2, 0.35)


def speeds(rng: np.random.Generator, mean_kmh: float, shape: tuple[int, int]) -> F64:
    """Window speeds (km/h) of moving devices around ``mean_kmh``, rows × devices (non-moving
    devices are redrawn, so every row holds exactly its number of moving devices)."""
    v = mean_kmh * np.exp(rng.normal(-0.25**2 / 2, 0.25, shape))
    while (slow := v < MOVING_KMH).any():
        v[slow] = mean_kmh * np.exp(rng.normal(-0.25**2 / 2, 0.25, int(slow.sum())))
    return v


@dataclass(frozen=True)
class Candidate:
    """One measurement: ``exact`` maps rows of speeds to the exact released entries (rows × k),
    ``sigmas`` their noise (k), ``estimate`` noisy entries to (Σ km/h, moving count)."""

    name: str
    share: float | None  # of the device-day ρ; None = today's default plan
    exact: Callable[[F64], F64]
    sigmas: F64
    estimate: Callable[[F64], tuple[F64, F64]]


def sigma(bound: int, share: float, rho_window: float) -> float:
    return float(params_for_rho("gaussian", bound, 1, share * rho_window).sigma)


def _sum_and_count(low: float, cap: float) -> Callable[[F64], F64]:
    def exact(v: F64) -> F64:
        total = (np.rint(np.clip(v, low, cap)) - low).sum(axis=1)
        return np.stack([total, np.full(v.shape[0], v.shape[1])], 1)

    return exact


def _bins(edges: F64) -> Callable[[F64], F64]:
    def exact(v: F64) -> F64:
        k = edges.size - 1
        idx = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, k - 1)
        flat = np.repeat(np.arange(v.shape[0]), v.shape[1]) * k + idx.ravel()
        return np.bincount(flat, minlength=v.shape[0] * k).reshape(v.shape[0], k).astype(np.float64)

    return exact


BIN_EDGES = {
    "bins7": (7.2, 15, 25, 35, 50, 70, 90, 120),
    "bins4": (7.2, 20, 40, 70, 120),
    "bins3": (7.2, 25, 50, 120),
}
CHOSEN = "bins4"
SEGMENTS = 50  # road segments / res-8 cells behind the city index
TRAFFIC_SHARE = 0.35  # the split proposed in BENCHMARKS.md: what the cells' moving+speed draws spend today


def candidates(rho_window: float, today: tuple[float, float]) -> list[Candidate]:
    def plain(x: F64) -> tuple[F64, F64]:
        return x[:, 0], x[:, 1]

    def centred(x: F64) -> tuple[F64, F64]:
        return x[:, 0] + 7.0 * x[:, 1], x[:, 1]

    out = [Candidate("sum180", None, _sum_and_count(0.0, 180.0), np.array(today), plain)]
    for share in SHARES:
        for cap in (90, 120):
            # The product's share split between the centred sum (0.7) and its own moving count.
            sig = np.array([sigma(cap - 7, 0.7 * share, rho_window), sigma(1, 0.3 * share, rho_window)])
            out.append(Candidate(f"centred{cap}", share, _sum_and_count(7.0, cap), sig, centred))
        for name, edges in BIN_EDGES.items():
            e = np.array(edges, dtype=np.float64)
            mids = (e[:-1] + e[1:]) / 2

            def binned(x: F64, mids: F64 = mids) -> tuple[F64, F64]:
                mean, _ = bins_speed(x, mids, 0.0)
                total = x.sum(axis=1)
                return np.nan_to_num(mean) * total, total

            sig = np.full(mids.size, sigma(1, share, rho_window))
            out.append(Candidate(name, share, _bins(e), sig, binned))
    return out


def levels(index: F64) -> npt.NDArray[np.int64]:
    """Level number (0 free … 4 severe) of each travel-time index, by api.congestion's thresholds."""
    return np.searchsorted(np.array([u for _, u in LEVELS]), index, side="right").astype(np.int64)


def run(c: Candidate, n: int, rng: np.random.Generator, span: int = 1) -> tuple[float, float, float]:
    """MAE of the mean speed, level exact, level within one; ``span`` > 1: the released entries of
    ``span`` consecutive windows summed before dividing (post-processing: n·span device-windows,
    noise σ·√span), the trailing mean a map could show at the cost of lag."""
    errs: list[F64] = []
    exact: list[F64] = []
    within: list[F64] = []
    for ff in FREE_FLOWS:
        # Free flow pooled before dividing: Σ released entries over QUIET windows (their noise adds
        # up to σ·√QUIET), then one division.
        quiet = c.exact(speeds(rng, ff, (QUIET, QUIET_N))).sum(axis=0)
        pooled = quiet + rng.normal(0, 1, (TRIALS, quiet.size)) * c.sigmas * np.sqrt(QUIET)
        qnum, qden = c.estimate(pooled)
        ff_est = qnum / np.maximum(qden, 1.0)
        for index in INDICES:
            v = speeds(rng, ff / index, (TRIALS, n * span))
            true_mean = v.mean(axis=1)
            noisy = c.exact(v) + rng.normal(0, 1, (TRIALS, c.sigmas.size)) * c.sigmas * np.sqrt(span)
            num, den = c.estimate(noisy)
            est = np.clip(num / np.maximum(den, 1.0), 1.0, 200.0)
            errs.append(np.abs(est - true_mean))
            truth = levels(ff / true_mean)
            got = levels(ff_est / est)
            exact.append(got == truth)
            within.append(np.abs(got - truth) <= 1)
    return float(np.mean(errs)), float(np.mean(exact)), float(np.mean(within))


def city_index(c: Candidate, rng: np.random.Generator) -> dict[str, float]:
    """The city congestion index from ``SEGMENTS`` segments of the chosen bins measurement:
    relative error of api.congestion.travel_time_index (weights = released moving counts) and how
    often its 95% interval holds the truth (weights = true counts, true speeds, road free flows)."""
    edges = np.array(BIN_EDGES[c.name], dtype=np.float64)
    mids = (edges[:-1] + edges[1:]) / 2
    errs: list[float] = []
    covered = 0
    for _ in range(TRIALS):
        level = rng.choice([1.0, 1.3, 1.7, 2.5])
        n = np.exp(rng.uniform(np.log(100), np.log(1600), SEGMENTS)).astype(np.int64)
        ff = rng.choice(FREE_FLOWS, SEGMENTS)
        idx = level * np.exp(rng.normal(0, 0.15, SEGMENTS))
        now, quiet = np.empty((SEGMENTS, mids.size)), np.empty((SEGMENTS, mids.size))
        true_now = 0.0
        for i in range(SEGMENTS):
            v = speeds(rng, ff[i] / idx[i], (1, int(n[i])))
            now[i] = c.exact(v)[0] + rng.normal(0, c.sigmas)
            true_now += n[i] / float(v.mean())
            # Quiet hours: the exact sum of QUIET windows (10 × a tenth of their devices), noise σ·√QUIET.
            q = c.exact(speeds(rng, ff[i], (1, QUIET * QUIET_N // 10)))[0] * 10
            quiet[i] = q + rng.normal(0, c.sigmas * np.sqrt(QUIET))
        got, sd = travel_time_index(now, quiet, mids, float(c.sigmas[0]), float(c.sigmas[0]) * np.sqrt(QUIET))
        truth = true_now / float(np.sum(n / ff))
        errs.append(abs(got - truth) / truth)
        covered += abs(got - truth) <= 1.96 * sd
    return {
        "city_index_rel_err_mean": float(np.mean(errs)),
        "city_index_rel_err_p95": float(np.quantile(errs, 0.95)),
        "city_index_ci95_coverage": covered / TRIALS,
    }


def main() -> None:
    t0 = time.perf_counter()
    settings = load_settings()
    plan = plan_from_settings(settings)
    rho_window = settings.budget_rho_per_day / settings.windows_per_device_day
    res = settings.base_resolution - 1
    today = (plan.measured("speed")[res].params.sigma, plan.measured("moving")[res].params.sigma)
    print(f"today's res-{res} draws: speed-sum σ={today[0]:.0f} km/h, moving σ={today[1]:.1f}; "
          f"one count at the whole budget σ={sigma(1, 1.0, rho_window):.2f}")  # fmt: skip
    rng = np.random.default_rng(12)
    rows: list[dict[str, object]] = []
    print("| measurement | share | " + " | ".join(f"n={n}" for n in NS) + " |")
    print("|---|---|" + "---|" * len(NS))
    for c in candidates(rho_window, today):
        cols = []
        for n in NS:
            mae, exact, within = run(c, n, rng)
            rows.append({"measurement": c.name, "share": c.share, "n": n, "speed_mae_kmh": round(mae, 2),
                         "level_exact": round(exact, 3), "level_within_one": round(within, 3)})  # fmt: skip
            cols.append(f"{mae:.1f} / {exact:.2f} / {within:.2f}")
        print(f"| {c.name} | {'default plan' if c.share is None else c.share} | " + " | ".join(cols) + " |")
    chosen = next(c for c in candidates(rho_window, today) if c.name == CHOSEN and c.share == TRAFFIC_SHARE)
    for span in (2, 3):
        cols = []
        for n in NS:
            mae, exact, within = run(chosen, n, rng, span)
            rows.append({"measurement": f"{CHOSEN} trailing {span}", "share": TRAFFIC_SHARE, "n": n,
                         "speed_mae_kmh": round(mae, 2), "level_exact": round(exact, 3),
                         "level_within_one": round(within, 3)})  # fmt: skip
            cols.append(f"{mae:.1f} / {exact:.2f} / {within:.2f}")
        print(f"| {CHOSEN}, sum of the last {span} windows | {TRAFFIC_SHARE} | " + " | ".join(cols) + " |")
    print(f"({time.perf_counter() - t0:.0f} s; cells: speed MAE km/h / level exact / level within one)")
    city = city_index(chosen, rng)
    print(f"city index ({SEGMENTS} segments of 100–1,600 moving devices, {CHOSEN} at {TRAFFIC_SHARE}): "
          + ", ".join(f"{k}={v:.4f}" for k, v in city.items()))  # fmt: skip
    print(json.dumps({"rows": rows, "city": city}))


if __name__ == "__main__":
    main()
