"""Exact partials of closed windows: dedupe, day cap, per-device bounding, speed, per-cell sums.

Implements docs/ARCHITECTURE.md "Counting semantics" 1–6 with vectorized group-bys (``lexsort``
plus run boundaries), so closing a window costs a few sorts of its rows, not a Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from hexpulse.pings import F64, I64, U64, Bool, PingColumns
from hexpulse.settings import Settings
from hexpulse.times import MS_PER_DAY, window_of_day, window_start
from hexpulse.units import whole_kmh

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG) used for derived speeds, metres."""


@dataclass(frozen=True)
class Bounds:
    """Contribution bounds. ``window_ms`` ms; speeds m/s; L = ``cells_per_window``;
    W = ``windows_per_device_day``."""

    window_ms: int
    cells_per_window: int = 1
    windows_per_device_day: int = 1440
    speed_clamp_mps: float = 50.0
    moving_speed_mps: float = 2.0
    speed_edges_kmh: tuple[int, ...] = (20, 35, 50, 65, 80)

    @classmethod
    def from_settings(cls, settings: Settings) -> Bounds:
        return cls(
            window_ms=settings.window_ms,
            cells_per_window=settings.cells_per_window,
            windows_per_device_day=settings.windows_per_device_day,
            speed_clamp_mps=settings.speed_clamp_mps,
            moving_speed_mps=settings.moving_speed_mps,
            speed_edges_kmh=tuple(settings.traffic_speed_edges_kmh),
        )

    @property
    def day_modulus(self) -> int:
        """A device keeps the windows whose day index ≡ pseudonym (mod this); 1 keeps all."""
        return max(1, (MS_PER_DAY // self.window_ms) // self.windows_per_device_day)


@dataclass(frozen=True)
class Contributions:
    """Who the per-cell sums count: one row per contributed (device-window, cell), sorted like the
    partials (window start ms, base cell, pseudonym). Tourism presence and the traffic products'
    moving rows are derived from these. ``speed_bin``: the device-window's speed bin, −1 if it
    was not moving."""

    window_start_ms: I64
    cell: U64
    device: U64
    speed_bin: I64

    def __len__(self) -> int:
        return int(self.cell.size)


@dataclass(frozen=True)
class Partials:
    """Per (window, cell) exact sums, sorted by (window, cell). ``speed_sum`` in whole km/h;
    ``speed_bins`` (rows × bins) the moving devices per speed bin (Bounds.speed_edges_kmh)."""

    window_start_ms: I64
    cell: U64
    devices: I64
    moving: I64
    speed_sum: I64
    duplicates: int
    speed_bins: npt.NDArray[np.int64]
    contributions: Contributions | None = None

    def __len__(self) -> int:
        return int(self.cell.size)

    def rows(self) -> list[tuple[int, int, int, int, int]]:
        return list(
            zip(
                self.window_start_ms.tolist(),
                self.cell.tolist(),
                self.devices.tolist(),
                self.moving.tolist(),
                self.speed_sum.tolist(),
                strict=True,
            )
        )


def haversine_m(lat1: F64, lon1: F64, lat2: F64, lon2: F64) -> F64:
    """Great-circle distance in metres: 2R·asin(√a) with a the haversine of the central angle."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    out: F64 = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))
    return out


def _starts(*keys: np.ndarray) -> Bool:
    """True where any key differs from the previous row (row 0 always starts a run)."""
    n = keys[0].size
    start = np.zeros(n, dtype=bool)
    if n:
        start[0] = True
        for k in keys:
            start[1:] |= k[1:] != k[:-1]
    return start


def _device_ts_offset_order(pings: PingColumns) -> I64:
    """The permutation that sorts rows by (device, ts, offset).

    Rows usually arrive in offset order with each device's pings in time order; then a stable sort
    by device alone gives the same permutation at a fraction of the cost of a three-key lexsort.
    """
    off = pings.offset
    if off.size > 1 and bool(np.all(off[1:] >= off[:-1])):
        order = np.argsort(pings.device, kind="stable")
        dev, ts = pings.device[order], pings.ts_ms[order]
        if bool(np.all((ts[1:] >= ts[:-1]) | (dev[1:] != dev[:-1]))):
            return order
    full: I64 = np.lexsort((off, pings.ts_ms, pings.device))
    return full


def compute_partials(pings: PingColumns, bounds: Bounds) -> Partials:
    """Exact partials of every window present in ``pings`` (all assumed closed, none late)."""
    n = len(pings)
    if n == 0:
        return _empty(0, bounds)
    # 1. Dedupe (device, ts): the first by offset wins.
    order = _device_ts_offset_order(pings)
    dev, ts = pings.device[order], pings.ts_ms[order]
    first = _starts(dev, ts)
    duplicates = int(n - np.count_nonzero(first))
    idx = order[first]
    dev, ts = dev[first], ts[first]
    win = window_start(ts, bounds.window_ms)
    # 6. Day cap, stateless: keep windows whose index in the day ≡ pseudonym (mod m).
    m = bounds.day_modulus
    if m > 1:
        day_idx = window_of_day(win, bounds.window_ms)
        keep = (day_idx.astype(np.uint64) % np.uint64(m)) == (dev % np.uint64(m))
        idx, dev, ts, win = idx[keep], dev[keep], ts[keep], win[keep]
    if idx.size == 0:
        return _empty(duplicates, bounds)
    lat, lon = pings.lat[idx], pings.lon[idx]
    cell = pings.cell[idx]
    spd = pings.speed[idx].astype(np.float64)
    # Rows are sorted by (device, ts), so (device, window) groups are contiguous.
    gstart = _starts(dev, win)
    gid = np.cumsum(gstart) - 1
    ngroups = int(gid[-1]) + 1
    # 4. Per-ping speed: reported, else derived from the previous ping of the same device-window.
    missing = np.isnan(spd)
    if missing.any():
        derive = missing.copy()
        derive[gstart] = False
        j = np.flatnonzero(derive)
        if j.size:
            dist = haversine_m(lat[j - 1], lon[j - 1], lat[j], lon[j])
            spd[j] = dist / ((ts[j] - ts[j - 1]) / 1000.0)
    has = ~np.isnan(spd)
    ssum = np.bincount(gid[has], weights=spd[has], minlength=ngroups)
    scnt = np.bincount(gid[has], minlength=ngroups)
    with np.errstate(invalid="ignore", divide="ignore"):
        gspeed = ssum / scnt
    gmoving = (scnt > 0) & (gspeed >= bounds.moving_speed_mps)
    gkmh = np.where(gmoving, whole_kmh(np.minimum(gspeed, bounds.speed_clamp_mps)), 0)
    gkmh = np.nan_to_num(gkmh).astype(np.int64)
    gwin = win[gstart]
    # 3. Rank each device-window's cells: most pings, then earliest ts, then lowest cell id.
    o2 = np.lexsort((cell, gid))  # stable: within a run rows keep ts order
    rgid, rcell, rts = gid[o2], cell[o2], ts[o2]
    rstart = np.flatnonzero(_starts(rgid, rcell))
    run_gid, run_cell, run_first_ts = rgid[rstart], rcell[rstart], rts[rstart]
    run_count = np.diff(np.append(rstart, rgid.size))
    o3 = np.lexsort((run_cell, run_first_ts, -run_count, run_gid))
    sg = run_gid[o3]
    gfirst = np.flatnonzero(_starts(sg))
    rank = np.arange(sg.size) - np.repeat(gfirst, np.diff(np.append(gfirst, sg.size)))
    chosen = o3[rank < bounds.cells_per_window]
    cg, cc = run_gid[chosen], run_cell[chosen]
    # 5. Per (window, cell) sums over contributing device-windows.
    cw = gwin[cg]
    o4 = np.lexsort((cc, cw))
    cw, cc, cg = cw[o4], cc[o4], cg[o4]
    ostart = np.flatnonzero(_starts(cw, cc))
    gdev = dev[gstart]
    mov = gmoving[cg].astype(np.int64)
    kmh = gkmh[cg]
    # 5b. A moving device-window falls in one speed bin (its whole km/h, clamped as above).
    k = len(bounds.speed_edges_kmh) + 1
    gbin = np.searchsorted(np.asarray(bounds.speed_edges_kmh, np.int64), gkmh, side="right")
    row = np.repeat(np.arange(ostart.size), np.diff(np.append(ostart, cw.size)))
    hit = gmoving[cg]
    bins = np.bincount(row[hit] * k + gbin[cg][hit], minlength=ostart.size * k).reshape(ostart.size, k)
    return Partials(
        window_start_ms=cw[ostart],
        cell=cc[ostart],
        devices=np.diff(np.append(ostart, cw.size)).astype(np.int64),
        moving=np.add.reduceat(mov, ostart),
        speed_sum=np.add.reduceat(kmh, ostart),
        duplicates=duplicates,
        speed_bins=bins.astype(np.int64),
        contributions=Contributions(cw, cc, gdev[cg], np.where(hit, gbin[cg], -1).astype(np.int64)),
    )


def _empty(duplicates: int, bounds: Bounds) -> Partials:
    e = np.empty(0, np.int64)
    bins = np.zeros((0, len(bounds.speed_edges_kmh) + 1), np.int64)
    return Partials(e, np.empty(0, np.uint64), e, e, e, duplicates, bins)
