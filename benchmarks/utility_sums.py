"""Sums of released estimates on the simulated city: city totals and random polygons (issue #11).

Part of ``benchmarks/bench_utility.py`` (same city, default budget, the deployed
:func:`privacy.release.values.release_values`). Each draw releases one window's counts; on it:

- ``city_sum_bias``: Σ of the released *unbiased estimates* over every cell of a resolution,
  divided by the true city total, minus 1, averaged over draws, per resolution 9/8/7; and the same
  for the clipped display values (``city_sum_bias_clipped``), which is what summing them did.
- ``area_ci95_coverage``: random convex polygons of 5–500 km² inside the service area (ellipses
  and hulls of random points), covered at res 9, 8 and 7 and compacted as ``POST
  /v1/density/area`` does (``api.areas.compact_cover``); the estimate sums the cover's cells at
  their own resolutions, σ comes from the plan's covariance (``privacy.release.covariance``), and
  a hit is |estimate − true persons in the cover| ≤ 1.96σ.
- ``area_sigma_by_size``: median σ (persons) per polygon-area bucket, and its ratio to σ* = the σ
  of one count query measured with the whole window's count budget (1/√(2ρ_count)).
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
from typing import Any

import numpy as np
from shapely.affinity import rotate, translate
from shapely.geometry import MultiPoint, Point, Polygon
from shapely.geometry.base import BaseGeometry

from api.areas import compact_cover
from api.geo import area_km2
from hexpulse.service_area import ServiceArea
from privacy.release.budget import ReleasePlan
from privacy.release.consistency import Hierarchy
from privacy.release.covariance import base_weights, level_variances, sum_variance
from privacy.release.mechanisms import Z95
from privacy.release.seeds import fresh_keys
from privacy.release.values import release_values

KM_PER_DEG = 111.32
BUCKETS = ((5, 20), (20, 50), (50, 150), (150, 500))


@dataclasses.dataclass(frozen=True)
class Region:
    """One polygon's cover at one resolution: its cells per level, base weights and σ (persons)."""

    area_km2: float
    res: int
    idx: dict[int, np.ndarray]
    weights: np.ndarray
    sigma: float


def random_polygons(area: ServiceArea, n: int, rng: random.Random) -> list[BaseGeometry]:
    """``n`` convex polygons of 5–500 km² (log-uniform target size, then cut to the service area,
    ≈ 530 km² of convex outline, so large targets come out smaller)."""
    minx, miny, maxx, maxy = area.geometry.bounds
    out: list[BaseGeometry] = []
    while len(out) < n:
        target = math.exp(rng.uniform(math.log(5), math.log(500)))
        aspect = rng.uniform(1.0, 3.0)
        a_km = math.sqrt(target * aspect / math.pi)
        b_km = a_km / aspect
        cx, cy = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        kx = KM_PER_DEG * math.cos(math.radians(cy))
        ellipse = Point(0, 0).buffer(1.0, 16)
        shape = MultiPoint([(x * a_km / kx, y * b_km / KM_PER_DEG) for x, y in ellipse.exterior.coords])
        if len(out) % 2:  # every other one: the hull of 8 random points of the ellipse
            pts = [ellipse.exterior.interpolate(rng.random(), normalized=True) for _ in range(8)]
            shape = MultiPoint([(p.x * a_km / kx, p.y * b_km / KM_PER_DEG) for p in pts])
        poly = translate(rotate(shape.convex_hull, rng.uniform(0, 180), origin=(0, 0)), cx, cy)
        poly = poly.intersection(area.geometry)  # the part inside the service area (still convex)
        if isinstance(poly, Polygon) and 5 <= area_km2(poly) <= 500:
            out.append(poly)
    return out


def regions(plan: ReleasePlan, tree: Hierarchy, polygons: list[BaseGeometry]) -> list[Region]:
    """Every polygon's compacted cover at each released resolution (empty covers skipped)."""
    variances = level_variances(plan, tree)
    out = []
    for poly in polygons:
        for res in tree.resolutions:
            selection = compact_cover(poly, res, tree.resolutions)
            idx: dict[int, np.ndarray] = {}
            for r, cells in selection.items():
                k = tree.resolutions.index(r)
                want = np.array(sorted(cells), dtype=np.uint64)
                pos = np.minimum(np.searchsorted(tree.cells[k], want), tree.sizes[k] - 1)
                idx[k] = pos[tree.cells[k][pos] == want].astype(np.int64)
            if not any(i.size for i in idx.values()):
                continue
            weights = base_weights(tree, idx)
            sigma = math.sqrt(sum_variance(tree, variances, weights))
            out.append(Region(area_km2(poly), res, idx, weights, sigma))
    return out


