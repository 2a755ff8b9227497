"""The exact answer the pipeline must reproduce, computed from the generated pings.

Re-implements "Counting semantics" of docs/ARCHITECTURE.md independently of aggregate/, over the
pings ingest accepts (valid, H3 cell at the base resolution in the service area), minus the late
ones: per Kafka partition (kafka-python's murmur2 of the device key, as the producer places it),
a ping is late when its window starts before the horizon of the partition clock — the largest
record timestamp of the messages with an accepted ping so far, its own included — minus the
lateness (idle closes, which depend on the consumer's wall clock, are not modelled). By
construction no simulated ping is late (``config.MAX_BATCH_SPAN_MS``) and none is a duplicate; the
truth counts late pings anyway (``counts.late``) so a change that broke that would show. It assumes
the default ``windows_per_device_day`` (``SimConfig.validate`` refuses others).

File format (JSON, ``GroundTruth.to_json``; times are epoch ms UTC, cells H3 as unsigned ints):

``version`` 2; ``config`` (the run's options, ``start_ms``, ``end_ms``); ``settings`` (window_s,
base_resolution, cells_per_window, moving_speed_mps, speed_clamp_mps, lateness_s);
``counts``: ``messages`` (all, malformed included), ``good_messages``, ``pings`` (well-formed),
``pings_by_kind`` {commuter, vehicle, stadium, tourist, regional}, ``accepted`` and
``outside_area`` pings, ``late`` (accepted pings the windowing drops; 0 by construction),
``malformed_messages``, ``malformed_by_reason``, ``rejected_pings_by_reason``
(as ingest counts them: outside_area pings plus max(1, pings carried) per malformed message),
``dlq_records`` (one per outside-area ping and per malformed message), ``devices``;
``cells``: ``[[window_start_ms, cell, devices, moving, speed_sum_kmh], ...]`` sorted, only cells
with at least one device (every other area cell is 0); ``stadium``: name, slug, polygon, requested
crowd, ``curve`` ``[[window_start_ms, devices], ...]`` for every window of the run, ``peak``;
``scenic_areas``: per area name, slug, polygon and ``days`` {``YYYY-MM-DD`` (UTC): unique_visitors,
visits, dwell_s_mean, dwell_s_median, dwell_s_p90}; ``malformed``: ``[{index, reason, pings}]``
with ``index`` the 0-based position in the produced stream; ``traffic``, ``corridors``,
``incident``: see :mod:`.traffic_truth`.

The stadium curve and the scenic areas' visits are computed in :mod:`.area_truth`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h3
import numpy as np
import numpy.typing as npt
import orjson
from kafka.partitioner.default import murmur2

from hexpulse.service_area import ServiceArea
from hexpulse.settings import Settings
from simulator.area_truth import crowd_curve, inside, scenic_report
from simulator.city import KINDS, Pings
from simulator.config import SimConfig
from simulator.geo import LocalFrame, haversine_m
from simulator.messages import Injection, MessagePlan
from simulator.places import CORRIDORS, SCENIC_AREAS, STADIUM
from simulator.traffic import Traffic
from simulator.traffic_truth import CorridorMoving, corridor_cells, corridor_moving, traffic_truth

IntArray = npt.NDArray[np.int64]


@dataclass
class GroundTruth:
    """What the run must produce downstream (see the module docstring for the file format)."""

    config: dict[str, Any]
    settings: dict[str, Any]
    counts: dict[str, Any]
    cells: list[list[int]]
    stadium: dict[str, Any]
    scenic_areas: list[dict[str, Any]]
    malformed: list[dict[str, Any]] = field(default_factory=list)
    traffic: dict[str, Any] = field(default_factory=dict)
    corridors: list[dict[str, Any]] = field(default_factory=list)
    incident: dict[str, Any] = field(default_factory=dict)
    windows_file: str | None = None
    """Set when the per-window rows (cells, traffic) are only in that JSON-lines file."""
    version: int = 2

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(self.to_json())
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> GroundTruth:
        return cls(**orjson.loads(path.read_bytes()))

    def cell_table(self) -> dict[tuple[int, int], tuple[int, int, int]]:
        """(window_start_ms, cell) → (devices, moving, speed_sum_kmh)."""
        return {(w, c): (d, m, s) for w, c, d, m, s in self.cells}


def base_cells(
    lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64], res: int
) -> npt.NDArray[np.uint64]:
    """H3 cell (as uint64) of each point at resolution ``res``."""
    to_cell = h3.api.basic_int.latlng_to_cell
    return np.fromiter(
        (to_cell(a, b, res) for a, b in zip(lat.tolist(), lon.tolist(), strict=True)),
        dtype=np.uint64,
        count=len(lat),
    )


def _runs(keys: list[IntArray]) -> tuple[IntArray, IntArray]:
    """For rows sorted by ``keys``: the start index of each row's group and a group id per row."""
    n = len(keys[0])
    new = np.zeros(n, dtype=bool)
    new[:1] = True
    for k in keys:
        new[1:] |= k[1:] != k[:-1]
    starts = np.flatnonzero(new)
    return starts, np.cumsum(new) - 1


