"""Traffic levels: how close can a release of the corridors' speed bins come to the truth, on the
simulated city at real density (issue #12's ``congestion_level_exact`` ≥ 0.80)?

bench_city.py scores what the deployed pipeline serves; this asks what *any* release of the same
measurement could serve, by taking parts of the error away one at a time. Same city, same runs
and seeds as ``bench_city.py --runs 2`` (the quiet reference, then the morning peak with the
incident), same ground truth rows (``truth.traffic["corridors"]``: moving devices, mean speed, the
free flow and the level of each corridor-window), scored on the same corridor-windows (≥ 100
moving devices). From the simulator's per-device rows (``keep_moving``) it builds each
corridor-window's *exact* speed bins at the run's edges (``HEXPULSE_TRAFFIC_SPEED_EDGES_KMH``) and
serves them through the API's own arithmetic (``releases.traffic.bins_speed``,
``api.congestion.congestion``) with:

- noise: none, or Gaussian at the deployed corridor draw's σ per bin (``plan_from_settings``) ×
  1, ½, ¼ (the σ of 4× and 16× the ``traffic.corridor`` share), continuous (the releaser's
  discrete Gaussian has the same σ; at σ ≥ 5 the two agree closely);
- speeds from the bins summed over the last K windows (``/v1/traffic?windows=K``);
- free-flow references: the truth's own free flow (an oracle no release has); the quiet run's
  bins pooled with their noise (σ√T over its T = 10 windows: what bench_city serves); pools of 40
  and 3,360 such windows (four quiet runs; a week of the default 8 quiet UTC hours, as a
  deployment pools them), each the quiet run's devices scaled to the pool's windows with one
  draw per window; and the quiet run's bins pooled exactly (the limit of ever longer pools).

Last, the same rows against a truth whose cars' free flow is their road's speed at the quiet
run's densities (``observed free flow``: what quiet hours observe, the HCM's free-flow speed; other
movers and the window's mix as before): how much of the gap is the measurand's.

Each row also gives the city index's error (``city_index_rel_err``, bench_city's figure: the
median over the peak's windows, every corridor with a free-flow pool weighed). Two more rows
without bins: the exact mean speed against the quiet run's exact mean speed (the
ceiling of any reference pooled from quiet hours), and against the truth's free flow (1.0 by
construction, a check).

Usage: ``.venv/bin/python benchmarks/bench_traffic_ceiling.py [--draws 5]`` (no services; about
2.5 min and 4.5 GB at real density). Last line: JSON of all rows.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from bench_city import QUIET_RUNS, runs
from city_scores import LEVELS, MIN_MOVING, true_index

from api.congestion import congestion, travel_time_index
from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings, load_settings
from hexpulse.traffic_levels import level_of
from privacy.release.budget import plan_from_settings
from releases.traffic import bins_speed
from simulator import SimConfig
from simulator.places import CORRIDORS
from simulator.stream import CityStream

F64 = npt.NDArray[np.float64]
SIGMA_SCALES = (1.0, 0.5, 0.25)
TRAILING = (1, 3, 5)
POOLS = (40, 3360)
"""Quiet pools beyond the run's own: four quiet runs; a week of the default 8 quiet hours."""


class RunBins:
    """One run's corridors: window starts (ms), exact bins [window, corridor, bin], exact speed
    sums and devices [window, corridor] (no bins), and the truth's corridor rows."""

    def __init__(self, s: Settings, start_ms: int, seed: int, minutes: float) -> None:
        cfg = SimConfig(duration_s=minutes * 60, start_ms=start_ms, seed=seed)
        stream = CityStream(cfg, s, span_windows=None, area=load_service_area(s), keep_moving=True)
        for _ in stream.spans():
            pass
        assert stream.truth is not None and stream.truth.corridor_moving is not None
        parts = stream.truth.corridor_moving
        win = np.concatenate([p.win for p in parts])
        cor = np.concatenate([p.corridor for p in parts])
        kmh = np.concatenate([p.kmh for p in parts])
        edges = np.asarray(s.traffic_speed_edges_kmh, dtype=np.float64)
        self.windows: list[int] = sorted(set(win.tolist()))
        wi = np.searchsorted(self.windows, win)
        self.bins = np.zeros((len(self.windows), len(CORRIDORS), len(edges) + 1))
        np.add.at(self.bins, (wi, cor, np.searchsorted(edges, kmh, side="right")), 1)
        self.speed_sum = np.zeros((len(self.windows), len(CORRIDORS)))
        np.add.at(self.speed_sum, (wi, cor), kmh)
        self.rows: list[list[Any]] = stream.finish().traffic["corridors"]
        self._wi, self._cor, self._kmh = wi, cor, kmh
        self._free = np.concatenate([p.free_kmh for p in parts])
        self._car = np.concatenate([p.car for p in parts])

    def car_speed_ratio(self) -> F64:
        """Per corridor: the mean over this run's cars on it of speed ÷ their road's free flow (1
        where none)."""
        num, n = np.zeros(len(CORRIDORS)), np.zeros(len(CORRIDORS))
        car = self._car
        np.add.at(num, self._cor[car], self._kmh[car] / self._free[car])
        np.add.at(n, self._cor[car], 1)
        return np.where(n > 0, num / np.maximum(n, 1), 1.0)

    def observed_free_flow(self, ratio: F64) -> F64:
        """[window, corridor]: the truth's free flow with each car's road speed times its corridor's
        ``ratio`` (another movers' is still its own speed)."""
        ff = np.where(self._car, self._free * ratio[self._cor], self._kmh)
        out = np.zeros_like(self.speed_sum)
        np.add.at(out, (self._wi, self._cor), ff)
        return out / np.maximum(self.bins.sum(axis=-1), 1)


