"""The simulated city: who is where, when. Vectorized over devices × ping slots.

Kinds of device (``KINDS``), counted by :mod:`.population`: commuters (residents and
commuters; the share travelling during the run makes one trip between a home and a work cluster,
walking, cycling or driving an L-shaped route, the others stay put), vehicles (cars on the road
network of :mod:`.traffic`, pinging while on the road), stadium attendees (arrive during 5–40 % of
the run, sit within 170 m of the center, leave during 60–80 %), tourists (arrive 09:00–21:00
local time, peaking at 13:30; visit 1–3 scenic areas
with log-normal dwell times, median 75, 30 and 40 min) and regional devices (outside the bundled
service area; ingest drops them as ``outside_area``). Everyone but vehicles wanders a little
while staying somewhere.

Slots are every ``interval_s`` with ±20 % jitter from a random phase; a device pings in every slot
while moving and in every k-th one while standing still (k per device from ``idle_every``), so its
``ts`` are strictly increasing (≥ 0.6 intervals apart). :class:`City` generates any span of event
time (devices in groups of ``CHUNK_DEVICES``), so memory follows the span's pings, not the run's;
consecutive spans give the same pings as one span over their union. Position noise is Gaussian
with σ = accuracy / 2 per axis, AR(1)-correlated in time as real fixes are (ρ = 0.9 GNSS, 0.95
Wi-Fi, 0.99 cell).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from simulator.config import SimConfig
from simulator.geo import FloatArray, LocalFrame
from simulator.motion import Keyframes, commuters, regional, stadium_crowd, tourists
from simulator.population import census
from simulator.traffic import Traffic

KINDS = ("commuter", "vehicle", "stadium", "tourist", "regional")
COMMUTER, VEHICLE, STADIUM_KIND, TOURIST, REGIONAL = range(5)
SOURCES = ("gnss", "wifi", "cell")
_ACC_MEDIAN_M = np.array([8.0, 25.0, 110.0])
_NOISE_RHO = np.array([0.9, 0.95, 0.99])

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Pings:
    """Every well-formed ping, sorted by (device, ts). Absent optional fields: NaN / -1.

    Values are already rounded as serialized (lat/lon 6 decimals, acc/hdg 1, spd 2), so the ground
    truth sees exactly what a consumer decodes.
    """

    device_ids: list[str]
    device_kind: npt.NDArray[np.int8]
    device_free_kmh: FloatArray
    """Free-flow speed (km/h) of each car's road; NaN for other devices."""
    device: npt.NDArray[np.int32]
    ts_ms: IntArray
    lat: FloatArray
    lon: FloatArray
    acc: FloatArray
    spd: FloatArray
    hdg: FloatArray
    src: npt.NDArray[np.int8]

    @property
    def kind(self) -> npt.NDArray[np.int8]:
        out: npt.NDArray[np.int8] = self.device_kind[self.device]
        return out


CHUNK_DEVICES = 40_000
"""Devices generated at once (bounds memory to ~chunk × slots × a few dozen bytes)."""
MOVING_MPS = 1.0
"""A slot counts as moving (pinged whatever ``idle_every``) above this speed (m/s)."""


@dataclass
class _Group:
    """A block of devices of one kind, with everything drawn once per device (``static``)."""

    index: int
    kind: int
    first: int  # index of its first device
    n: int
    frames: Keyframes | None  # None: cars, rows ``cars`` of the traffic
    cars: IntArray | None
    static: dict[str, npt.NDArray[np.generic]] = field(default_factory=dict)


def _groups(
    cfg: SimConfig, start_ms: int, rng: np.random.Generator
) -> tuple[list[_Group], list[int], Traffic]:
    n = cfg.device_count()
    plan = census(n, cfg.duration_s, start_ms, cfg.tourist_share)
    traffic = Traffic(cfg.duration_s, start_ms, plan.devices_per_person, rng)
    crowd = cfg.crowd()
    fixed = [len(traffic), crowd, plan.tourists, plan.regional]
    if sum(fixed) > n:  # a tiny run: cars first go, then tourists, regional
        fixed[0] = max(0, min(fixed[0], n - crowd - plan.tourists - plan.regional))
        fixed[2] = min(fixed[2], n - crowd - fixed[0])
        fixed[3] = min(fixed[3], n - crowd - fixed[0] - fixed[2])
    cars = rng.permutation(len(traffic))[: fixed[0]]
    counts = [n - sum(fixed), fixed[0], fixed[1], fixed[2], fixed[3]]
    groups: list[_Group] = []
    first = 0
    for k, count in enumerate(counts):
        for lo in range(0, count, CHUNK_DEVICES):
            m = min(CHUNK_DEVICES, count - lo)
            if k == VEHICLE:
                g = _Group(len(groups), k, first, m, None, np.sort(cars)[lo : lo + m])
            elif k == COMMUTER:
                g = _Group(len(groups), k, first, m, commuters(m, cfg, rng, plan.travel_share), None)
            else:
                frames = (
                    tourists(m, cfg, rng, start_ms)
                    if k == TOURIST
                    else {STADIUM_KIND: stadium_crowd, REGIONAL: regional}[k](m, cfg, rng)
                )
                g = _Group(len(groups), k, first, m, frames, None)
            groups.append(g)
            first += m
    for g in groups:
        g.static = _static_draws(g, cfg, rng)
    return groups, counts, traffic