@dataclass(frozen=True)
class Assignments:
    """Counting semantics 2–4: each device-window's counted cells (rows: device-window × cell),
    sorted by (window, cell); ``kmh`` is the device's whole km/h when moving, else 0."""

    win: IntArray
    cell: npt.NDArray[np.uint64]
    device: IntArray
    moving: npt.NDArray[np.bool_]
    kmh: IntArray


def assign(
    device: IntArray,
    ts: IntArray,
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
    spd: npt.NDArray[np.float64],
    cell: npt.NDArray[np.uint64],
    settings: Settings,
) -> Assignments:
    """Which cells each device counts in per window, moving or not, at what speed."""
    if len(ts) == 0:
        e = np.zeros(0, dtype=np.int64)
        return Assignments(e, e.astype(np.uint64), e, e.astype(bool), e)
    order = np.lexsort((ts, device))
    device, ts, lat, lon, spd, cell = (
        device[order],
        ts[order],
        lat[order],
        lon[order],
        spd[order],
        cell[order],
    )
    wms = settings.window_ms
    win = ts // wms * wms

    # 4. Ping speed: spd, else distance / time from the previous ping of the device in the window.
    _, dw = _runs([device, win])
    same = np.zeros(len(ts), dtype=bool)
    same[1:] = dw[1:] == dw[:-1]
    prev = np.maximum(np.arange(len(ts)) - 1, 0)
    derived = haversine_m(lat[prev], lon[prev], lat, lon) / np.maximum((ts - ts[prev]) / 1000.0, 1e-3)
    speed = np.where(np.isnan(spd), np.where(same, derived, np.nan), spd)
    has = ~np.isnan(speed)
    n_dw = int(dw[-1]) + 1
    speed_n = np.bincount(dw, weights=has.astype(float), minlength=n_dw)
    speed_sum = np.bincount(dw, weights=np.where(has, speed, 0.0), minlength=n_dw)
    with np.errstate(invalid="ignore", divide="ignore"):
        dev_speed = speed_sum / speed_n  # NaN: no speed, not moving
    moving = dev_speed >= settings.moving_speed_mps
    kmh = np.floor(np.minimum(dev_speed, settings.speed_clamp_mps) * 3.6 + 0.5)

    # 3. Rank each device-window's cells by pings, then earliest ts, then cell id; keep the top L.
    o2 = np.lexsort((ts, cell, dw))
    dw2, cell2, ts2 = dw[o2], cell[o2], ts[o2]
    starts, _ = _runs([dw2, cell2.astype(np.int64)])
    counts = np.diff(np.append(starts, len(o2)))
    g_dw, g_cell, g_first = dw2[starts], cell2[starts], ts2[starts]
    o3 = np.lexsort((g_cell, g_first, -counts, g_dw))
    g_dw, g_cell = g_dw[o3], g_cell[o3]
    first_of_dw, _ = _runs([g_dw])
    rank = np.arange(len(g_dw)) - np.repeat(first_of_dw, np.diff(np.append(first_of_dw, len(g_dw))))
    keep = rank < settings.cells_per_window
    g_dw, g_cell = g_dw[keep], g_cell[keep]

    dw_first, _ = _runs([device, win])
    g_win = win[dw_first][g_dw]
    g_dev = device[dw_first][g_dw]
    g_moving = moving[g_dw]
    g_kmh = np.where(g_moving, kmh[g_dw], 0).astype(np.int64)
    o4 = np.lexsort((g_cell, g_win))
    return Assignments(g_win[o4], g_cell[o4], g_dev[o4], g_moving[o4], g_kmh[o4])


