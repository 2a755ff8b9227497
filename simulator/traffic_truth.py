"""Ground truth for traffic: moving devices, mean speed, free flow and level per window, per
res-8 cell and per corridor.

Built on the counting semantics' assignments (:func:`.ground_truth.assign`): a device counts in a
window's cell as moving with its whole-km/h speed exactly as the pipeline counts it. Per group
(window × res-8 parent of the counted cell, or window × corridor, a corridor holding the base
cells of its polygon's cover in the service area, centres inside as ``hexpulse zones load``
covers it):

- ``moving_devices``: moving devices; ``mean_speed_kmh``: mean of their speeds;
- ``free_flow_kmh``: mean of their free-flow speeds (a car's: its road's; any other moving
  device — bike, walker, a car on local streets — never slows down, so its own speed);
- ``level``: :func:`hexpulse.traffic_levels.level_of` of free_flow / mean (travel-time index).

File layout: ``traffic`` = ``{"speed_bins_kmh": [...], "cells": [[window_start_ms, res8_cell,
moving_devices, mean_speed_kmh, free_flow_kmh, level], ...], "corridors": [[window_start_ms,
corridor_slug, ...same...], ...]}`` (groups with ≥ 1 moving device, sorted); speeds rounded to
0.01 km/h; ``speed_bins_kmh`` = the run's ``HEXPULSE_TRAFFIC_SPEED_EDGES_KMH`` (the bins' inner
edges the pipeline counts moving devices in).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import h3
import numpy as np
import numpy.typing as npt
from shapely.geometry import mapping

from hexpulse.service_area import ServiceArea
from hexpulse.settings import Settings
from hexpulse.traffic_levels import level_of
from simulator.geo import LocalFrame
from simulator.places import CORRIDORS

if TYPE_CHECKING:
    from simulator.ground_truth import Assignments

TRAFFIC_RESOLUTION = 8


def corridor_cells(frame: LocalFrame, res: int, area: ServiceArea) -> dict[int, int]:
    """Base cell → index in CORRIDORS of the corridor whose cover holds it."""
    out: dict[int, int] = {}
    for i, c in enumerate(CORRIDORS):
        found = [h3.str_to_int(x) for x in h3.geo_to_cells(mapping(c.polygon(frame)), res)]  # type: ignore[arg-type]
        arr = np.array(found, dtype=np.uint64)
        for cell in arr[area.contains(arr)].tolist():
            out[int(cell)] = i
    return out


def _groups(
    win: npt.NDArray[np.int64],
    key: npt.NDArray[np.int64],
    kmh: npt.NDArray[np.float64],
    free: npt.NDArray[np.float64],
) -> list[tuple[int, int, int, float, float, str]]:
    if len(win) == 0:
        return []
    order = np.lexsort((key, win))
    win, key, kmh, free = win[order], key[order], kmh[order], free[order]
    new = np.ones(len(win), dtype=bool)
    new[1:] = (win[1:] != win[:-1]) | (key[1:] != key[:-1])
    starts = np.flatnonzero(new)
    n = np.diff(np.append(starts, len(win)))
    mean = np.add.reduceat(kmh, starts) / n
    ff = np.add.reduceat(free, starts) / n
    rows = []
    for w, k, m, s, f in zip(
        win[starts].tolist(), key[starts].tolist(), n.tolist(), mean.tolist(), ff.tolist(), strict=True
    ):
        rows.append((int(w), int(k), int(m), round(s, 2), round(f, 2), level_of(f / max(s, 1.0))))
    return rows


@dataclass(frozen=True)
class CorridorMoving:
    """The moving devices a run counts on corridors, one row per (window, device): the window
    start (epoch ms), the corridor (index in CORRIDORS), the device's whole-km/h speed, its
    free-flow speed (the truth's rule, :func:`traffic_truth`) and whether it is a car. For studies
    of what a release of these devices' speeds can tell (benchmarks/bench_traffic_ceiling.py)."""

    win: npt.NDArray[np.int64]
    corridor: npt.NDArray[np.int64]
    kmh: npt.NDArray[np.float64]
    free_kmh: npt.NDArray[np.float64]
    car: npt.NDArray[np.bool_]
    """Whether the device is a car on a simulated road (its free flow is its road's)."""


Moving = tuple[
    npt.NDArray[np.int64],
    npt.NDArray[np.uint64],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.bool_],
]


def _moving(a: Assignments, device_free_kmh: npt.NDArray[np.float64]) -> Moving:
    """Window, cell, speed, free-flow speed and car-ness of each moving assignment."""
    mv = a.moving
    kmh = a.kmh[mv].astype(np.float64)
    own = device_free_kmh[a.device[mv]]
    car = ~np.isnan(own)
    return a.win[mv], a.cell[mv], kmh, np.where(car, own, kmh), car


def _corridor_of(
    uniq: npt.NDArray[np.uint64], inv: npt.NDArray[np.intp], lookup: dict[int, int]
) -> npt.NDArray[np.int64]:
    """Per row (``uniq[inv]``: its base cell), the index in CORRIDORS of its corridor, −1 for none."""
    cidx = np.array([lookup.get(int(c), -1) for c in uniq.tolist()], dtype=np.int64)
    return cidx[inv] if len(uniq) else np.zeros(0, dtype=np.int64)


def corridor_moving(
    a: Assignments, device_free_kmh: npt.NDArray[np.float64], lookup: dict[int, int]
) -> CorridorMoving:
    """The rows of :class:`CorridorMoving` of one span's assignments (``lookup``: :func:`corridor_cells`)."""
    win, cell, kmh, free, car = _moving(a, device_free_kmh)
    of = _corridor_of(*np.unique(cell, return_inverse=True), lookup)
    on = of >= 0
    return CorridorMoving(win[on], of[on], kmh[on], free[on], car[on])


def traffic_truth(
    a: Assignments,
    device_free_kmh: npt.NDArray[np.float64],
    area: ServiceArea,
    frame: LocalFrame,
    settings: Settings,
    lookup: dict[int, int] | None = None,
) -> dict[str, Any]:
    """The ``traffic`` section of the ground truth (see the module docstring); ``lookup``: the
    :func:`corridor_cells` of the run, when already computed."""
    win, cell, kmh, free, _ = _moving(a, device_free_kmh)
    uniq, inv = np.unique(cell, return_inverse=True)
    parent = np.array(
        [h3.api.basic_int.cell_to_parent(int(c), TRAFFIC_RESOLUTION) for c in uniq.tolist()], dtype=np.uint64
    )
    res8 = parent[inv] if len(uniq) else np.zeros(0, dtype=np.uint64)
    cells = _groups(win, res8.view(np.int64), kmh, free)
    if lookup is None:
        lookup = corridor_cells(frame, settings.base_resolution, area)
    of = _corridor_of(uniq, inv, lookup)
    on = of >= 0
    corr = _groups(win[on], of[on], kmh[on], free[on])
    return {
        "speed_bins_kmh": list(settings.traffic_speed_edges_kmh),
        "cells": [[w, int(np.int64(k).view(np.uint64)), m, s, f, lv] for w, k, m, s, f, lv in cells],
        "corridors": [[w, CORRIDORS[k].slug, m, s, f, lv] for w, k, m, s, f, lv in corr],
    }
