"""A deliberately plain re-implementation of docs/ARCHITECTURE.md "Counting semantics" (one ping at a
time, dicts and loops) that the vectorized aggregate code is checked against.

It also keeps the windowing rule that issue #9 replaced (``rule="event_time"``: the partition
watermark was the running maximum of the devices' own event times, so one device with a fast clock
closed everyone's windows early), so the neighbour test can show that it catches that rule."""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

import numpy as np

from hexpulse.pings import I64, PingColumns

MS_PER_DAY = 86_400_000


@dataclass(frozen=True)
class Ping:
    offset: int
    device: int
    ts_ms: int
    lat: float
    lon: float
    speed: float  # m/s, NaN = absent
    cell: int
    record_ts: int  # Kafka record timestamp of the record carrying the ping, ms


def _hav(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = 6_371_008.8
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin((math.radians(lon2) - math.radians(lon1)) / 2) ** 2
    )
    return 2 * r * math.asin(math.sqrt(min(a, 1.0)))


def reference(
    pings: list[Ping],
    window_ms: int,
    lateness_ms: int,
    *,
    cells: int = 1,
    wpd: int | None = None,
    clamp: float = 50.0,
    moving: float = 2.0,
    horizon_ms: int | None = None,
    watermark_ms: int | None = None,
    rule: Literal["record", "event_time"] = "record",
    edges: tuple[int, ...] = (20, 35, 50, 65, 80),
    bins: dict[tuple[int, int], list[int]] | None = None,
) -> tuple[dict[tuple[int, int], tuple[int, int, int]], int, int]:
    """Partials {(window, cell): (devices, moving, speed_sum)} of the windows closed after the last
    ping (plus those still open, closed at the end), late count, duplicate count.

    ``rule="record"``: a ping is late if its window starts before the horizon of the partition
    clock (largest record timestamp so far, its own record included) minus the lateness.
    ``rule="event_time"``: the pre-#9 rule, late if its window starts before the horizon of the
    largest *event time* of the earlier accepted pings minus the lateness.
    ``bins``, if given, receives per (window, cell) the moving devices per speed bin (upper edges
    ``edges`` in whole km/h, the clamped whole km/h of the device's window speed).
    """
    horizon = horizon_ms
    wm = watermark_ms
    kept: list[Ping] = []
    late = 0
    for p in pings:  # offset order
        w = p.ts_ms // window_ms * window_ms
        if rule == "record":
            wm = p.record_ts - lateness_ms if wm is None else max(wm, p.record_ts - lateness_ms)
            h = wm // window_ms * window_ms
            horizon = h if horizon is None else max(horizon, h)
        if horizon is not None and w < horizon:
            late += 1
            continue
        kept.append(p)
        if rule == "event_time":
            wm = p.ts_ms - lateness_ms if wm is None else max(wm, p.ts_ms - lateness_ms)
            h = wm // window_ms * window_ms
            horizon = h if horizon is None else max(horizon, h)
    seen: set[tuple[int, int]] = set()
    by_dw: dict[tuple[int, int], list[Ping]] = defaultdict(list)
    dup = 0
    for p in sorted(kept, key=lambda q: q.offset):
        if (p.device, p.ts_ms) in seen:
            dup += 1
            continue
        seen.add((p.device, p.ts_ms))
        by_dw[(p.device, p.ts_ms // window_ms * window_ms)].append(p)
    per_day = MS_PER_DAY // window_ms
    m = max(1, per_day // (wpd or per_day))
    out: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for (dev, w), ps in by_dw.items():
        if ((w % MS_PER_DAY) // window_ms) % m != dev % m:
            continue
        ps.sort(key=lambda q: q.ts_ms)
        speeds = []
        for i, p in enumerate(ps):
            if not math.isnan(p.speed):
                speeds.append(p.speed)
            elif i > 0:
                q = ps[i - 1]
                speeds.append(_hav(q.lat, q.lon, p.lat, p.lon) / ((p.ts_ms - q.ts_ms) / 1000.0))
        spd = sum(speeds) / len(speeds) if speeds else None
        is_moving = spd is not None and spd >= moving
        count: dict[int, int] = defaultdict(int)
        first: dict[int, int] = {}
        for p in ps:
            count[p.cell] += 1
            first.setdefault(p.cell, p.ts_ms)
        ranked = sorted(count, key=lambda c: (-count[c], first[c], c))[:cells]
        for c in ranked:
            row = out[(w, c)]
            row[0] += 1
            if is_moving:
                assert spd is not None
                row[1] += 1
                kmh = math.floor(min(spd, clamp) * 3.6 + 0.5)
                row[2] += kmh
                if bins is not None:
                    cell_bins = bins.setdefault((w, c), [0] * (len(edges) + 1))
                    cell_bins[bisect.bisect_right(edges, kmh)] += 1
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}, late, dup


def columns(pings: list[Ping]) -> tuple[PingColumns, I64]:
    """The rows as aggregate's columns, and each row's record timestamp (ms)."""
    cols = PingColumns(
        offset=np.array([p.offset for p in pings], np.int64),
        device=np.array([p.device for p in pings], np.uint64),
        ts_ms=np.array([p.ts_ms for p in pings], np.int64),
        lat=np.array([p.lat for p in pings], np.float64),
        lon=np.array([p.lon for p in pings], np.float64),
        speed=np.array([p.speed for p in pings], np.float64),
        cell=np.array([p.cell for p in pings], np.uint64),
    )
    return cols, np.array([p.record_ts for p in pings], np.int64)