def trailing(bins: F64, k: int) -> F64:
    """Bins summed over the last ``k`` windows of the run (fewer at its start), per window."""
    c = np.cumsum(bins, axis=0)
    out = c.copy()
    out[k:] = c[k:] - c[:-k]
    return out


class Scorer:
    """The scored corridor-windows of the peak run and the score of served speeds / free flows."""

    def __init__(self, windows: list[int], rows: list[list[Any]]) -> None:
        slug = {c.slug: i for i, c in enumerate(CORRIDORS)}
        at = {w: i for i, w in enumerate(windows)}
        keep = [r for r in rows if r[2] >= MIN_MOVING]
        self.wi = np.array([at[r[0]] for r in keep])
        self.ci = np.array([slug[r[1]] for r in keep])
        self.mean = np.array([r[3] for r in keep], dtype=np.float64)
        self.free = np.array([r[4] for r in keep], dtype=np.float64)
        self.level = np.array([LEVELS.index(r[5]) for r in keep])
        self.by_window: list[list[list[Any]]] = [[] for _ in windows]
        for r in rows:
            self.by_window[at[r[0]]].append(r)

    def with_free(self, free: F64) -> Scorer:
        """The same corridor-windows against another truth free flow ([window, corridor]), each
        level by the truth's rule (``level_of`` of free flow ÷ mean speed)."""
        other = copy.copy(self)
        other.free = free[self.wi, self.ci]
        pairs = zip(other.free, self.mean, strict=True)
        other.level = np.array([LEVELS.index(level_of(f / max(v, 1.0))) for f, v in pairs])
        return other

    def city(self, now: F64, quiet: F64 | None, mids: F64) -> dict[str, float]:
        """Median over windows of the city index's relative error (bench_city's
        ``city_index_rel_err``): ``api.congestion.travel_time_index`` of every corridor with a
        free-flow pool against the truth's travel-time-weighted index over the same corridors."""
        if quiet is None:
            return {"city_index_rel_err": math.nan}
        keep = quiet.sum(axis=1) >= 1.0
        slugs = {CORRIDORS[i].slug for i in np.flatnonzero(keep)}
        errs = []
        for w, rows in enumerate(self.by_window):
            served = travel_time_index(now[w][keep], quiet[keep], mids, 0.0, 0.0)[0]
            true = true_index(rows, slugs)
            if true and math.isfinite(served):
                errs.append(abs(served - true) / true)
        return {"city_index_rel_err": float(np.median(errs)) if errs else math.nan}

    def score(self, speed: F64, free: F64) -> dict[str, float]:
        """``speed``/``free``: served mean speed and free flow of each scored corridor-window."""
        served = np.array([LEVELS.index(lv) if (lv := congestion(float(v), float(f))[1]) else -9
                           for v, f in zip(speed, free, strict=True)])  # fmt: skip
        return {"exact": float((served == self.level).mean()),
                "within_one": float((abs(served - self.level) <= 1).mean()),
                "speed_mae_kmh": float(np.nanmean(abs(speed - self.mean)))}  # fmt: skip


