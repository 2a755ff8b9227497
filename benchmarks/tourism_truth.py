"""Ground truth and scores of benchmarks/bench_tourism.py: what a tourism area-day's released
numbers should be, computed from the simulator's pings independently of aggregate/ and privacy/.

Three counts per (area, local day), from the pings ingest accepts (H3 base cell in the service
area) minus the late ones, as the simulator's ground truth counts them (simulator/ground_truth.py):

- ``polygon_devices``: distinct devices with a ping whose reported position lies inside the area's
  polygon during the local day (what a bureau means by "visitors", for devices);
- ``zone_devices``: distinct devices *counted* in the area's zone during the local day: the cell a
  device counts in per window (the top ``L`` cells by pings, ``assign``) is one of the zone's
  cells (the registered zone is its cover: the cells whose centre lies inside the polygon);
- ``visitors`` (the measurand, docs/TOURISM.md "What is counted"): the same, per pseudonym-day:
  a device counted on both sides of 00:00 UTC is two visitors (its pseudonym rotates), and each
  pseudonym-day keeps its first K (area, local day) pairs by first window, then area id, then
  date. ``dwell`` bins its windows present. The daily release estimates exactly this.

``visitors − zone_devices`` is the 00:00 UTC double count (when K drops nothing);
``zone_devices − polygon_devices`` is the zone definition's gap (cover vs polygon, counting one
cell per window). Neither is noise: the release's interval covers ``visitors`` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from hexpulse.service_area import ServiceArea
from hexpulse.settings import Settings
from hexpulse.times import S_PER_DAY
from privacy.release.tourism_daily import DWELL_EDGES_MIN
from simulator.area_truth import inside
from simulator.geo import LocalFrame
from simulator.ground_truth import NO_CLOCK, assign, base_cells, late_pings
from simulator.messages import Span
from simulator.places import NamedArea

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class AreaDayTruth:
    """One area-day's true counts (devices; see the module docstring)."""

    polygon_devices: int
    zone_devices: int
    visitors: int
    double_counted: int
    """Devices counted as two visitors (kept pairs on both sides of 00:00 UTC)."""
    double_counted_tourists: int
    """Of those, tourists (the rest: residents, drivers, the stadium crowd)."""
    dropped_by_k: int
    """(pseudonym-day, area, local day) pairs of this area-day beyond K (not counted)."""
    dwell: tuple[int, int, int, int]