def _static_draws(g: _Group, cfg: SimConfig, rng: np.random.Generator) -> dict[str, npt.NDArray[np.generic]]:
    """Per device: slot phase, wander, idle cadence, positioning source and which fields it sends."""
    n = g.n
    out: dict[str, npt.NDArray[np.generic]] = {"phase": rng.uniform(0.0, cfg.interval_s, n)}
    if g.frames is not None:
        out["om"], out["ph"] = rng.uniform(0.004, 0.012, n), rng.uniform(0, 2 * np.pi, n)
    every = rng.integers(cfg.idle_every[0], cfg.idle_every[1] + 1, n)
    out["every"], out["offset"] = every, rng.integers(0, every)
    is_car = g.kind == VEHICLE
    src_p = [0.8, 0.2, 0.0] if g.kind == STADIUM_KIND else [0.65, 0.25, 0.10]
    src = (rng.random(n)[:, None] > np.cumsum(src_p)[None, :]).sum(axis=1)
    src = (np.zeros(n, dtype=np.int64) if is_car else src).astype(np.int8)
    out["src"] = src
    out["acc_true"] = np.clip(_ACC_MEDIAN_M[src] * rng.lognormal(0.0, 0.4, n), 2.0, 180.0)
    out["sends_acc"] = rng.random(n) < 0.95
    out["sends_spd"] = np.full(n, True) if is_car else (src == 0) & (rng.random(n) < 0.6)
    out["sends_src"] = np.full(n, True) if is_car else rng.random(n) < 0.9
    return out


@dataclass
class _Slots:
    """Per-slot draws of one group for slots ``k0 .. k0 + len - 1`` (rows: devices)."""

    k0: int
    jitter: FloatArray
    acc_ln: FloatArray
    nx: FloatArray
    ny: FloatArray
    spd_noise: FloatArray


