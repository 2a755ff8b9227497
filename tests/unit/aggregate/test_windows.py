"""Closing decisions of one partition's windows (no services): watermark and idle closes, late
pings, the offsets a closing vouches for, and bounds derived from settings."""

from __future__ import annotations

import math

import numpy as np

from aggregate.bounding import Bounds, haversine_m
from aggregate.windows import NO_TIME, AddResult, PartitionWindows
from hexpulse.pings import PingColumns
from hexpulse.settings import load_settings

W = 60_000
LATE = 30_000
T = 1_900_000_020_000 // W * W  # a window start
CELL = 0x89283082803FFFF


def pings(rows: list[tuple[int, int, int]]) -> PingColumns:
    """(offset, device, ts_ms) rows at one cell, standing still."""
    n = len(rows)
    return PingColumns(
        offset=np.array([r[0] for r in rows], np.int64),
        device=np.array([r[1] for r in rows], np.uint64),
        ts_ms=np.array([r[2] for r in rows], np.int64),
        lat=np.full(n, 23.13),
        lon=np.full(n, 113.32),
        speed=np.zeros(n),
        cell=np.full(n, CELL, np.uint64),
    )


def feed(pw: PartitionWindows, cols: PingColumns, next_offset: int) -> AddResult:
    """Add ``cols`` as records stamped at their event times (a gateway and devices in sync)."""
    return pw.add(cols, cols.ts_ms, next_offset)


def windows() -> PartitionWindows:
    return PartitionWindows(0, W, LATE, Bounds(window_ms=W))


def test_nothing_closes_before_the_watermark_passes_the_window_end() -> None:
    pw = windows()
    assert pw.horizon_ms == NO_TIME
    feed(pw, pings([(0, 1, T + 1_000), (1, 2, T + W + LATE - 1)]), next_offset=2)
    closing = pw.take_closing()  # the first records set the horizon: earlier windows close empty
    assert closing is not None and closing.horizon_ms == T and len(closing.partials) == 0
    assert pw.take_closing() is None
    assert pw.first_open_offset() == 0  # the commit must not pass an open window


def test_the_record_that_pushes_the_watermark_past_a_window_closes_it() -> None:
    pw = windows()
    feed(pw, pings([(10, 1, T + 1_000), (11, 2, T + 5_000)]), next_offset=12)
    feed(pw, pings([(12, 3, T + W + LATE), (13, 4, T + W + LATE + 1)]), next_offset=14)
    closing = pw.take_closing()
    assert closing is not None and closing.closed_by == "watermark"
    assert closing.horizon_ms == T + W and closing.watermark_ms == T + W + 1
    assert closing.partials.rows() == [(T, CELL, 2, 0, 0)]
    assert closing.close_offsets.tolist() == [12] and closing.close_offset == 12
    assert closing.first_offset == 10 and closing.pings == 2
    assert pw.first_open_offset() == 12  # the next window's rows are still open
    assert pw.take_closing() is None  # a closing is emitted once


def test_a_ping_of_a_closed_window_is_late_and_dropped() -> None:
    pw = windows()
    feed(pw, pings([(0, 1, T + W + LATE)]), next_offset=1)
    result = feed(pw, pings([(1, 2, T + 5_000), (2, 3, T + W + 1)]), next_offset=3)
    assert (result.accepted, result.late) == (1, 1)
    assert pw.buffered == 2


def test_an_idle_close_vouches_for_the_next_offset_and_only_moves_forward() -> None:
    pw = windows()
    feed(pw, pings([(5, 1, T + 1_000)]), next_offset=6)
    assert pw.idle_advance(T + W)
    assert not pw.idle_advance(T + W)  # no step back, no repeat
    closing = pw.take_closing()
    assert closing is not None and closing.closed_by == "idle"
    assert closing.close_offsets.tolist() == [6] and closing.close_offset == 6
    assert pw.first_open_offset() == 6


def test_replays_in_other_poll_chunks_make_the_same_closing() -> None:
    rows = [(k, k % 3, T + k * 7_000) for k in range(30)]
    one = windows()
    feed(one, pings(rows), next_offset=30)
    many = windows()
    for lo in range(0, 30, 4):
        feed(many, pings(rows[lo : lo + 4]), next_offset=min(30, lo + 4))
    a, b = one.take_closing(), many.take_closing()
    assert a is not None and b is not None
    assert a.partials.rows() == b.partials.rows()
    assert a.close_offsets.tolist() == b.close_offsets.tolist() and a.horizon_ms == b.horizon_ms


def test_bounds_follow_the_settings() -> None:
    s = load_settings(windows_per_device_day=720)
    b = Bounds.from_settings(s)
    assert (b.window_ms, b.windows_per_device_day, b.day_modulus) == (s.window_ms, 720, 2)
    assert Bounds(window_ms=W).day_modulus == 1


def test_haversine_metres() -> None:
    one_degree = haversine_m(np.array([0.0]), np.array([0.0]), np.array([1.0]), np.array([0.0]))
    assert math.isclose(float(one_degree[0]), 6_371_008.8 * math.pi / 180, rel_tol=1e-12)