@dataclass
class TruthAccumulator:
    """Collects, span by span, the counted (window, device) rows in each area's zone cells and
    the in-polygon (ts, device) pings; ``areas`` in area-id order (the ranking's tie-break)."""

    settings: Settings
    service_area: ServiceArea
    frame: LocalFrame
    areas: list[NamedArea]
    zone_cells: list[npt.NDArray[np.uint64]]
    home: IntArray
    tourist: npt.NDArray[np.bool_]
    """Per device index: a tourist (else background)."""
    _clock: IntArray = field(init=False)
    _zone_rows: list[tuple[IntArray, IntArray, IntArray]] = field(default_factory=list)
    _poly_rows: list[tuple[IntArray, IntArray, IntArray]] = field(default_factory=list)
    pings: int = 0

    def __post_init__(self) -> None:
        self._clock = np.full(self.settings.topic_partitions, NO_CLOCK, dtype=np.int64)

    def add(self, span: Span) -> None:
        s, p = self.settings, span.pings
        cell = base_cells(p.lat, p.lon, s.base_resolution)
        ok = self.service_area.contains(cell)
        late = late_pings(p, span.plan, span.upload_delay_ms, ok, s, self.home, self._clock)
        c = ok & ~late
        dev, ts, cell = p.device.astype(np.int64)[c], p.ts_ms[c], cell[c]
        lat, lon, spd = p.lat[c], p.lon[c], p.spd[c]
        self.pings += len(p.ts_ms)
        every = np.concatenate(self.zone_cells)
        near = np.isin(dev, np.unique(dev[np.isin(cell, every)]))  # a device's whole window decides its cell
        a = assign(dev[near], ts[near], lat[near], lon[near], spd[near], cell[near], s)
        for i, (area, cells) in enumerate(zip(self.areas, self.zone_cells, strict=True)):
            m = np.isin(a.cell, cells)
            self._zone_rows.append((a.win[m] // 1000, np.full(int(m.sum()), i), a.device[m]))
            hit = inside(area, self.frame, lat, lon)
            self._poly_rows.append((ts[hit] // 1000, np.full(int(hit.sum()), i), dev[hit]))

    def day(self, local_date: date, tz: str, k: int) -> list[AreaDayTruth]:
        """Each area's truth for ``local_date`` in zone ``tz`` with K = ``k``."""
        start, end = _bounds(local_date, tz)
        win, area, dev = (np.concatenate(col) for col in zip(*self._zone_rows, strict=True))
        pw, pa, pd = (np.concatenate(col) for col in zip(*self._poly_rows, strict=True))
        n, w = len(self.areas), self.settings.window_s
        return day_truth(win, area, dev, (pw, pa, pd), n, (start, end), tz, k, w, self.tourist)


def _bounds(local_date: date, tz: str) -> tuple[int, int]:
    z = ZoneInfo(tz)
    a = datetime(local_date.year, local_date.month, local_date.day, tzinfo=z)
    b = datetime.fromordinal(local_date.toordinal() + 1).replace(tzinfo=z)
    return int(a.timestamp()), int(b.timestamp())


def _local_days(win_s: IntArray, tz: str) -> IntArray:
    """Local date ordinal of each window start (computed once per distinct window)."""
    z = ZoneInfo(tz)
    uniq, inv = np.unique(win_s, return_inverse=True)
    ords = [datetime.fromtimestamp(int(w), UTC).astimezone(z).date().toordinal() for w in uniq.tolist()]
    out: IntArray = np.array(ords, dtype=np.int64)[inv]
    return out


def day_truth(
    win_s: IntArray, area: IntArray, device: IntArray, polygon: tuple[IntArray, IntArray, IntArray],
    n_areas: int, bounds: tuple[int, int], tz: str, k: int, window_s: int, tourist: npt.NDArray[np.bool_],
) -> list[AreaDayTruth]:  # fmt: skip
    """The truth of one local day ``bounds`` (epoch s) from counted zone rows (window start s, area
    index, device) and in-polygon pings (ts s, area index, device); ``tourist`` per device index
    tells tourists from the background; see the module docstring."""
    start, end = bounds
    target = datetime.fromtimestamp(start, UTC).astimezone(ZoneInfo(tz)).date().toordinal()
    if len(win_s):
        cols = [device, win_s // S_PER_DAY, area, _local_days(win_s, tz), win_s]
        rows = np.unique(np.column_stack(cols), axis=0)
    else:
        rows = np.zeros((0, 5), dtype=np.int64)
    # One pair per (device, UTC day, area, local day): its windows and first window.
    pairs, first_idx, n_windows = np.unique(rows[:, :4], axis=0, return_index=True, return_counts=True)
    first = rows[first_idx, 4]
    # Rank each pseudonym-day's pairs by (first window, area index = id order, local day); keep K.
    order = np.lexsort((pairs[:, 3], pairs[:, 2], first, pairs[:, 1], pairs[:, 0]))
    pairs, n_windows = pairs[order], n_windows[order]
    new = np.ones(len(pairs), dtype=bool)
    new[1:] = (pairs[1:, 0] != pairs[:-1, 0]) | (pairs[1:, 1] != pairs[:-1, 1])
    group_start = np.maximum.accumulate(np.where(new, np.arange(len(pairs)), 0))
    kept = (np.arange(len(pairs)) - group_start) < k
    edges = np.array(DWELL_EDGES_MIN, dtype=float)
    out = []
    for i in range(n_areas):
        mine = (pairs[:, 2] == i) & (pairs[:, 3] == target)
        keep = mine & kept
        bins = np.searchsorted(edges, n_windows[keep] * window_s / 60.0, side="right")
        dwell = np.bincount(bins, minlength=4)
        kept_devices, per_device = np.unique(pairs[keep, 0], return_counts=True)
        in_day = (win_s >= start) & (win_s < end) & (area == i)
        pw, pa, pd = polygon
        p_in = (pw >= start) & (pw < end) & (pa == i)
        out.append(AreaDayTruth(
            polygon_devices=len(np.unique(pd[p_in])), zone_devices=len(np.unique(device[in_day])),
            visitors=int(keep.sum()), double_counted=int((per_device > 1).sum()),
            double_counted_tourists=int((per_device[tourist[kept_devices]] > 1).sum()),
            dropped_by_k=int((mine & ~kept).sum()),
            dwell=(int(dwell[0]), int(dwell[1]), int(dwell[2]), int(dwell[3])),
        ))  # fmt: skip
    return out


def coverage(
    estimates: npt.NDArray[np.float64], sigma: float, truth: npt.NDArray[np.float64], z: float
) -> float:
    """Share of estimates whose interval ``estimate ± z σ`` holds the truth (same shapes)."""
    return float(np.mean(np.abs(estimates - truth) <= z * sigma))


def median_rel_err(estimates: npt.NDArray[np.float64], truth: npt.NDArray[np.float64]) -> float:
    """Median of ``|estimate − truth| / truth`` (truth > 0)."""
    return float(np.median(np.abs(estimates - truth) / truth))