def window_cells(
    device: IntArray,
    ts: IntArray,
    lat: npt.NDArray[np.float64],
    lon: npt.NDArray[np.float64],
    spd: npt.NDArray[np.float64],
    cell: npt.NDArray[np.uint64],
    settings: Settings,
) -> list[list[int]]:
    """Counting semantics 2–5 over accepted pings: [[window_start_ms, cell, devices, moving, speed_sum]]."""
    return cell_rows(assign(device, ts, lat, lon, spd, cell, settings))


def cell_rows(a: Assignments) -> list[list[int]]:
    """5. Sum per (window, cell)."""
    if len(a.win) == 0:
        return []
    s5, _ = _runs([a.win, a.cell.astype(np.int64)])
    devices = np.diff(np.append(s5, len(a.win)))
    mov = np.add.reduceat(a.moving.astype(np.int64), s5)
    ssum = np.add.reduceat(a.kmh, s5)
    return [
        [int(w), int(c), int(d), int(m), int(s)]
        for w, c, d, m, s in zip(
            a.win[s5].tolist(),
            a.cell[s5].tolist(),
            devices.tolist(),
            mov.tolist(),
            ssum.tolist(),
            strict=True,
        )
    ]


def partition_of(device_ids: list[str], partitions: int) -> IntArray:
    """Kafka partition of each device key (kafka-python's default partitioner: murmur2)."""
    return np.array([(murmur2(d.encode()) & 0x7FFFFFFF) % partitions for d in device_ids], dtype=np.int64)


NO_CLOCK = np.iinfo(np.int64).min // 2


