"""The traffic products' per-device-day window bound W_t: a pseudonym-day's speed bins count in its
first W_t moving windows of the UTC day only (issue #12).

Why: the noise of a window draw is set by the number of windows of a device-day the draw's product
can count the device in. The density counts a device in every window of its day (W = 1,440), and
so did the speed bins, although a device moves in few of its windows: their σ was 69 devices per
corridor and bin, more than most corridors' moving devices in a minute. Counting a device-day's
bins in at most W_t windows lets each traffic draw spend share·ρ_day / W_t, σ lower by √(W / W_t)
(:mod:`privacy.release.window_draws`: 69 → 20 at W_t = 120).

The rule reads the device's own rows only: its moving windows of the day in time order (the
counted closings' rows of ``traffic_moving``, aggregate/sink.py; ``traffic_movers``, the same
without cells, when the day's counts are rebuilt, since ``traffic_moving`` is kept only by the
hour); the first W_t keep their bins,
the later ones are left out of both traffic products (``traffic`` and every ``traffic.<set>``; the
density still counts the device). So adding or removing one device changes no other device's
kept windows, and one device moves the bins of at most W_t windows, each by ≤ L. The rule is a
function of the exact input of the day's windows up to the one released, so every releaser of a
window, and a rerun after a crash, keeps the same devices.

Who is left out: devices that move in more than W_t windows of a UTC day (professional drivers);
a later window's speeds are still the road's, shared with the vehicles counted, so speeds and
levels lose sample size while the moving counts lean low; the releaser logs how many it drops.

:class:`DayCounts` and :func:`bound_window` are pure; :class:`TrafficBound` holds one day's counts
in memory, read back from the store when they are not the previous window's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from clickhouse_driver import Client

from hexpulse.logs import log_event
from hexpulse.pings import I64, U64
from hexpulse.times import S_PER_DAY, naive_utc

log = logging.getLogger("hexpulse.privacy.traffic_bound")

#: (window start epoch s, partition, closing) of every counted closing of the day's earlier windows.
Triples = Callable[[int, int], Sequence[tuple[int, int, int]]]

_WINDOW_SQL = (
    "SELECT device, cell, speed_bin FROM {exact}.traffic_moving FINAL "
    "WHERE window_start = %(w)s AND (partition, closing) IN %(pairs)s"
)
#: The external table (sent with the query, native protocol) of the day's counted closings.
COUNTED_TABLE = "counted"
COUNTED_STRUCTURE = [("w", "UInt32"), ("p", "UInt16"), ("c", "UInt64")]
_DAY_SQL = (
    "SELECT device, uniqExact(window_start) FROM {exact}.traffic_movers FINAL "
    "WHERE window_start >= %(a)s AND window_start < %(b)s "
    f"AND (toUInt32(window_start), partition, closing) IN {COUNTED_TABLE} GROUP BY device"
)


@dataclass(frozen=True)
class MovingRows:
    """Moving contributions of one window: pseudonym, base cell and speed bin, aligned."""

    device: U64
    cell: U64
    speed_bin: I64

    @classmethod
    def empty(cls) -> MovingRows:
        return cls(np.empty(0, np.uint64), np.empty(0, np.uint64), np.empty(0, np.int64))

    def __len__(self) -> int:
        return int(self.device.size)

    def where(self, mask: npt.NDArray[np.bool_]) -> MovingRows:
        return MovingRows(self.device[mask], self.cell[mask], self.speed_bin[mask])


@dataclass(frozen=True)
class DayCounts:
    """Per pseudonym of UTC day ``day``, the windows before ``next_s`` (epoch s) it moved in."""

    day: int
    next_s: int
    devices: U64  # sorted, unique
    windows: I64

    @classmethod
    def empty(cls, day: int, next_s: int) -> DayCounts:
        return cls(day, next_s, np.empty(0, np.uint64), np.empty(0, np.int64))


@dataclass(frozen=True)
class Bounded:
    """One window after the bound: the kept rows, the counts after it, how many devices moved in
    it and how many of them were left out."""

    rows: MovingRows
    counts: DayCounts
    moving_devices: int
    dropped_devices: int


def bound_window(counts: DayCounts, rows: MovingRows, limit: int, next_s: int) -> Bounded:
    """Keep the rows of devices that moved in fewer than ``limit`` earlier windows of the day; the
    counts then move on to ``next_s`` with one more window for every device of ``rows``."""
    moved = np.unique(rows.device)
    if counts.devices.size:
        at = np.minimum(np.searchsorted(counts.devices, moved), counts.devices.size - 1)
        found = counts.devices[at] == moved
        before = np.where(found, counts.windows[at], 0)
    else:
        at = np.zeros(moved.size, np.int64)
        found = np.zeros(moved.size, dtype=bool)
        before = np.zeros(moved.size, np.int64)
    kept = moved[before < limit]
    windows = counts.windows.copy()
    windows[at[found]] += 1
    new = moved[~found]
    devices = np.concatenate([counts.devices, new])
    windows = np.concatenate([windows, np.ones(new.size, np.int64)])
    order = np.argsort(devices, kind="stable")
    after = DayCounts(counts.day, next_s, devices[order], windows[order])
    kept_rows = rows.where(np.isin(rows.device, kept))
    return Bounded(kept_rows, after, int(moved.size), int(moved.size - kept.size))


def bins_of_rows(base: npt.NDArray[np.uint64], rows: MovingRows, bins: int) -> npt.NDArray[np.int64]:
    """(base cells × ``bins``) moving devices per speed bin, in the order of ``base`` (sorted);
    rows of cells outside ``base`` are left out, as :func:`privacy.release.traffic.exact_bins` does."""
    out = np.zeros((base.size, bins), dtype=np.int64)
    if not len(rows) or not base.size:
        return out
    idx = np.minimum(np.searchsorted(base, rows.cell), base.size - 1)
    inside = (base[idx] == rows.cell) & (rows.speed_bin < bins)
    np.add.at(out, (idx[inside], rows.speed_bin[inside]), 1)
    return out


class TrafficBound:
    """The bound applied window by window: one UTC day's counts kept in memory between windows,
    rebuilt from ``traffic_movers`` whenever the window asked for is not the next one (a fresh
    process, a window another releaser published, a retry)."""

    def __init__(self, client: Client, exact: str, window_s: int) -> None:
        self.client = client
        self.exact = exact
        self.window_s = window_s
        self._counts: DayCounts | None = None

    def rows(self, w: int, pairs: Sequence[tuple[int, int]]) -> MovingRows:
        """Every moving contribution of window ``w`` (epoch s) in the counted closings ``pairs``."""
        if not pairs:
            return MovingRows.empty()
        params = {"w": naive_utc(w), "pairs": tuple(pairs)}
        got = self.client.execute(_WINDOW_SQL.format(exact=self.exact), params, columnar=True)
        if not got:
            return MovingRows.empty()
        dev, cell, b = got
        return MovingRows(np.array(dev, np.uint64), np.array(cell, np.uint64), np.array(b, np.int64))

    def counts_before(self, w: int, triples: Triples) -> DayCounts:
        """The day's counts before window ``w``: from memory if the last window bounded was the
        one before, else read from the store (the counted closings of the day's earlier windows)."""
        day = w // S_PER_DAY
        if self._counts is not None and self._counts.day == day and self._counts.next_s == w:
            return self._counts
        start = day * S_PER_DAY
        # A placeholder row outside every day keeps the external table non-empty at 00:00, so a
        # rebuild is always the same statements (the crash tests stop at each one).
        counted = [{"w": a, "p": p, "c": c} for a, p, c in triples(start, w)] or [{"w": 0, "p": 0, "c": 0}]
        got = self.client.execute(
            _DAY_SQL.format(exact=self.exact), {"a": naive_utc(start), "b": naive_utc(w)}, columnar=True,
            external_tables=[{"name": COUNTED_TABLE, "structure": COUNTED_STRUCTURE, "data": counted}],
        )  # fmt: skip
        if not got:
            return DayCounts.empty(day, w)
        dev, n = np.array(got[0], np.uint64), np.array(got[1], np.int64)
        order = np.argsort(dev, kind="stable")
        return DayCounts(day, w, dev[order], n[order])

    def bound(self, w: int, pairs: Sequence[tuple[int, int]], triples: Triples, limit: int) -> MovingRows:
        """The rows of window ``w`` whose devices are within their first ``limit`` (W_t) moving
        windows of the day (the limit is the window's plan's; the counts do not depend on it)."""
        out = bound_window(self.counts_before(w, triples), self.rows(w, pairs), limit, w + self.window_s)
        self._counts = out.counts
        if out.dropped_devices:
            log_event(log, "moving devices past the traffic window bound left out of the speed bins",
                      window_start=w, dropped=out.dropped_devices, moving=out.moving_devices,
                      bound=limit)  # fmt: skip
        return out.rows
