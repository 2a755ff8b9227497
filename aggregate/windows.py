"""Per-partition windows: the partition clock, horizon, late pings, closing decisions.

A ping's event time (``ts``, set by the device) picks its window; *when* a window closes is decided
by the partition clock, the running maximum of the Kafka record timestamps of the records that
carried accepted pings. Record timestamps are set by the broker (LogAppendTime) or by the trusted
gateway that produces (CreateTime), never by a device, so one device's clock cannot close windows
early for the others (issue #9, hole 1): with non-decreasing record timestamps a ping is late
exactly when its window ended at least ``lateness`` before its own record's timestamp.

The horizon in force at each ping is computed from the clock *including* that ping's record, and
the clock and horizon carry over between polls and from ``progress`` (plus idle closes that the
caller records there), so a replay of the same offsets from the same resumed horizon makes the
same decisions whatever the poll chunking (docs/ARCHITECTURE.md, counting semantics 7).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field

import numpy as np

from aggregate.bounding import Bounds, Partials, compute_partials
from hexpulse.pings import I64, PingColumns
from hexpulse.times import window_start

NO_TIME = -(2**62)
"""Horizon/watermark of a partition that has seen nothing yet (ms)."""


@dataclass(frozen=True)
class Closing:
    """One closing decision of a partition: every window in ``[from_horizon_ms, horizon_ms)`` is
    closed, by the owner ``(epoch, generation)`` (see hexpulse/store/progress.py).

    ``close_offsets`` is aligned with ``partials`` rows: the offset of the record whose timestamp
    closed that row's window (or, for an idle close, the next offset to consume), so a replay
    writes the very same row. ``first_offset`` is the smallest offset of the rows it closed.
    """

    partition: int
    horizon_ms: int
    watermark_ms: int
    close_offset: int
    closed_by: str
    partials: Partials
    close_offsets: I64
    first_offset: int | None
    pings: int
    from_horizon_ms: int = NO_TIME
    epoch: int = 0
    generation: int = 0

    @property
    def closing_id(self) -> int:
        """The id its partial rows and its progress row share (never 0, which marks legacy rows).

        A function of the decision only, so a replay of the same closing by the same owner writes
        the same id; another owner, or a replay that closes differently, gets another one.
        """
        fields = struct.pack(
            "<iqqqqq",
            self.partition,
            self.from_horizon_ms,
            self.horizon_ms,
            self.close_offset,
            self.epoch,
            self.generation,
        )
        digest = hashlib.blake2b(fields + self.closed_by.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little") or 1


@dataclass
class _Chunk:
    pings: PingColumns
    win: I64
    min_win: int
    max_win: int
    min_offset: int


@dataclass
class AddResult:
    accepted: int
    late: int


@dataclass
class PartitionWindows:
    """Open windows of one partition, stored as columnar chunks (one per poll).

    ``watermark_ms`` is the partition clock (largest record timestamp seen, ms) minus the lateness;
    ``horizon_ms`` the start of the oldest window still open (every earlier one is closed).
    """

    partition: int
    window_ms: int
    lateness_ms: int
    bounds: Bounds
    horizon_ms: int = NO_TIME
    watermark_ms: int = NO_TIME
    epoch: int = 0
    generation: int = 0
    next_offset: int | None = None
    _chunks: list[_Chunk] = field(default_factory=list)
    _emitted_horizon: int = NO_TIME
    _close_at: dict[int, int] = field(default_factory=dict)
    _advance_offset: int = -1
    _closed_by: str = "watermark"

    def __post_init__(self) -> None:
        self._emitted_horizon = self.horizon_ms

    @property
    def buffered(self) -> int:
        return sum(len(c.pings) for c in self._chunks)

    @property
    def nbytes(self) -> int:
        return sum(c.pings.nbytes + c.win.nbytes for c in self._chunks)

    def first_open_offset(self) -> int | None:
        """The offset to commit: first offset of any open window, else the next offset."""
        if self._chunks:
            return min(c.min_offset for c in self._chunks)
        return self.next_offset

    def add(self, pings: PingColumns, record_ts: I64, next_offset: int) -> AddResult:
        """Add one poll's accepted pings (offset order); ``next_offset`` = last record offset + 1.

        ``record_ts`` holds, per ping, the Kafka record timestamp (ms) of the record carrying it.
        """
        self.next_offset = next_offset
        n = len(pings)
        if n == 0:
            return AddResult(0, 0)
        w = self.window_ms
        win = window_start(pings.ts_ms, w)
        wm_after = np.maximum(np.maximum.accumulate(record_ts) - self.lateness_ms, self.watermark_ms)
        h_after = np.maximum(window_start(wm_after, w), self.horizon_ms)
        # Judged with the ping's own record in the clock: a device's clock never decides.
        late = win < h_after
        n_late = int(np.count_nonzero(late))
        new_h = int(h_after[-1])
        if new_h > self.horizon_ms:
            # The record that first pushed the horizon past a window closed it (replay-stable).
            cands = [c.win[c.win < new_h] for c in self._chunks if c.min_win < new_h]
            cands.append(win[~late & (win < new_h)])
            starts = np.unique(np.concatenate(cands))
            pos = np.searchsorted(h_after, starts, side="right")
            for ws, p in zip(starts.tolist(), pos.tolist(), strict=True):
                self._close_at.setdefault(ws, int(pings.offset[p]))
            self._advance_offset = int(pings.offset[int(np.searchsorted(h_after, new_h, side="left"))])
            self._closed_by = "watermark"
        self.horizon_ms = new_h
        self.watermark_ms = int(wm_after[-1])
        if n_late:
            keep = ~late
            pings, win = pings.take(keep), win[keep]
        if len(pings):
            self._chunks.append(_Chunk(pings, win, int(win.min()), int(win.max()), int(pings.offset.min())))
        return AddResult(n - n_late, n_late)

    def idle_advance(self, horizon_ms: int) -> bool:
        """Close windows before ``horizon_ms`` (wall-clock idle close); True if the horizon moved."""
        if horizon_ms <= self.horizon_ms:
            return False
        self.horizon_ms = horizon_ms
        self._closed_by = "idle"
        self._advance_offset = self.next_offset if self.next_offset is not None else -1
        return True

    def due(self) -> bool:
        return self.horizon_ms > self._emitted_horizon

    def take_closing(self) -> Closing | None:
        """Remove the rows of every window before the horizon and return their partials."""
        if not self.due():
            return None
        h = self.horizon_ms
        closed: list[PingColumns] = []
        closed_win: list[I64] = []
        keep: list[_Chunk] = []
        for c in self._chunks:
            if c.min_win >= h:
                keep.append(c)
            elif c.max_win < h:
                closed.append(c.pings)
                closed_win.append(c.win)
            else:
                m = c.win < h
                closed.append(c.pings.take(m))
                closed_win.append(c.win[m])
                rest, rwin = c.pings.take(~m), c.win[~m]
                keep.append(_Chunk(rest, rwin, int(rwin.min()), int(rwin.max()), int(rest.offset.min())))
        self._chunks = keep
        rows = PingColumns.concat(closed)
        partials = compute_partials(rows, self.bounds)
        idle_offset = self._advance_offset
        offsets = np.array(
            [self._close_at.get(int(ws), idle_offset) for ws in partials.window_start_ms.tolist()],
            dtype=np.int64,
        )
        self._close_at = {k: v for k, v in self._close_at.items() if k >= h}
        closing = Closing(
            partition=self.partition,
            horizon_ms=h,
            watermark_ms=self.watermark_ms,
            close_offset=self._advance_offset,
            closed_by=self._closed_by,
            partials=partials,
            close_offsets=offsets,
            first_offset=int(rows.offset.min()) if len(rows) else None,
            pings=len(rows),
            from_horizon_ms=self._emitted_horizon,
            epoch=self.epoch,
            generation=self.generation,
        )
        self._emitted_horizon = h
        return closing
