"""The simulated city: who is where, when. Vectorized over devices × ping slots.

Kinds of device (``KINDS``), counted by :mod:`.population`: commuters (residents and
commuters; the share travelling during the run makes one trip between a home and a work cluster,
walking, cycling or driving an L-shaped route, the others stay put), vehicles (cars on the road
network of :mod:`.traffic`, pinging while on the road), stadium attendees (arrive during 5–40 % of
the run, sit within 170 m of the center, leave during 60–80 %), tourists (visit 1–3 scenic areas
with log-normal dwell times, median 75, 30 and 40 min) and regional devices (outside the bundled
service area; ingest drops them as ``outside_area``). Everyone but vehicles wanders a little
while staying somewhere.

Slots are every ``interval_s`` with ±20 % jitter from a random phase; a device pings in every slot
while moving and in every k-th one while standing still (k per device from ``idle_every``), so its
``ts`` are strictly increasing (≥ 0.6 intervals apart). Devices are generated in chunks, so memory
follows the pings, not devices × slots. Position noise is Gaussian with σ = accuracy / 2 per
axis, AR(1)-correlated in time as real fixes are (ρ = 0.9 GNSS, 0.95 Wi-Fi, 0.99 cell).
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _ar1_noise(rng: np.random.Generator, rho: FloatArray, slots: int) -> tuple[FloatArray, FloatArray]:
    """Standard-normal noise per (device, slot) per axis, AR(1) in slots with per-device ``rho``."""
    eps = rng.standard_normal((2, len(rho), slots))
    innov = np.sqrt(1.0 - rho * rho)
    for k in range(1, slots):
        eps[:, :, k] = rho * eps[:, :, k - 1] + innov * eps[:, :, k]
    return eps[0], eps[1]


@dataclass
class _Chunk:
    kind: int
    first: int  # index of its first device
    n: int
    frames: Keyframes | None  # None: cars, rows ``cars`` of the traffic
    cars: IntArray | None


def _chunks(
    cfg: SimConfig, start_ms: int, rng: np.random.Generator
) -> tuple[list[_Chunk], list[int], Traffic]:
    n = cfg.device_count()
    plan = census(n, cfg.duration_s, start_ms)
    traffic = Traffic(cfg.duration_s, start_ms, plan.devices_per_person, rng)
    crowd = cfg.crowd()
    fixed = [len(traffic), crowd, plan.tourists, plan.regional]
    if sum(fixed) > n:  # a tiny run: cars first go, then tourists, regional
        fixed[0] = max(0, min(fixed[0], n - crowd - plan.tourists - plan.regional))
        fixed[2] = min(fixed[2], n - crowd - fixed[0])
        fixed[3] = min(fixed[3], n - crowd - fixed[0] - fixed[2])
    cars = rng.permutation(len(traffic))[: fixed[0]]
    counts = [n - sum(fixed), fixed[0], fixed[1], fixed[2], fixed[3]]
    chunks: list[_Chunk] = []
    first = 0
    for k, count in enumerate(counts):
        for lo in range(0, count, CHUNK_DEVICES):
            m = min(CHUNK_DEVICES, count - lo)
            if k == VEHICLE:
                chunks.append(_Chunk(k, first, m, None, np.sort(cars)[lo : lo + m]))
            elif k == COMMUTER:
                chunks.append(_Chunk(k, first, m, commuters(m, cfg, rng, plan.travel_share), None))
            else:
                builder = {STADIUM_KIND: stadium_crowd, TOURIST: tourists, REGIONAL: regional}[k]
                chunks.append(_Chunk(k, first, m, builder(m, cfg, rng), None))
            first += m
    return chunks, counts, traffic


def _chunk_pings(
    c: _Chunk, cfg: SimConfig, start_ms: int, traffic: Traffic, rng: np.random.Generator
) -> dict[str, npt.NDArray[np.generic]]:
    n = c.n
    slots = int(cfg.duration_s / cfg.interval_s) + 2
    phase = rng.uniform(0.0, cfg.interval_s, n)
    t = phase[:, None] + np.arange(slots)[None, :] * cfg.interval_s
    t = t + rng.uniform(-0.2, 0.2, (n, slots)) * cfg.interval_s
    valid = (t >= 0) & (t < cfg.duration_s)
    if c.cars is not None:
        x, y, on = traffic.at(c.cars, t)
        ax, ay, _ = traffic.at(c.cars, t - 0.5)
        bx, by, _ = traffic.at(c.cars, t + 0.5)
        valid &= on
    elif c.frames is not None:
        om, ph = rng.uniform(0.004, 0.012, n), rng.uniform(0, 2 * np.pi, n)
        x, y = c.frames.at(t, om, ph)
        ax, ay = c.frames.at(t - 0.5, om, ph)
        bx, by = c.frames.at(t + 0.5, om, ph)
    else:
        raise ValueError("a chunk holds either cars or keyframes")
    vx, vy = bx - ax, by - ay
    speed = np.hypot(vx, vy)
    every = rng.integers(cfg.idle_every[0], cfg.idle_every[1] + 1, n)
    offset = rng.integers(0, every)
    valid &= (speed >= MOVING_MPS) | ((np.arange(slots)[None, :] + offset[:, None]) % every[:, None] == 0)

    # Positioning source, accuracy and which optional fields each device sends.
    is_car = c.kind == VEHICLE
    src_p = [0.8, 0.2, 0.0] if c.kind == STADIUM_KIND else [0.65, 0.25, 0.10]
    src = (rng.random(n)[:, None] > np.cumsum(src_p)[None, :]).sum(axis=1)
    src = (np.zeros(n, dtype=np.int64) if is_car else src).astype(np.int8)
    acc_true = np.clip(_ACC_MEDIAN_M[src] * rng.lognormal(0.0, 0.4, n), 2.0, 180.0)
    acc_ping = np.clip(acc_true[:, None] * rng.lognormal(0.0, 0.15, (n, slots)), 1.0, 195.0)
    nx, ny = _ar1_noise(rng, _NOISE_RHO[src], slots)
    sigma = acc_true[:, None] / 2
    lat, lon = LocalFrame(*cfg.center).to_latlon(x + sigma * nx, y + sigma * ny)

    sends_acc = rng.random(n) < 0.95
    sends_spd = np.full(n, True) if is_car else (src == 0) & (rng.random(n) < 0.6)
    sends_src = np.full(n, True) if is_car else rng.random(n) < 0.9
    spd = np.maximum(speed + rng.normal(0.0, 0.2, (n, slots)), 0.0)
    hdg = np.round(np.degrees(np.arctan2(vx, vy)) % 360.0, 1) % 360.0
    sel = valid
    return {
        "device": np.broadcast_to(np.arange(c.first, c.first + n, dtype=np.int32)[:, None], (n, slots))[sel],
        "ts_ms": start_ms + np.floor(t[sel] * 1000).astype(np.int64),
        "lat": np.round(lat[sel], 6),
        "lon": np.round(lon[sel], 6),
        "acc": np.where(sends_acc[:, None], np.round(acc_ping, 1), np.nan)[sel],
        "spd": np.where(sends_spd[:, None], np.round(spd, 2), np.nan)[sel],
        "hdg": (hdg if is_car else np.full_like(hdg, np.nan))[sel],
        "src": np.broadcast_to(np.where(sends_src, src, -1).astype(np.int8)[:, None], (n, slots))[sel],
    }


def build_pings(cfg: SimConfig, start_ms: int, rng: np.random.Generator) -> tuple[Pings, Traffic]:
    """Generate every well-formed ping of the run, deterministically from ``rng``, and the traffic
    they ride on."""
    prefix = f"{int(rng.integers(0, 2**24)):06x}"
    chunks, counts, traffic = _chunks(cfg, start_ms, rng)
    n = sum(counts)
    kind = np.repeat(np.arange(len(KINDS), dtype=np.int8), counts)
    free = np.full(n, np.nan)
    parts = []
    for c in chunks:
        parts.append(_chunk_pings(c, cfg, start_ms, traffic, rng))
        if c.cars is not None:
            free[c.first : c.first + c.n] = traffic.free_flow_kmh(c.cars)
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return (
        Pings(
            device_ids=[f"sim-{prefix}-{i:06x}" for i in range(n)],
            device_kind=kind,
            device_free_kmh=free,
            device=cols["device"].astype(np.int32),
            ts_ms=cols["ts_ms"].astype(np.int64),
            lat=cols["lat"],
            lon=cols["lon"],
            acc=cols["acc"],
            spd=cols["spd"],
            hdg=cols["hdg"],
            src=cols["src"].astype(np.int8),
        ),
        traffic,
    )