def late_pings(
    pings: Pings,
    plan: MessagePlan,
    upload_delay_ms: int,
    ok: npt.NDArray[np.bool_],
    settings: Settings,
    home: IntArray,
    clock: IntArray,
) -> npt.NDArray[np.bool_]:
    """Which pings the record-time windowing drops as late (see the module docstring).

    ``home``: each device's partition; ``clock``: each partition's clock before these messages
    (``NO_CLOCK`` when none yet), advanced in place."""
    late = np.zeros(len(pings.ts_ms), dtype=bool)
    if len(plan) == 0:
        return late
    sizes = plan.hi - plan.lo
    msg = np.repeat(np.arange(len(plan)), sizes)  # message of each ping, in send order
    ends = np.cumsum(sizes)
    idx = np.repeat(plan.lo - (ends - sizes), sizes) + np.arange(int(ends[-1]))  # pings in send order
    stamp = pings.ts_ms[plan.hi - 1] + upload_delay_ms
    carries = np.bincount(msg, weights=ok[idx], minlength=len(plan)) > 0
    partition = home[pings.device[plan.lo]]
    w, lateness = settings.window_ms, settings.lateness_ms
    horizon = np.empty(len(plan), dtype=np.int64)
    for p in range(len(clock)):
        mine = np.flatnonzero(partition == p)
        if len(mine) == 0:
            continue
        stamps = np.where(carries[mine], stamp[mine], NO_CLOCK)
        run = np.maximum.accumulate(np.maximum(stamps, clock[p]))
        clock[p] = run[-1]
        horizon[mine] = (run - lateness) // w * w
    late[idx] = (pings.ts_ms[idx] // w * w) < horizon[msg]
    return late


class TruthBuilder:
    """The ground truth built span by span (spans of whole windows, in order).

    Per-window rows (cells, traffic, the stadium curve) are appended to ``sink`` (when given) as
    one JSON line per span (``{"from_ms", "to_ms", "cells", "traffic_cells", "corridors",
    "stadium"}``) as spans are made, and kept in memory for :meth:`finish` unless ``keep_rows`` is
    False (then memory stays bounded by the span). Only the scenic areas' in-area pings are kept
    to the end (visits span windows).
    """

    def __init__(
        self,
        cfg: SimConfig,
        start_ms: int,
        settings: Settings,
        area: ServiceArea,
        traffic: Traffic,
        device_ids: list[str],
        device_free_kmh: npt.NDArray[np.float64],
        upload_delay_ms: int,
        sink: Path | None = None,
        keep_rows: bool = True,
        home: IntArray | None = None,
        keep_moving: bool = False,
    ) -> None:
        self.cfg, self.start_ms, self.settings = cfg, start_ms, settings
        #: With ``keep_moving``: each span's moving devices on corridors (not in the ground truth
        #: file: per-device rows, for studies of the speed release only).
        self.corridor_moving: list[CorridorMoving] | None = [] if keep_moving else None
        self.area, self.traffic = area, traffic
        self.device_free_kmh = device_free_kmh
        self.devices = len(device_ids)
        self.delay = upload_delay_ms
        self.frame = LocalFrame(*cfg.center)
        self.home = partition_of(device_ids, settings.topic_partitions) if home is None else home
        self.clock = np.full(settings.topic_partitions, NO_CLOCK, dtype=np.int64)
        self.lookup = corridor_cells(self.frame, settings.base_resolution, area)
        self.sink, self.keep_rows = sink, keep_rows
        if sink is not None:
            sink.parent.mkdir(parents=True, exist_ok=True)
            sink.write_bytes(b"")
        self.cells: list[list[int]] = []
        self.curve: list[list[int]] = []
        self.traffic_cells: list[list[Any]] = []
        self.traffic_corridors: list[list[Any]] = []
        self.scenic: list[list[npt.NDArray[Any]]] = [[] for _ in SCENIC_AREAS]
        self.kinds = np.zeros(len(KINDS), dtype=np.int64)
        self.n = {"good": 0, "pings": 0, "accepted": 0, "outside": 0, "late": 0}
        self.by_reason: dict[str, int] = {}
        self.rejected: dict[str, int] = {}
        self.malformed: list[dict[str, Any]] = []
        self.messages = 0

    def add(
        self, pings: Pings, plan: MessagePlan, injections: list[Injection], from_ms: int, to_ms: int
    ) -> None:
        """One span ``[from_ms, to_ms)`` of event time: its pings, messages and injections
        (positions in the span's stream)."""
        settings = self.settings
        cell = base_cells(pings.lat, pings.lon, settings.base_resolution)
        ok = area_ok = self.area.contains(cell)
        late = late_pings(pings, plan, self.delay, ok, settings, self.home, self.clock)
        counted = area_ok & ~late
        dev, ts = pings.device.astype(np.int64)[counted], pings.ts_ms[counted]
        lat, lon = pings.lat[counted], pings.lon[counted]
        assigned = assign(dev, ts, lat, lon, pings.spd[counted], cell[counted], settings)
        cells = cell_rows(assigned)
        curve = crowd_curve(STADIUM, self.frame, dev, ts, lat, lon, from_ms, to_ms, settings.window_ms)
        tr = traffic_truth(assigned, self.device_free_kmh, self.area, self.frame, settings, self.lookup)
        if self.corridor_moving is not None:
            self.corridor_moving.append(corridor_moving(assigned, self.device_free_kmh, self.lookup))
        for i, a in enumerate(SCENIC_AREAS):
            hit = inside(a, self.frame, lat, lon)
            if hit.any():
                self.scenic[i].append(np.stack([dev[hit], ts[hit]]))
                self.scenic[i].append(np.stack([lat[hit], lon[hit]]))
        if self.keep_rows:
            self.cells += cells
            self.traffic_cells += tr["cells"]
            self.traffic_corridors += tr["corridors"]
        self.curve += curve  # one row per window: small
        if self.sink is not None:
            line = {"from_ms": from_ms, "to_ms": to_ms, "cells": cells, "traffic_cells": tr["cells"]}
            line |= {"corridors": tr["corridors"], "stadium": curve}
            with self.sink.open("ab") as f:
                f.write(orjson.dumps(line) + b"\n")
        self.kinds += np.bincount(pings.kind, minlength=len(KINDS))
        outside = int((~area_ok).sum())
        self.n["good"] += len(plan)
        self.n["pings"] += len(pings.ts_ms)
        self.n["accepted"] += int(area_ok.sum())
        self.n["outside"] += outside
        self.n["late"] += int(late.sum())
        if outside:
            self.rejected["outside_area"] = self.rejected.get("outside_area", 0) + outside
        for inj in injections:
            r = inj.message.reason
            self.by_reason[r] = self.by_reason.get(r, 0) + 1
            self.rejected[r] = self.rejected.get(r, 0) + max(1, inj.message.pings)
            self.malformed.append(
                {"index": self.messages + inj.index, "reason": r, "pings": inj.message.pings}
            )
        self.messages += len(plan) + len(injections)

    def finish(self) -> GroundTruth:
        cfg, settings = self.cfg, self.settings
        end_ms = self.start_ms + int(cfg.duration_s * 1000)
        scenic = []
        for i, a in enumerate(SCENIC_AREAS):
            parts = self.scenic[i]
            if parts:
                dt = np.concatenate(parts[0::2], axis=1).astype(np.int64)
                ll = np.concatenate(parts[1::2], axis=1)
                order = np.lexsort((dt[1], dt[0]))
                dt, ll = dt[:, order], ll[:, order]
            else:
                dt, ll = np.zeros((2, 0), dtype=np.int64), np.zeros((2, 0))
            scenic.append(scenic_report(a, self.frame, dt[0], dt[1], ll[0], ll[1]))
        config = asdict(cfg) | {"start_ms": self.start_ms, "end_ms": end_ms, "speed": str(cfg.speed)}
        return GroundTruth(
            config=config,
            settings={
                "window_s": settings.window_s,
                "lateness_s": settings.lateness_s,
                "base_resolution": settings.base_resolution,
                "cells_per_window": settings.cells_per_window,
                "moving_speed_mps": settings.moving_speed_mps,
                "speed_clamp_mps": settings.speed_clamp_mps,
            },
            counts={
                "messages": self.messages,
                "good_messages": self.n["good"],
                "pings": self.n["pings"],
                "pings_by_kind": {k: int(c) for k, c in zip(KINDS, self.kinds.tolist(), strict=True)},
                "accepted": self.n["accepted"],
                "outside_area": self.n["outside"],
                "late": self.n["late"],
                "malformed_messages": len(self.malformed),
                "malformed_by_reason": dict(sorted(self.by_reason.items())),
                "rejected_pings_by_reason": dict(sorted(self.rejected.items())),
                "dlq_records": self.n["outside"] + len(self.malformed),
                "devices": self.devices,
            },
            cells=self.cells,
            stadium={
                "slug": STADIUM.slug,
                "name": STADIUM.name,
                "polygon": STADIUM.feature(self.frame)["geometry"],
                "requested_crowd": cfg.crowd(),
                "curve": self.curve,
                "peak": max((c for _, c in self.curve), default=0),
            },
            scenic_areas=scenic,
            malformed=self.malformed,
            traffic={
                "speed_bins_kmh": list(settings.traffic_speed_edges_kmh),
                "cells": self.traffic_cells,
                "corridors": self.traffic_corridors,
            },
            corridors=[c.document(self.frame) for c in CORRIDORS],
            incident={
                "corridor_slug": self.traffic.incident.corridor_slug,
                "start_ms": self.start_ms + int(self.traffic.incident.start_s * 1000),
                "end_ms": self.start_ms + int(self.traffic.incident.end_s * 1000),
            },
            windows_file=None if self.keep_rows or self.sink is None else str(self.sink),
        )
