"""How each kind of device but cars moves: piecewise-linear keyframe paths (cars: :mod:`.traffic`).

Positions are metres east/north of the center (``places``), times seconds since the run's start.
Everyone but vehicles wanders a little (a smooth sinusoid, zero at both ends of a stay) while
staying somewhere, so stationary devices are not perfectly still.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.config import SimConfig
from simulator.geo import FloatArray
from simulator.places import (
    HOME_CLUSTERS,
    SCENIC_AREAS,
    SERVICE_HALF_SIZE_M,
    STADIUM,
    STADIUM_SEAT_RADIUS_M,
    WORK_CLUSTERS,
)
from simulator.population import SCENIC_VISIT_PROB, arrival_times

DWELL_MEDIAN_S = np.array([75.0, 30.0, 40.0]) * 60
"""Median stay (s) at each of SCENIC_AREAS (log-normal, σ = DWELL_SIGMA, at most DWELL_MAX_S)."""
DWELL_SIGMA = 0.8
"""Wide enough that stays fill every dwell bin the tourism release has (< 15 min to ≥ 3 h)."""
DWELL_MAX_S = 6 * 3600.0


@dataclass
class Keyframes:
    """Piecewise-linear paths: times (n, K) in s, positions (n, K) in m, wander (n, K-1) in m."""

    t: FloatArray
    x: FloatArray
    y: FloatArray
    wander: FloatArray

    def at(self, t: FloatArray, omega: FloatArray, phase: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Positions (m) at times ``t`` (n, S); stays get a smooth wander that is 0 at both ends.

        Each time's segment is found at once (the last keyframe at or before it) and gathered, so
        the cost follows n × S, not n × S × keyframes. Times outside every segment give 0.
        """
        j = (self.t[:, None, :] <= t[:, :, None]).sum(axis=2) - 1  # (n, S)
        last = self.t.shape[1] - 2
        inside = (j >= 0) & (j <= last)
        j = np.clip(j, 0, last)

        def pick(a: FloatArray, offset: int = 0) -> FloatArray:
            out: FloatArray = np.take_along_axis(a, j + offset, axis=1)
            return out

        t0, t1 = pick(self.t), pick(self.t, 1)
        inside &= t < t1
        dur = np.maximum(t1 - t0, 1e-9)
        frac = np.clip((t - t0) / dur, 0.0, 1.0)
        x0, y0 = pick(self.x), pick(self.y)
        px = x0 + frac * (pick(self.x, 1) - x0)
        py = y0 + frac * (pick(self.y, 1) - y0)
        u = t - t0
        # A whole number of half-periods of at most an hour: zero at both ends, no jumps.
        half_period = dur / np.ceil(dur / 3600.0)
        envelope = np.sin(np.pi * u / half_period) * pick(self.wander)
        px = px + envelope * np.sin(omega[:, None] * u + phase[:, None])
        py = py + envelope * np.cos(0.7 * omega[:, None] * u + 2 * phase[:, None])
        return np.where(inside, px, 0.0), np.where(inside, py, 0.0)


def _span(cfg: SimConfig) -> tuple[float, float]:
    return -(cfg.duration_s + 1e5), cfg.duration_s + 1e5


def commuters(n: int, cfg: SimConfig, rng: np.random.Generator, travel_share: float) -> Keyframes:
    """Residents and commuters: ``travel_share`` of them make one trip (walking, cycling or driving
    local streets) during the run or just before it; the others stay at home or at work."""
    lo, hi = _span(cfg)
    homes = np.array(HOME_CLUSTERS)[rng.integers(0, len(HOME_CLUSTERS), n)]
    works = np.array(WORK_CLUSTERS)[rng.integers(0, len(WORK_CLUSTERS), n)]
    home = homes[:, :2] + rng.normal(0, 1, (n, 2)) * homes[:, 2:3]
    work = works[:, :2] + rng.normal(0, 1, (n, 2)) * works[:, 2:3]
    to_work = rng.random(n) < 0.5
    a = np.where(to_work[:, None], home, work)
    b = np.where(to_work[:, None], work, home)
    v = rng.choice([1.3, 4.5, 9.0], n, p=[0.45, 0.25, 0.3])
    depart = rng.uniform(-0.3 * cfg.duration_s, cfg.duration_s, n)
    depart = np.where(rng.random(n) < travel_share, depart, hi + 1.0)
    leg1 = np.abs(b[:, 0] - a[:, 0]) / v
    leg2 = np.abs(b[:, 1] - a[:, 1]) / v
    t = np.column_stack([np.full(n, lo), depart, depart + leg1, depart + leg1 + leg2, np.full(n, hi)])
    x = np.column_stack([a[:, 0], a[:, 0], b[:, 0], b[:, 0], b[:, 0]])
    y = np.column_stack([a[:, 1], a[:, 1], a[:, 1], b[:, 1], b[:, 1]])
    wander = np.tile([12.0, 0.0, 0.0, 12.0], (n, 1))
    return Keyframes(t, x, y, wander)


def _ring(n: int, rng: np.random.Generator, r0: float, r1: float) -> FloatArray:
    theta = rng.uniform(0, 2 * np.pi, n)
    r = rng.uniform(r0, r1, n)
    out: FloatArray = np.column_stack([r * np.cos(theta), r * np.sin(theta)])
    return out