def score_sums(
    plan: ReleasePlan, tree: Hierarchy, area: ServiceArea, windows: list[Any], draws: int, n_polygons: int
) -> dict[str, Any]:
    """The figures above over ``draws`` releases (windows taken in turn)."""
    count_plan = dataclasses.replace(
        plan, metrics=("count",), draws=tuple(d for d in plan.draws if d.metric == "count")
    )
    polys = random_polygons(area, n_polygons, random.Random(20261201))
    regs = regions(count_plan, tree, polys)
    n_levels = len(tree.resolutions)
    est_ratio: list[list[float]] = [[] for _ in range(n_levels)]
    clip_ratio: list[list[float]] = [[] for _ in range(n_levels)]
    hits = {res: [0, 0] for res in tree.resolutions}
    per_draw: list[float] = []  # coverage within one draw (its polygons share the draw's noise)
    for i in range(draws):
        exact = windows[i % len(windows)][1]
        truth_base = exact["count"].astype(np.float64)
        total = float(truth_base.sum())
        est = release_values(count_plan, tree, {"count": exact["count"]}, fresh_keys()).metrics["count"]
        for k in range(n_levels):
            est_ratio[k].append(float(est.unconstrained[k].sum()) / total - 1)
            clip_ratio[k].append(float(est.values[k].sum()) / total - 1)
        in_draw = 0
        for reg in regs:
            value = sum(float(est.unconstrained[k][ix].sum()) for k, ix in reg.idx.items())
            truth = float(reg.weights @ truth_base)
            hit = int(abs(value - truth) <= Z95 * reg.sigma)
            hits[reg.res][0] += hit
            hits[reg.res][1] += 1
            in_draw += hit
        per_draw.append(in_draw / len(regs))
    rho_count = sum(d.rho for d in count_plan.draws)
    sigma_star = 1.0 / math.sqrt(2 * rho_count)
    by_size: dict[str, dict[str, float]] = {}
    for lo, hi in BUCKETS:
        sig = [r.sigma for r in regs if r.res == tree.resolutions[0] and lo <= r.area_km2 < hi]
        if sig:
            med = statistics.median(sig)
            by_size[f"{lo}-{hi}km2"] = {
                "n": len(sig),
                "sigma": round(med, 1),
                "vs_optimal": round(med / sigma_star, 2),
            }
    everything = {0: np.arange(tree.sizes[0])}
    exact_city = math.sqrt(
        sum_variance(tree, level_variances(count_plan, tree), base_weights(tree, everything))
    )
    sigma0 = release_values(count_plan, tree, {"count": windows[0][1]["count"]}, fresh_keys()).metrics[
        "count"
    ]
    n_hits = sum(h[0] for h in hits.values())
    n_all = sum(h[1] for h in hits.values())
    return {
        "draws": draws,
        "city_true_total_mean": round(statistics.mean(float(w[1]["count"].sum()) for w in windows), 1),
        "city_sum_bias": {res: _mean_se(est_ratio[k]) for k, res in enumerate(tree.resolutions)},
        "city_sum_bias_clipped": {res: _mean_se(clip_ratio[k]) for k, res in enumerate(tree.resolutions)},
        "polygons": len(polys),
        "area_ci95_coverage": round(n_hits / n_all, 4),
        # draws are independent, the polygons of one draw are not: the standard error is over draws
        "area_ci95_coverage_se": round(statistics.stdev(per_draw) / math.sqrt(len(per_draw)), 4),
        "regions": len(regs),
        "area_ci95_coverage_by_res": {res: round(h[0] / h[1], 4) for res, h in hits.items() if h[1]},
        "area_sigma_by_size_res9": by_size,
        "sigma_star_one_count_query": round(sigma_star, 2),
        # exact σ of the city total of res-9 estimates vs the √Σσ² an independent-cells sum gives
        "city_total_sigma": {
            "exact": round(exact_city, 1),
            "sqrt_sum_sigma2": round(float(np.sqrt((sigma0.sigma[0] ** 2).sum())), 1),
        },
    }


def _mean_se(values: list[float]) -> dict[str, float]:
    """Mean and its standard error (a draw's city total is itself noisy)."""
    return {
        "mean": round(statistics.mean(values), 5),
        "se": round(statistics.stdev(values) / math.sqrt(len(values)), 5),
    }
