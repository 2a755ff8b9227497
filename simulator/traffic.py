"""Road traffic: a cell transmission model of every road direction, and the cars riding on it.

Each direction of each road (``roads.ROADS``) is cut into 250 m cells holding a density of real
vehicles (veh/km over all lanes). Flows between cells follow Daganzo's cell transmission model
with Greenshields' speed–density relation ``v = v_f (1 − k / k_j)``: a cell sends
``min(q(k), Q)`` while uncongested, receives ``min(Q, q(k))`` once past critical density, and the
flow across a boundary is the smaller of the two. So a bottleneck (the incident) makes a queue
that grows upstream at the shock-wave speed and discharges at capacity when it ends.

Demand at each road's entry follows the local time of day (``DEMAND_BY_HOUR``, a morning and an
evening peak). Simulated devices are the phones of a sample of those vehicles: each entering
vehicle carries ``OCCUPANCY`` people, each a device of the feed with probability
``devices_per_person`` (market share × the run's scale). A device rides its vehicle at the speed
of the cell it is in, from entry to exit; it pings only while on the road (before and after, the
trip is someone else's: a commuter at home or work).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator.geo import FloatArray
from simulator.roads import INCIDENT_ROAD, ROADS, Road, corridors

CELL_M = 250.0
STEP_S = 5.0
"""Time step (s); CFL: 90 km/h × 5 s = 125 m < a cell."""
WARMUP_S = 2400.0
"""Traffic runs this long (s) before the run starts, so every road is loaded at its start."""
CAPACITY_VEH_H_LANE = {"arterial": 1800.0, "expressway": 2000.0}
"""Saturation flow per lane (veh/h), the usual planning values (HCM-style) for urban arterials
and expressways."""
OCCUPANCY = 1.3
"""People per car (a typical urban peak-hour occupancy)."""
DEMAND_BY_HOUR = (
    (0.0, 0.15),
    (5.0, 0.15),
    (6.5, 0.5),
    (8.0, 0.92),
    (9.5, 0.6),
    (12.0, 0.55),
    (16.5, 0.6),
    (18.0, 0.88),
    (19.5, 0.55),
    (22.0, 0.3),
    (24.0, 0.15),
)
"""(local hour, demand / capacity at a road's entry): peaks 08:00–09:30 and 18:00."""
EXPRESSWAY_DEMAND_FACTOR = 0.9
"""Expressways run below arterials' demand/capacity (ramp metering; longer trips)."""
UTC_OFFSET_H = 8.0
"""Local time of the default city (China Standard Time) for the demand profile."""
INCIDENT = (0.20, 0.60, 0.33, 0.5)
"""(start, end) as fractions of the run; capacity kept at the crash (one of three lanes blocked
and the rest slowed by the scene: a third) and in the opposite direction at the same place
(drivers slow down to look: half). Both stay above the flow at which Greenshields' queue speed
falls below the pipeline's moving threshold (7.2 km/h), so queued cars still count as moving."""
INCIDENT_AT = 0.5
"""Where along its corridor (fraction, in the incident direction) the crash is."""
MIN_SPEED_KMH = 3.0


def demand_ratio(t_ms: FloatArray, road: Road) -> FloatArray:
    """Demand/capacity at ``t_ms`` (epoch ms) at the road's entry."""
    hour = ((t_ms / 3.6e6) + UTC_OFFSET_H) % 24.0
    h, r = zip(*DEMAND_BY_HOUR, strict=True)
    out: FloatArray = np.interp(hour, h, r)
    return out * (EXPRESSWAY_DEMAND_FACTOR if road.kind == "expressway" else 1.0)


def peak_factor(t_ms: float) -> float:
    """Demand at ``t_ms`` relative to the day's mean (1 = an average hour)."""
    h, r = zip(*DEMAND_BY_HOUR, strict=True)
    mean = float(np.mean(np.interp(np.linspace(0.0, 24.0, 289), h, r)))
    hour = (t_ms / 3.6e6 + UTC_OFFSET_H) % 24.0
    return float(np.interp(hour, h, r)) / mean


@dataclass(frozen=True)
class Incident:
    """The crash: corridor, where (m along its road, increasing direction), when (s of the run)."""

    corridor_slug: str
    s_m: float
    start_s: float
    end_s: float


def incident_for(duration_s: float) -> Incident:
    road = ROADS[INCIDENT_ROAD]
    mine = [c for c in corridors() if c.road is road]
    c = mine[len(mine) // 2]
    return Incident(
        c.slug, c.s0 + INCIDENT_AT * (c.s1 - c.s0), INCIDENT[0] * duration_s, INCIDENT[1] * duration_s
    )


@dataclass
class Direction:
    """One direction of one road after the run: densities and speeds per (step, cell)."""

    road: Road
    sign: int  # +1: along the polyline, -1: against it
    speed_kmh: npt.NDArray[np.float32]  # (steps + 1, cells)
    entered: FloatArray  # cumulative vehicles in at each step (steps + 1,)


def _run_direction(road: Road, sign: int, start_ms: int, steps: int, inc: Incident) -> Direction:
    n = int(np.ceil(road.length_m / CELL_M))
    L = road.length_m / n / 1000.0  # km
    vf = road.free_flow_kmh
    q_lane = CAPACITY_VEH_H_LANE[road.kind]
    Q = q_lane * road.lanes
    kj = 4.0 * Q / vf
    # Cell index of the incident in this direction's order (cells run in the direction of travel).
    at = int(inc.s_m / road.length_m * n) if sign > 0 else int((road.length_m - inc.s_m) / road.length_m * n)
    at = min(at, n - 1)
    keep = INCIDENT[2] if sign > 0 else INCIDENT[3]
    incident_here = road is ROADS[INCIDENT_ROAD]
    t_s = -WARMUP_S + STEP_S * np.arange(steps + 1)
    demand = demand_ratio((start_ms + 1000.0 * t_s).astype(np.float64), road) * Q
    k = np.zeros(n)
    speed = np.empty((steps + 1, n), dtype=np.float32)
    entered = np.zeros(steps + 1)
    cap = np.full(n, Q)
    for i in range(steps + 1):
        speed[i] = np.maximum(vf * (1.0 - k / kj), MIN_SPEED_KMH)
        if i == steps:
            break
        if incident_here:
            cap[at] = Q * keep if inc.start_s <= t_s[i] < inc.end_s else Q
        q = vf * k * (1.0 - k / kj)
        crit = k >= kj / 2
        send = np.minimum(np.where(crit, Q, q), cap)
        recv = np.minimum(np.where(crit, q, Q), cap)
        inflow = min(demand[i], recv[0])
        between = np.minimum(send[:-1], recv[1:])
        y_in = np.concatenate([[inflow], between])
        y_out = np.concatenate([between, [send[-1]]])
        k = np.maximum(k + STEP_S / 3600.0 * (y_in - y_out) / L, 0.0)
        entered[i + 1] = entered[i] + inflow * STEP_S / 3600.0
    return Direction(road, sign, speed, entered)


class Traffic:
    """Every road direction's flow over the run, and the cars (devices) sampled from it.

    Times: seconds since the run's start; positions: metres (``roads`` frame).
    """

    def __init__(
        self, duration_s: float, start_ms: int, devices_per_person: float, rng: np.random.Generator
    ) -> None:
        self.steps = int(np.ceil((WARMUP_S + duration_s) / STEP_S)) + 1
        self.incident = incident_for(duration_s)
        self.directions = [
            _run_direction(road, sign, start_ms, self.steps, self.incident)
            for road in ROADS
            for sign in (1, -1)
        ]
        per_vehicle = OCCUPANCY * devices_per_person
        tracks, dirs, entries = [], [], []
        for d_index, d in enumerate(self.directions):
            count = int(rng.poisson(d.entered[-1] * per_vehicle))
            # Inverse CDF of the cumulative inflow: entry times follow the demand.
            u = np.sort(rng.uniform(0.0, d.entered[-1], count))
            steps_f = np.interp(u, d.entered, np.arange(self.steps + 1))
            s = self._ride(d, steps_f)
            run = s[:, int(WARMUP_S / STEP_S) :]
            on_run = ((run >= 0) & (run < d.road.length_m)).any(axis=1)
            tracks.append(s[on_run])
            dirs.append(np.full(int(on_run.sum()), d_index))
            entries.append(steps_f[on_run])
        self.s = np.concatenate(tracks) if tracks else np.zeros((0, self.steps + 1), np.float32)
        self.direction = np.concatenate(dirs).astype(np.int64)
        self.entry_step = np.concatenate(entries)
        self.lane_offset_m = 2.0 + 3.5 * (rng.integers(0, 4, len(self.direction)) + 0.5)
        self.lane_offset_m = np.minimum(
            self.lane_offset_m,
            2.0 + 3.5 * (np.array([self.directions[i].road.lanes for i in self.direction]) - 0.5),
        )

    def __len__(self) -> int:
        return len(self.direction)

    def _ride(self, d: Direction, entry_steps: FloatArray) -> npt.NDArray[np.float32]:
        """Distance travelled (m, in the direction of travel) at every step; ≥ length once out."""
        n = len(entry_steps)
        s = np.full((n, self.steps + 1), -1.0, dtype=np.float32)
        pos = np.zeros(n)
        cells = d.speed_kmh.shape[1]
        cell_m = d.road.length_m / cells
        for i in range(self.steps + 1):
            started = entry_steps <= i
            s[:, i] = np.where(started, pos, -1.0)
            if i == self.steps:
                break
            cell = np.minimum((pos / cell_m).astype(np.int64), cells - 1)
            v = d.speed_kmh[i, cell] / 3.6
            frac = np.clip(i + 1 - entry_steps, 0.0, 1.0)  # part of this step already on the road
            pos = np.where(pos < d.road.length_m, pos + v * STEP_S * frac, pos)
        return s

    def free_flow_kmh(self, idx: npt.NDArray[np.int64]) -> FloatArray:
        """The free-flow speed (km/h) of the road each car of ``idx`` drives on."""
        return np.array([self.directions[i].road.free_flow_kmh for i in self.direction[idx]])

    def at(
        self, idx: npt.NDArray[np.int64], t: FloatArray
    ) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
        """Positions (m) of cars ``idx`` at times ``t`` (rows: cars), and whether each is on its road."""
        g = (t + WARMUP_S) / STEP_S
        i0 = np.clip(np.floor(g).astype(np.int64), 0, self.steps - 1)
        frac = np.clip(g - i0, 0.0, 1.0)
        track = self.s[idx]
        a = np.take_along_axis(track, i0, axis=1)
        b = np.take_along_axis(track, i0 + 1, axis=1)
        along = a + frac * (b - a)
        x = np.zeros_like(t)
        y = np.zeros_like(t)
        on = np.zeros(t.shape, dtype=bool)
        dirs = self.direction[idx]
        for d_index in np.unique(dirs):
            rows = dirs == d_index
            d = self.directions[int(d_index)]
            length = d.road.length_m
            s_dir = along[rows]
            on[rows] = (a[rows] >= 0) & (b[rows] >= 0) & (s_dir < length)
            s_road = s_dir if d.sign > 0 else length - s_dir
            px, py, ux, uy = d.road.position(s_road)
            side = self.lane_offset_m[idx][rows][:, None] * d.sign
            # Drive on the right of the direction of travel.
            x[rows] = px + side * uy
            y[rows] = py - side * ux
        return x, y, on
