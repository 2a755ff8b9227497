"""Property tests of window assignment, bounding, dedupe and replay determinism (no services)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregate.bounding import Bounds, _device_ts_offset_order, compute_partials
from aggregate.windows import AddResult, PartitionWindows
from hexpulse.pings import PingColumns
from hexpulse.times import window_start
from tests.support.aggregate_reference import Ping, columns, reference

W = 10_000
LATE = 5_000
ALL = 86_400_000 // W  # windows per day: the day cap drops nothing
CELLS = [0x89283082803FFFF + k * 0x1000000 for k in range(4)]


def to_columns(pings: list[Ping]) -> PingColumns:
    return columns(pings)[0]


def record_times(pings: list[Ping]) -> np.ndarray:
    return columns(pings)[1]


@st.composite
def streams(draw: st.DrawFn) -> list[Ping]:
    """Record timestamps mostly rising (a gateway's arrival times, now and then out of order) and
    event times anywhere from 12 s before to 6 s after them (device clocks, upload delays)."""
    n = draw(st.integers(1, 80))
    base = 1_700_000_000_000
    out = []
    rts = base
    for i in range(n):
        rts = max(base, rts + draw(st.integers(-2_000, 6_000)))
        ts = rts - draw(st.integers(-6_000, 12_000))
        spd = draw(st.one_of(st.just(math.nan), st.sampled_from([0.0, 1.0, 1.99, 2.0, 3.4722, 7.5, 60.0])))
        out.append(
            Ping(
                offset=i,
                device=draw(st.integers(0, 5)),
                ts_ms=ts if draw(st.booleans()) else ts - ts % 1000,  # equal ts → duplicates
                lat=23.1 + draw(st.integers(0, 50)) * 1e-4,
                lon=113.3 + draw(st.integers(0, 50)) * 1e-4,
                speed=spd,
                cell=draw(st.sampled_from(CELLS)),
                record_ts=rts,
            )
        )
    return out


def run_windows(pings: list[Ping], cuts: list[int], bounds: Bounds) -> tuple[dict, int, int, dict]:
    pw = PartitionWindows(0, W, LATE, bounds)
    cols = to_columns(pings)
    rts = record_times(pings)
    edges = sorted({0, len(pings), *[c % (len(pings) + 1) for c in cuts]})
    got: dict = {}
    close_off: dict = {}
    late = dup = 0
    for a, b in zip(edges, edges[1:], strict=False):
        if b == a:
            continue
        res = pw.add(cols.take(np.arange(a, b)), rts[a:b], int(cols.offset[b - 1]) + 1)
        late += res.late
        closing = pw.take_closing()
        if closing is not None:
            dup += closing.partials.duplicates
            for row, off in zip(closing.partials.rows(), closing.close_offsets.tolist(), strict=True):
                assert (row[0], row[1]) not in got, "a window was closed twice"
                got[(row[0], row[1])] = row[2:]
                close_off[(row[0], row[1])] = off
    pw.idle_advance(2**61)
    closing = pw.take_closing()
    if closing is not None:
        dup += closing.partials.duplicates
        for row in closing.partials.rows():
            got[(row[0], row[1])] = row[2:]
    return got, late, dup, close_off


@settings(max_examples=150, deadline=None)
@given(
    streams(),
    st.lists(st.integers(0, 100), max_size=6),
    st.lists(st.integers(0, 100), max_size=6),
    st.integers(1, 3),
)
def test_windows_match_reference_and_chunking(
    pings: list[Ping], cuts1: list[int], cuts2: list[int], cells: int
) -> None:
    bounds = Bounds(window_ms=W, cells_per_window=cells, windows_per_device_day=ALL)
    want, want_late, want_dup = reference(pings, W, LATE, cells=cells)
    got1, late1, dup1, off1 = run_windows(pings, cuts1, bounds)
    got2, late2, dup2, off2 = run_windows(pings, cuts2, bounds)
    assert got1 == want
    assert (late1, dup1) == (want_late, want_dup)
    assert got2 == got1 and off2 == off1  # replay with another poll chunking: identical rows
    assert (late2, dup2) == (late1, dup1)


@given(st.lists(st.integers(-(2**50), 2**50), min_size=1, max_size=50), st.sampled_from([10_000, 60_000]))
def test_window_assignment(ts: list[int], w: int) -> None:
    arr = np.array(ts, np.int64)
    ws = window_start(arr, w)
    assert np.all(ws <= arr) and np.all(arr < ws + w) and np.all(ws % w == 0)


@settings(max_examples=100, deadline=None)
@given(streams(), st.integers(1, 3), st.sampled_from([1, 2, 4320, 8640]))
def test_bounding_caps_cells_and_day(pings: list[Ping], cells: int, wpd: int) -> None:
    bounds = Bounds(window_ms=W, cells_per_window=cells, windows_per_device_day=wpd)
    cols = to_columns(pings)
    part = compute_partials(cols, bounds)
    bins: dict[tuple[int, int], list[int]] = {}
    want, _, dup = reference(list(pings), W, 10**12, cells=cells, wpd=wpd, bins=bins)  # nothing late
    assert {(r[0], r[1]): r[2:] for r in part.rows()} == want
    assert part.duplicates == dup
    # Speed bins: a moving device in exactly one bin of each cell it counts in.
    got_bins = {(r[0], r[1]): b for r, b in zip(part.rows(), part.speed_bins.tolist(), strict=True)}
    assert {k: b for k, b in got_bins.items() if any(b)} == bins
    assert part.speed_bins.sum(axis=1).tolist() == part.moving.tolist()
    # each device-window contributes to at most L cells
    per_window = {}
    for (w, _c), (d, _m, _s) in want.items():
        per_window[w] = per_window.get(w, 0) + d
    devices_in = {w: len({(p.device) for p in pings if p.ts_ms // W * W == w}) for w in per_window}
    for w, total in per_window.items():
        assert total <= cells * devices_in[w]


def test_ties_go_to_the_earliest_cell_then_lowest_id() -> None:
    base = 1_700_000_000_000
    nan = float("nan")
    pings = [
        Ping(0, 7, base + 300, 23.1, 113.3, nan, CELLS[2], base),
        Ping(1, 7, base + 100, 23.1, 113.3, nan, CELLS[3], base),
        Ping(2, 7, base + 200, 23.1, 113.3, nan, CELLS[2], base),
        Ping(3, 7, base + 400, 23.1, 113.3, nan, CELLS[3], base),
        Ping(4, 8, base + 100, 23.1, 113.3, 5.0, CELLS[1], base),
        Ping(5, 8, base + 100, 23.1, 113.3, 5.0, CELLS[0], base),  # duplicate ts: offset 4 wins
    ]
    part = compute_partials(to_columns(pings), Bounds(window_ms=W, windows_per_device_day=ALL))
    rows = {r[1]: r[2:] for r in part.rows()}
    assert rows == {CELLS[3]: (1, 0, 0), CELLS[1]: (1, 1, 18)}
    assert part.duplicates == 1


def test_commit_offset_is_first_offset_of_oldest_open_window() -> None:
    base = 1_700_000_000_000 // W * W
    nan = float("nan")
    pw = PartitionWindows(0, W, LATE, Bounds(window_ms=W, windows_per_device_day=ALL))

    def ping(off: int, ts: int, rts: int | None = None) -> Ping:
        return Ping(off, off % 3, base + ts, 23.1, 113.3, nan, CELLS[0], base + (ts if rts is None else rts))

    def add(pings: list[Ping], next_offset: int) -> AddResult:
        return pw.add(to_columns(pings), record_times(pings), next_offset)

    # offsets 0..2 in window 0, 3 in window 1; then 4 in window 1 and 5 far ahead
    add([ping(0, 100), ping(1, 9_000), ping(2, 5_000), ping(3, 12_000)], 4)
    assert pw.take_closing() is not None  # the first horizon: nothing before window 0 to write
    assert pw.first_open_offset() == 0
    add([ping(4, 14_000), ping(5, 16_000)], 6)  # record clock 16 s - lateness 5 s: window 0 closes
    closing = pw.take_closing()
    assert closing is not None and closing.horizon_ms == base + W
    assert closing.close_offsets.tolist() == [5] and closing.partials.devices.tolist() == [3]
    assert pw.first_open_offset() == 3  # window 1 is open from offset 3
    assert add([ping(6, 4_000, rts=16_000)], 7).late == 1  # window 0 is closed: late
    assert pw.idle_advance(base + 10 * W)
    closing = pw.take_closing()
    assert closing is not None and closing.closed_by == "idle"
    assert closing.close_offsets.tolist() == [7]  # idle close: the next offset to read
    assert pw.first_open_offset() == 7  # nothing open: commit everything read


@settings(max_examples=200, deadline=None)
@given(streams(), st.booleans())
def test_sort_shortcut_equals_the_three_key_sort(pings: list[Ping], shuffle: bool) -> None:
    cols = to_columns(pings)
    if shuffle:  # out of offset order: the shortcut must not be taken
        cols = cols.take(np.random.default_rng(len(pings)).permutation(len(pings)))
    want = np.lexsort((cols.offset, cols.ts_ms, cols.device))
    assert np.array_equal(_device_ts_offset_order(cols), want)
