"""Ground truth of named places: the stadium crowd curve and the scenic areas' visitors.

A device is in an area when an accepted ping's (lat, lon) lies inside the area's polygon. A visit
is a maximal run of a device's in-area pings with no gap over ``VISIT_GAP_S``; its dwell is last −
first ``ts`` (s), so visits cut by the run's start or end are shorter than the simulated stay.
Days are UTC days (the pseudonym key rotates at 00:00 UTC).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from hexpulse.times import MS_PER_DAY, utc_from_ms
from simulator.geo import LocalFrame
from simulator.places import NamedArea

VISIT_GAP_S = 600
"""A device out of an area's pings for longer than this (s) starts a new visit."""

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def inside(
    area: NamedArea, frame: LocalFrame, lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    poly = area.polygon(frame)
    out: npt.NDArray[np.bool_] = shapely.contains_xy(poly, lon, lat)
    return out


def _day(ms: int) -> str:
    return utc_from_ms(ms).strftime("%Y-%m-%d")


def visits(device: IntArray, ts: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    """Per visit: device, first ts, last ts (pings sorted by device then ts)."""
    if len(ts) == 0:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    new = np.ones(len(ts), dtype=bool)
    new[1:] = (device[1:] != device[:-1]) | (ts[1:] - ts[:-1] > VISIT_GAP_S * 1000)
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], len(ts)) - 1
    return device[starts], ts[starts], ts[ends]


def scenic_report(
    area: NamedArea,
    frame: LocalFrame,
    dev: IntArray,
    ts: IntArray,
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
) -> dict[str, Any]:
    hit = inside(area, frame, lat, lon)
    d, t = dev[hit], ts[hit]
    days: dict[str, Any] = {}
    day_of = t // MS_PER_DAY
    for day in np.unique(day_of).tolist():
        on = day_of == day
        v_dev, v_first, v_last = visits(d[on], t[on])
        dwell = (v_last - v_first) / 1000.0
        days[_day(day * MS_PER_DAY)] = {
            "unique_visitors": int(len(np.unique(d[on]))),
            "visits": int(len(v_dev)),
            "dwell_s_mean": round(float(dwell.mean()), 1),
            "dwell_s_median": round(float(np.median(dwell)), 1),
            "dwell_s_p90": round(float(np.percentile(dwell, 90)), 1),
        }
    return {"slug": area.slug, "name": area.name, "polygon": area.feature(frame)["geometry"], "days": days}


def crowd_curve(
    area: NamedArea,
    frame: LocalFrame,
    dev: IntArray,
    ts: IntArray,
    lat: FloatArray,
    lon: FloatArray,
    start_ms: int,
    end_ms: int,
    window_ms: int,
) -> list[list[int]]:
    """[[window_start_ms, distinct devices with an accepted ping in the area], ...] for every
    window of ``[start_ms, end_ms)``, zeros included."""
    hit = inside(area, frame, lat, lon)
    per_window: dict[int, int] = {}
    if hit.any():
        pairs = np.unique(np.column_stack([ts[hit] // window_ms * window_ms, dev[hit]]), axis=0)
        windows, counts = np.unique(pairs[:, 0], return_counts=True)
        per_window = dict(zip(windows.tolist(), counts.tolist(), strict=True))
    return [[w, per_window.get(w, 0)] for w in range(start_ms // window_ms * window_ms, end_ms, window_ms)]
