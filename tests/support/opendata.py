"""Rows shaped like :mod:`releases.days` returns them, for the open-data tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import h3

from tests.support.api import CENTER


def day_cell_rows(day_start: datetime, windows: int = 3, k: int = 1) -> list[tuple[Any, ...]]:
    """``windows`` one-minute windows from ``day_start`` (naive UTC; times in the rows are epoch
    seconds, as :func:`releases.days.cells_between` returns them) over a res-9 disk of radius k;
    one row in three has no speed, one in five a negative estimate."""
    origin = h3.latlng_to_cell(CENTER[0], CENTER[1], 9)
    cells = sorted(h3.str_to_int(c) for c in h3.grid_disk(origin, k))
    rows = []
    for w in range(windows):
        start = day_start + timedelta(minutes=w)
        for i, cell in enumerate(cells):
            est = -3.25 if i % 5 == 0 else 40.0 + i + 0.125 * w
            speed = None if i % 3 == 0 else 30.0 + i
            t = int(start.replace(tzinfo=UTC).timestamp())
            rows.append((t, t + 60, 9, cell, est, 12.5, max(0.0, est - 24.5),
                         est + 24.5, max(0, round(est)), est / 4, 12.5, 0.0, est / 4 + 24.5,
                         max(0, round(est / 4)), speed, None if speed is None else speed - 5,
                         None if speed is None else speed + 5))  # fmt: skip
    return rows


def day_zone_rows(day_start: datetime, windows: int = 3) -> list[tuple[Any, ...]]:
    return [
        (day_start + timedelta(minutes=w), day_start + timedelta(minutes=w + 1), "crowd", f"z{z}", 1,
         100.5 + z, 20.0, 61.3 + z, 139.7 + z, 100 + z, 7)
        for w in range(windows)
        for z in range(2)
    ]  # fmt: skip
