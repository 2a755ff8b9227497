"""The simulated city: who is where, when. Vectorized over devices × ping slots.

Kinds of device (``KINDS``): commuters (one trip between a home and a work cluster, walking,
cycling or driving an L-shaped route), vehicles (driving up and down an arterial road at
32–61 km/h; one road has a congestion episode during 30–60 % of the run where speeds drop to
15 %), stadium attendees (arrive during 5–40 % of the run, sit within 170 m of the center, leave
during 60–80 %), tourists (visit 1–3 scenic areas with log-normal dwell times, median 75, 30 and
40 min) and regional devices (outside the bundled service area; ingest drops them as
``outside_area``). Everyone but vehicles wanders a little while staying somewhere.

Every device pings every ``interval_s`` with ±20 % jitter from a random phase, so its ``ts`` are
strictly increasing (≥ 0.6 intervals apart). Position noise is Gaussian with σ = accuracy / 2 per
axis, AR(1)-correlated in time as real fixes are (ρ = 0.9 GNSS, 0.95 Wi-Fi, 0.99 cell).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator.config import SimConfig
from simulator.geo import FloatArray, LocalFrame
from simulator.motion import Vehicles, commuters, regional, stadium_crowd, tourists

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


def _kind_counts(cfg: SimConfig) -> list[int]:
    n = cfg.devices
    crowd = cfg.crowd()
    rest = n - crowd
    n_cars = int(rest * cfg.vehicle_share)
    n_tourists = int(rest * cfg.tourist_share)
    n_regional = int(rest * cfg.regional_share)
    return [rest - n_cars - n_tourists - n_regional, n_cars, crowd, n_tourists, n_regional]


def _ar1_noise(rng: np.random.Generator, rho: FloatArray, slots: int) -> tuple[FloatArray, FloatArray]:
    """Standard-normal noise per (device, slot) per axis, AR(1) in slots with per-device ``rho``."""
    eps = rng.standard_normal((2, len(rho), slots))
    innov = np.sqrt(1.0 - rho * rho)
    for k in range(1, slots):
        eps[:, :, k] = rho * eps[:, :, k - 1] + innov * eps[:, :, k]
    return eps[0], eps[1]


def build_pings(cfg: SimConfig, start_ms: int, rng: np.random.Generator) -> Pings:
    """Generate every well-formed ping of the run, deterministically from ``rng``."""
    counts = _kind_counts(cfg)
    n = cfg.devices
    kind = np.repeat(np.arange(len(KINDS), dtype=np.int8), counts)
    prefix = f"{int(rng.integers(0, 2**24)):06x}"
    device_ids = [f"sim-{prefix}-{i:06x}" for i in range(n)]

    slots = int(cfg.duration_s / cfg.interval_s) + 2
    phase = rng.uniform(0.0, cfg.interval_s, n)
    t = phase[:, None] + np.arange(slots)[None, :] * cfg.interval_s
    t = t + rng.uniform(-0.2, 0.2, (n, slots)) * cfg.interval_s
    valid = (t >= 0) & (t < cfg.duration_s)

    x = np.zeros((n, slots))
    y = np.zeros((n, slots))
    vx = np.zeros((n, slots))
    vy = np.zeros((n, slots))
    omega = rng.uniform(0.004, 0.012, n)
    wphase = rng.uniform(0, 2 * np.pi, n)
    builders = {COMMUTER: commuters, STADIUM_KIND: stadium_crowd, TOURIST: tourists, REGIONAL: regional}
    offsets = np.concatenate([[0], np.cumsum(counts)])
    for k in range(len(KINDS)):
        lo, hi = int(offsets[k]), int(offsets[k + 1])
        if hi == lo:
            continue
        tk = t[lo:hi]
        if k == VEHICLE:
            cars = Vehicles(hi - lo, cfg, rng)
            x[lo:hi], y[lo:hi] = cars.at(tk)
            ax, ay = cars.at(tk - 0.5)
            bx, by = cars.at(tk + 0.5)
        else:
            frames = builders[k](hi - lo, cfg, rng)
            om, ph = omega[lo:hi], wphase[lo:hi]
            x[lo:hi], y[lo:hi] = frames.at(tk, om, ph)
            ax, ay = frames.at(tk - 0.5, om, ph)
            bx, by = frames.at(tk + 0.5, om, ph)
        vx[lo:hi], vy[lo:hi] = bx - ax, by - ay
    speed = np.hypot(vx, vy)

    # Positioning source, accuracy and which optional fields each device sends.
    is_car = kind == VEHICLE
    src_p = np.where((kind == STADIUM_KIND)[:, None], [0.8, 0.2, 0.0], [0.65, 0.25, 0.10])
    src = (rng.random(n)[:, None] > np.cumsum(src_p, axis=1)).sum(axis=1)
    src = np.where(is_car, 0, src).astype(np.int8)
    acc_true = np.clip(_ACC_MEDIAN_M[src] * rng.lognormal(0.0, 0.4, n), 2.0, 180.0)
    acc_ping = np.clip(acc_true[:, None] * rng.lognormal(0.0, 0.15, (n, slots)), 1.0, 195.0)
    nx, ny = _ar1_noise(rng, _NOISE_RHO[src], slots)
    sigma = acc_true[:, None] / 2
    lat, lon = LocalFrame(*cfg.center).to_latlon(x + sigma * nx, y + sigma * ny)

    sends_acc = rng.random(n) < 0.95
    sends_spd = is_car | ((src == 0) & (rng.random(n) < 0.6))
    sends_src = is_car | (rng.random(n) < 0.9)
    spd = np.maximum(speed + rng.normal(0.0, 0.2, (n, slots)), 0.0)
    hdg = np.round(np.degrees(np.arctan2(vx, vy)) % 360.0, 1) % 360.0

    sel = valid
    dev = np.broadcast_to(np.arange(n, dtype=np.int32)[:, None], (n, slots))[sel]
    return Pings(
        device_ids=device_ids,
        device_kind=kind,
        device=dev,
        ts_ms=start_ms + np.floor(t[sel] * 1000).astype(np.int64),
        lat=np.round(lat[sel], 6),
        lon=np.round(lon[sel], 6),
        acc=np.where(sends_acc[:, None], np.round(acc_ping, 1), np.nan)[sel],
        spd=np.where(sends_spd[:, None], np.round(spd, 2), np.nan)[sel],
        hdg=np.where(is_car[:, None], hdg, np.nan)[sel],
        src=np.broadcast_to(np.where(sends_src, src, -1).astype(np.int8)[:, None], (n, slots))[sel],
    )