def stadium_crowd(n: int, cfg: SimConfig, rng: np.random.Generator) -> Keyframes:
    lo, hi = _span(cfg)
    d = cfg.duration_s
    center = np.array([STADIUM.x, STADIUM.y])
    theta = rng.uniform(0, 2 * np.pi, n)
    r = STADIUM_SEAT_RADIUS_M * np.sqrt(rng.random(n))
    seat = center + np.column_stack([r * np.cos(theta), r * np.sin(theta)])
    origin = center + _ring(n, rng, 1000.0, 4000.0)
    dest = center + _ring(n, rng, 1000.0, 4000.0)
    v = rng.choice([1.4, 6.0, 10.0], n, p=[0.4, 0.3, 0.3])
    arrive = rng.uniform(0.05 * d, 0.40 * d, n)
    leave = rng.uniform(0.60 * d, 0.80 * d, n)
    t_in = np.hypot(*(seat - origin).T) / v
    t_out = np.hypot(*(dest - seat).T) / v
    t = np.column_stack([np.full(n, lo), arrive - t_in, arrive, leave, leave + t_out, np.full(n, hi)])
    x = np.column_stack([origin[:, 0], origin[:, 0], seat[:, 0], seat[:, 0], dest[:, 0], dest[:, 0]])
    y = np.column_stack([origin[:, 1], origin[:, 1], seat[:, 1], seat[:, 1], dest[:, 1], dest[:, 1]])
    wander = np.tile([12.0, 0.0, 3.0, 0.0, 12.0], (n, 1))
    return Keyframes(t, x, y, wander)


def tourists(n: int, cfg: SimConfig, rng: np.random.Generator, start_ms: int) -> Keyframes:
    """Visitors of 1–3 scenic areas, arriving by the local-time curve of :mod:`.population`; each
    includes an area with ``SCENIC_VISIT_PROB`` (so areas get their daily visitors), in random order."""
    lo, hi = _span(cfg)
    areas = SCENIC_AREAS
    include = rng.random((n, len(areas))) < np.array(SCENIC_VISIT_PROB)
    while (empty := ~include.any(axis=1)).any():
        include[empty] = rng.random((int(empty.sum()), len(areas))) < np.array(SCENIC_VISIT_PROB)
    # Included areas first, in random order; the rest become zero-length repeats below.
    order = np.argsort(rng.random((n, len(areas))) + ~include, axis=1)
    visits = include.sum(axis=1)
    # Devices visiting fewer areas "visit" their last one again for 0 s (zero-length keyframes).
    for j in range(1, len(areas)):
        order[:, j] = np.where(j < visits, order[:, j], order[:, j - 1])
    cx = np.array([a.x for a in areas])[order]
    cy = np.array([a.y for a in areas])[order]
    hw = np.array([a.half_w for a in areas])[order]
    hh = np.array([a.half_h for a in areas])[order]
    px = cx + rng.uniform(-0.5, 0.5, order.shape) * hw
    py = cy + rng.uniform(-0.5, 0.5, order.shape) * hh
    dwell = np.minimum(DWELL_MEDIAN_S[order] * rng.lognormal(0.0, DWELL_SIGMA, order.shape), DWELL_MAX_S)
    repeat = np.arange(len(areas))[None, :] >= visits[:, None]
    dwell = np.where(repeat, 0.0, dwell)
    walk = rng.uniform(0.9, 1.5, n)
    hop = np.hypot(np.diff(px, axis=1), np.diff(py, axis=1)) / walk[:, None]
    origin = np.column_stack([px[:, 0], py[:, 0]]) + _ring(n, rng, 300.0, 1200.0)
    exit_ = np.column_stack([px[:, -1], py[:, -1]]) + _ring(n, rng, 300.0, 1200.0)
    t_in = np.hypot(px[:, 0] - origin[:, 0], py[:, 0] - origin[:, 1]) / walk
    t_out = np.hypot(exit_[:, 0] - px[:, -1], exit_[:, 1] - py[:, -1]) / walk
    a0 = arrival_times(n, start_ms, cfg.duration_s, rng)
    times = [np.full(n, lo), a0 - t_in, a0]
    xs, ys = [origin[:, 0], origin[:, 0], px[:, 0]], [origin[:, 1], origin[:, 1], py[:, 0]]
    now = a0
    for j in range(len(areas)):
        now = now + dwell[:, j]
        times.append(now)
        xs.append(px[:, j])
        ys.append(py[:, j])
        if j + 1 < len(areas):
            now = now + hop[:, j]
            times.append(now)
            xs.append(px[:, j + 1])
            ys.append(py[:, j + 1])
    times += [now + t_out, np.full(n, hi)]
    xs += [exit_[:, 0], exit_[:, 0]]
    ys += [exit_[:, 1], exit_[:, 1]]
    area_wander = 0.35 * np.minimum(hw, hh)
    wander = [np.full(n, 10.0), np.zeros(n)]
    for j in range(len(areas)):
        wander.append(area_wander[:, j])
        wander.append(np.zeros(n))
    wander.append(np.full(n, 10.0))
    return Keyframes(
        np.column_stack(times), np.column_stack(xs), np.column_stack(ys), np.column_stack(wander)
    )


def regional(n: int, cfg: SimConfig, rng: np.random.Generator) -> Keyframes:
    lo, hi = _span(cfg)
    pts = np.empty((0, 2))
    edge = SERVICE_HALF_SIZE_M + 1000.0
    while len(pts) < n:
        cand = rng.uniform(-20_000.0, 20_000.0, (2 * n + 8, 2))
        pts = np.vstack([pts, cand[np.abs(cand).max(axis=1) >= edge]])
    pts = pts[:n]
    t = np.column_stack([np.full(n, lo), np.full(n, hi)])
    return Keyframes(
        t, np.column_stack([pts[:, 0]] * 2), np.column_stack([pts[:, 1]] * 2), np.full((n, 1), 20.0)
    )