class City:
    """The simulated city's devices and their state, generating pings for any span of event time.

    Everything drawn once per device (paths, cars, phase, source, accuracy…) comes from the run's
    ``rng`` at construction; everything drawn per ping slot (jitter, accuracy and speed noise, the
    innovations of the AR(1) position noise) from a generator keyed by (run key, group, slot). The
    AR(1) noise is the one state carried from span to span. So :meth:`pings` over consecutive spans
    gives exactly the pings of one call over their union, whatever the cut, and memory follows the
    span, not the run.
    """

    def __init__(self, cfg: SimConfig, start_ms: int, rng: np.random.Generator) -> None:
        self.cfg = cfg
        self.start_ms = start_ms
        prefix = f"{int(rng.integers(0, 2**24)):06x}"
        self.groups, counts, self.traffic = _groups(cfg, start_ms, rng)
        n = sum(counts)
        self._key = int(rng.integers(0, 2**63))
        self.device_ids = [f"sim-{prefix}-{i:06x}" for i in range(n)]
        self.device_kind = np.repeat(np.arange(len(KINDS), dtype=np.int8), counts)
        self.device_free_kmh = np.full(n, np.nan)
        for g in self.groups:
            if g.cars is not None:
                self.device_free_kmh[g.first : g.first + g.n] = self.traffic.free_flow_kmh(g.cars)
        self.slots_total = int(cfg.duration_s / cfg.interval_s) + 2
        self._cache: dict[int, _Slots] = {}
        self._eps: dict[int, tuple[int, FloatArray, FloatArray]] = {}
        self._done_s = 0.0

    def _slot_draws(self, g: _Group, k_lo: int, k_hi: int) -> _Slots:
        """Draws of slots ``[k_lo, k_hi)``; spans must come in increasing order (the noise chain)."""
        n = g.n
        rho = _NOISE_RHO[g.static["src"].astype(np.int64)]
        innov = np.sqrt(1.0 - rho * rho)
        last_k, ex, ey = self._eps.get(g.index, (-1, np.zeros(n), np.zeros(n)))
        old = self._cache.get(g.index)
        cols: dict[str, list[FloatArray]] = {k: [] for k in ("jitter", "acc_ln", "nx", "ny", "spd_noise")}
        for k in range(k_lo, k_hi):
            if old is not None and old.k0 <= k < old.k0 + old.jitter.shape[1]:
                j = k - old.k0
                for name in cols:
                    cols[name].append(getattr(old, name)[:, j])
                continue
            if k != last_k + 1:
                raise ValueError(f"slot {k} requested after slot {last_k}: spans must be consecutive")
            r = np.random.default_rng([self._key, g.index, k])
            z = r.standard_normal((2, n))
            ex, ey = (z[0], z[1]) if k == 0 else (rho * ex + innov * z[0], rho * ey + innov * z[1])
            last_k = k
            cols["jitter"].append(r.uniform(-0.2, 0.2, n))
            cols["acc_ln"].append(r.lognormal(0.0, 0.15, n))
            cols["nx"].append(ex)
            cols["ny"].append(ey)
            cols["spd_noise"].append(r.normal(0.0, 0.2, n))
        self._eps[g.index] = (last_k, ex, ey)
        shape = (n, 0)
        out = _Slots(k_lo, *(np.column_stack(v) if v else np.zeros(shape) for v in cols.values()))
        self._cache[g.index] = out
        return out

    def pings(self, t0_s: float, t1_s: float) -> Pings:
        """Every ping with ``t0_s ≤ t < t1_s`` (s since the run's start), sorted by (device, ts).

        Calls must cover consecutive spans (``t0_s`` = the previous ``t1_s``), from 0.
        """
        if t0_s != self._done_s:
            raise ValueError(f"pings from {t0_s} s requested after {self._done_s} s: spans must follow on")
        self._done_s = t1_s
        interval = self.cfg.interval_s
        k_lo = max(0, int(np.floor(t0_s / interval - 1.2)))
        k_hi = min(self.slots_total, int(np.ceil(t1_s / interval + 0.2)) + 1)
        parts = [self._group_pings(g, t0_s, t1_s, k_lo, max(k_lo, k_hi)) for g in self.groups]
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return Pings(
            device_ids=self.device_ids,
            device_kind=self.device_kind,
            device_free_kmh=self.device_free_kmh,
            device=cols["device"].astype(np.int32),
            ts_ms=cols["ts_ms"].astype(np.int64),
            lat=cols["lat"],
            lon=cols["lon"],
            acc=cols["acc"],
            spd=cols["spd"],
            hdg=cols["hdg"],
            src=cols["src"].astype(np.int8),
        )

    def _group_pings(
        self, g: _Group, t0_s: float, t1_s: float, k_lo: int, k_hi: int
    ) -> dict[str, npt.NDArray[np.generic]]:
        cfg, st = self.cfg, g.static
        n = g.n
        d = self._slot_draws(g, k_lo, k_hi)
        k = np.arange(k_lo, k_hi)
        phase = st["phase"].astype(np.float64)
        t = phase[:, None] + k[None, :] * cfg.interval_s + d.jitter * cfg.interval_s
        valid = (t >= max(t0_s, 0.0)) & (t < min(t1_s, cfg.duration_s))
        if g.cars is not None:
            x, y, on = self.traffic.at(g.cars, t)
            ax, ay, _ = self.traffic.at(g.cars, t - 0.5)
            bx, by, _ = self.traffic.at(g.cars, t + 0.5)
            valid &= on
        elif g.frames is not None:
            om, ph = st["om"].astype(np.float64), st["ph"].astype(np.float64)
            x, y = g.frames.at(t, om, ph)
            ax, ay = g.frames.at(t - 0.5, om, ph)
            bx, by = g.frames.at(t + 0.5, om, ph)
        else:
            raise ValueError("a group holds either cars or keyframes")
        vx, vy = bx - ax, by - ay
        speed = np.hypot(vx, vy)
        every, offset = st["every"].astype(np.int64), st["offset"].astype(np.int64)
        valid &= (speed >= MOVING_MPS) | ((k[None, :] + offset[:, None]) % every[:, None] == 0)

        src = st["src"].astype(np.int64)
        acc_true = st["acc_true"].astype(np.float64)
        acc_ping = np.clip(acc_true[:, None] * d.acc_ln, 1.0, 195.0)
        sigma = acc_true[:, None] / 2
        lat, lon = LocalFrame(*cfg.center).to_latlon(x + sigma * d.nx, y + sigma * d.ny)
        spd = np.maximum(speed + d.spd_noise, 0.0)
        hdg = np.round(np.degrees(np.arctan2(vx, vy)) % 360.0, 1) % 360.0
        sel = valid
        is_car = g.kind == VEHICLE
        return {
            "device": np.broadcast_to(np.arange(g.first, g.first + n, dtype=np.int32)[:, None], t.shape)[sel],
            "ts_ms": self.start_ms + np.floor(t[sel] * 1000).astype(np.int64),
            "lat": np.round(lat[sel], 6),
            "lon": np.round(lon[sel], 6),
            "acc": np.where(st["sends_acc"][:, None], np.round(acc_ping, 1), np.nan)[sel],
            "spd": np.where(st["sends_spd"][:, None], np.round(spd, 2), np.nan)[sel],
            "hdg": (hdg if is_car else np.full_like(hdg, np.nan))[sel],
            "src": np.broadcast_to(np.where(st["sends_src"], src, -1).astype(np.int8)[:, None], t.shape)[sel],
        }


def build_pings(cfg: SimConfig, start_ms: int, rng: np.random.Generator) -> tuple[Pings, Traffic]:
    """Generate every well-formed ping of the run in one span, and the traffic they ride on."""
    city = City(cfg, start_ms, rng)
    return city.pings(0.0, cfg.duration_s), city.traffic
