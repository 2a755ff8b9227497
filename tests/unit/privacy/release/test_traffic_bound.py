"""The traffic products' per-device-day window bound (privacy/release/traffic_bound.py), pure parts:
a device-day keeps its first W_t moving windows, others' rows never change who is kept, and the
kept rows are laid on the base cells like the partials' bins."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.release.traffic_bound import DayCounts, MovingRows, bins_of_rows, bound_window

DAY = 20_000
W0 = DAY * 86_400


def rows(devices: list[int], cells: list[int] | None = None, bins: list[int] | None = None) -> MovingRows:
    n = len(devices)
    return MovingRows(np.array(devices, np.uint64), np.array(cells or [10] * n, np.uint64),
                      np.array(bins or [0] * n, np.int64))  # fmt: skip


def run(windows: list[list[int]], limit: int) -> list[list[int]]:
    """The devices kept in each window, the windows bounded in order from an empty day."""
    counts = DayCounts.empty(DAY, W0)
    out = []
    for k, devs in enumerate(windows):
        got = bound_window(counts, rows(devs), limit, W0 + 60 * (k + 1))
        counts = got.counts
        out.append(sorted(int(d) for d in np.unique(got.rows.device)))
    return out


def test_a_device_keeps_its_first_windows_only() -> None:
    kept = run([[1, 2], [1], [1, 3], [1, 2], [2]], limit=2)
    assert kept == [[1, 2], [1], [3], [2], []]  # 1 and 2 each in their first two moving windows


def test_counts_move_on_and_count_every_moving_window() -> None:
    counts = DayCounts.empty(DAY, W0)
    out = bound_window(counts, rows([7, 7, 5]), 1, W0 + 60)  # device 7 in two cells: one window
    assert out.counts.devices.tolist() == [5, 7] and out.counts.windows.tolist() == [1, 1]
    assert out.counts.next_s == W0 + 60 and out.moving_devices == 2 and out.dropped_devices == 0
    again = bound_window(out.counts, rows([7, 9]), 1, W0 + 120)
    assert again.counts.windows.tolist() == [1, 2, 1] and again.dropped_devices == 1
    assert again.rows.device.tolist() == [9]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 6), max_size=6), min_size=1, max_size=12),
    st.lists(st.booleans(), min_size=12, max_size=12),
    st.integers(1, 4),
)
def test_another_device_never_changes_who_is_kept(
    windows: list[list[int]], extra: list[bool], limit: int
) -> None:
    """D and D plus device 99 (moving in any windows): every other device is kept in the same
    windows, and 99 is kept in at most ``limit`` of them."""
    plain = run(windows, limit)
    plus = run([w + ([99] if extra[k] else []) for k, w in enumerate(windows)], limit)
    assert [[d for d in w if d != 99] for w in plus] == plain
    assert sum(99 in w for w in plus) == min(limit, sum(extra[: len(windows)]))


def test_bins_of_rows_counts_each_row_in_its_cell_and_bin() -> None:
    base = np.array([10, 20, 30], np.uint64)
    got = bins_of_rows(base, rows([1, 2, 3, 4], [20, 20, 99, 10], [0, 2, 1, 3]), 4)
    assert got.tolist() == [[0, 0, 0, 1], [1, 0, 1, 0], [0, 0, 0, 0]]  # cell 99 is outside the area
    assert bins_of_rows(base, rows([]), 4).shape == (3, 4)