def mean_of(bins: F64, mids: F64) -> F64:
    return bins_speed(bins, mids, 0.0)[0]


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--draws", type=int, default=5, help="noise draws per row (default 5)")
    ap.add_argument("--minutes", type=float, default=10.0, help="event time per run (default 10)")
    args = ap.parse_args(argv)
    s = load_settings()
    plan = plan_from_settings(s)
    draw = plan.zone_traffic_draw("corridor")
    if draw is None:
        raise SystemExit("the budget plan has no traffic.corridor share: nothing to study")
    sigma, mids = draw.params.sigma, np.asarray(plan.traffic_mids_kmh, dtype=np.float64)
    (_, q_start, q_seed), (_, m_start, m_seed) = runs(QUIET_RUNS, args.minutes, 2)
    t0 = time.monotonic()
    quiet = RunBins(s, q_start, q_seed, args.minutes)
    peak = RunBins(s, m_start, m_seed, args.minutes)
    sc = Scorer(peak.windows, peak.rows)
    print(f"generated in {time.monotonic() - t0:.0f} s; edges {list(s.traffic_speed_edges_kmh)},"
          f" mids {mids.tolist()},"
          f" corridor σ {sigma:.2f} per bin; {len(sc.level)} corridor-windows scored,"
          f" truth levels {np.bincount(sc.level, minlength=5).tolist()}", flush=True)  # fmt: skip
    pool = quiet.bins.sum(axis=0)
    rng = np.random.default_rng(12)
    out: list[dict[str, Any]] = []

    def row(name: str, **figs: float) -> None:
        out.append({"row": name, **{k: round(v, 4) for k, v in figs.items()}})
        print(f"{name:<58} " + "  ".join(f"{k} {v:.3f}" for k, v in figs.items()), flush=True)

    row("no bins: exact speed, truth's free flow", **sc.score(sc.mean, sc.free))
    with np.errstate(invalid="ignore", divide="ignore"):
        q_mean = quiet.speed_sum.sum(axis=0) / pool.sum(axis=1)
    row("no bins: exact speed, quiet run's exact mean speed", **sc.score(sc.mean, q_mean[sc.ci]))
    pct = (5, 25, 50, 75, 95)
    index_pct = np.percentile(sc.free / sc.mean, pct).round(3).tolist()
    ratio_pct = np.percentile(sc.free / q_mean[sc.ci], pct).round(3).tolist()
    print(f"percentiles {pct}: truth's index (free flow / mean speed) {index_pct}; truth's free flow /"
          f" quiet run's mean speed {ratio_pct}", flush=True)  # fmt: skip
    t = len(quiet.windows)

    def quiet_pool(windows: int) -> F64:
        # A pool of `windows` quiet windows like the quiet run's: its devices × windows / t, one
        # draw of σ per window in each bin, summed (σ√windows).
        return pool * (windows / t) + rng.normal(0, sigma * np.sqrt(windows), pool.shape)

    refs: dict[str, Callable[[], F64 | None]] = {"truth": lambda: None}
    refs |= {f"quiet pool of {n} windows": (lambda n=n: quiet_pool(n)) for n in (t, *POOLS)}
    refs["quiet pool, exact"] = lambda: pool

    def averaged(scorer: Scorer, scale: float, k: int, ref: str, city: bool) -> dict[str, float]:
        # One noise draw unless there is noise (in the window's bins or in the pool): then --draws.
        figs = []
        for _ in range(args.draws if scale or ref.startswith("quiet pool of") else 1):
            now = trailing(peak.bins + rng.normal(0, scale * sigma, peak.bins.shape), k)
            q = refs[ref]()
            free = scorer.free if q is None else mean_of(q, mids)[sc.ci]
            got = scorer.score(mean_of(now[sc.wi, sc.ci], mids), free)
            figs.append(got | sc.city(now, q, mids) if city else got)
        return {key: float(np.mean([f[key] for f in figs])) for key in figs[0]}

    for scale in (0.0, *SIGMA_SCALES):
        for k in TRAILING if scale else (1,):
            for ref in refs:
                row(f"bins, σ {scale * sigma:5.2f}, K {k}, free flow: {ref}",
                    **averaged(sc, scale, k, ref, True))  # fmt: skip
    # The measurand question: a truth whose cars' free flow is their road's speed at the quiet
    # run's densities (what quiet hours observe; the HCM's free-flow speed), the mix still the window's.
    alt = sc.with_free(peak.observed_free_flow(quiet.car_speed_ratio()))
    alt_pct = np.percentile(alt.free / alt.mean, pct).round(3).tolist()
    print(f"observed free flow: truth levels {np.bincount(alt.level, minlength=5).tolist()},"
          f" index percentiles {pct}: {alt_pct}", flush=True)  # fmt: skip
    row(
        "observed free flow; no bins: exact speed, quiet run's exact mean speed",
        **alt.score(sc.mean, q_mean[sc.ci]),
    )
    for scale, k in ((0.0, 1), (1.0, 1), (1.0, 3)):
        for ref in ("quiet pool of 3360 windows", "quiet pool, exact"):
            row(f"observed free flow; bins, σ {scale * sigma:5.2f}, K {k}, free flow: {ref}",
                **averaged(alt, scale, k, ref, False))  # fmt: skip
    print(json.dumps({"edges": list(s.traffic_speed_edges_kmh), "sigma": sigma, "scored": len(sc.level),
                      "rows": out}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
