"""The sink's per-device traffic rows (``traffic_moving``, ``traffic_movers``) of one closing, from
the contributions bounding computed: the moving rows are the partials' speed bins, device by
device, and the movers each moving device-window once (the bound's counts are rebuilt from them)."""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregate.bounding import Bounds, compute_partials
from aggregate.sink import mover_columns, moving_columns
from aggregate.windows import Closing
from tests.support.aggregate_reference import Ping
from tests.unit.aggregate.test_semantics import W, streams, to_columns


@settings(max_examples=100, deadline=None)
@given(streams(), st.integers(1, 3))
def test_moving_rows_are_the_partials_bins_and_movers_each_device_window_once(
    pings: list[Ping], cells: int
) -> None:
    part = compute_partials(to_columns(pings), Bounds(window_ms=W, cells_per_window=cells))
    closing = Closing(partition=2, horizon_ms=0, watermark_ms=0, close_offset=0, closed_by="watermark",
                      partials=part, close_offsets=np.zeros(len(part), np.int64), first_offset=None,
                      pings=len(pings))  # fmt: skip
    wins, parts, ids, devs, cells_, bins = moving_columns(closing)
    assert set(parts) <= {2} and set(ids) <= {closing.closing_id}
    from_rows = Counter(zip((w * 1000 for w in wins), cells_, bins, strict=True))
    rows = zip(part.window_start_ms.tolist(), part.cell.tolist(), part.speed_bins.tolist(), strict=True)
    from_partials = Counter({(w, c, b): n for w, c, row in rows for b, n in enumerate(row) if n})
    assert from_rows == from_partials
    m_wins, m_parts, m_ids, m_devs = mover_columns(closing)
    assert sorted(zip(m_wins, m_devs, strict=True)) == sorted(set(zip(wins, devs, strict=True)))
    assert set(m_parts) <= {2} and set(m_ids) <= {closing.closing_id}
