"""The exact daily tourism partials (privacy/release/tourism_daily.py): local days, dwell bins,
pseudonym segments across 00:00 UTC, the K-pair bound, and its neighbour property."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.release.tourism_daily import (
    AreaRef,
    PresenceRow,
    day_counts,
    dwell_bin,
    local_date_of,
    local_day_bounds,
    read_span,
    visits,
)

MIDNIGHT = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())  # 00:00 UTC = 08:00 in Shanghai
SH = "Asia/Shanghai"
AREAS = [AreaRef(f"a{i}", f"z{i}", SH) for i in range(5)] + [AreaRef("u0", "z0", "UTC")]


def ts(s: str) -> int:
    return int(datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp())


def test_local_day_bounds() -> None:
    assert local_day_bounds(date(2026, 12, 1), SH) == (ts("2026-11-30T16:00"), ts("2026-12-01T16:00"))
    assert local_day_bounds(date(2026, 12, 1), "UTC") == (MIDNIGHT, MIDNIGHT + 86_400)
    start, end = local_day_bounds(date(2026, 3, 29), "Europe/Berlin")  # spring forward: 23 h
    assert end - start == 23 * 3600
    assert local_date_of(ts("2026-11-30T16:00"), SH) == date(2026, 12, 1)
    assert local_date_of(ts("2026-11-30T15:59"), SH) == date(2026, 11, 30)
    # The rows a Shanghai day needs start at 00:00 UTC of the pseudonym day its start lies in.
    assert read_span(date(2026, 12, 1), SH) == (ts("2026-11-30T00:00"), ts("2026-12-01T16:00"))


def test_dwell_bins() -> None:
    assert [dwell_bin(m) for m in (1, 14.99, 15, 59, 60, 179, 180, 900)] == [0, 0, 1, 1, 2, 2, 3, 3]


def test_a_visit_across_midnight_utc_is_two_segments() -> None:
    # One device 07:40–08:20 Shanghai in area a0: two pseudonyms (keys rotate at 00:00 UTC).
    before = [(MIDNIGHT - 60 * i, "z0", 111) for i in range(1, 21)]
    after = [(MIDNIGHT + 60 * i, "z0", 222) for i in range(20)]
    found = visits(before + after, AREAS[:1], k=3)
    got = found[("a0", date(2026, 12, 1))]
    day = MIDNIGHT // 86_400
    assert sorted((v.utc_day, v.windows) for v in got) == [(day - 1, 20), (day, 20)]
    assert day_counts(got, 60).visitors == 2  # the double count PRIVACY.md measures
    assert day_counts(got, 60).dwell == (0, 2, 0, 0)  # 20 min each, not one 40-minute stay


def test_first_k_pairs_by_first_window() -> None:
    # One pseudonym-day visits a4, a3, a2, a1, a0 in that order (and u0 with a0's zone, in UTC).
    rows = [(MIDNIGHT + 3600 * (5 - i) + 60 * j, f"z{i}", 7) for i in range(5) for j in range(3)]
    found = visits(rows, AREAS, k=3)
    kept = sorted(key[0] for key in found)
    assert kept == ["a2", "a3", "a4"]
    found = visits(rows, AREAS, k=6)
    assert sorted(key[0] for key in found) == ["a0", "a1", "a2", "a3", "a4", "u0"]
    # Ties on the first window: area id decides (a0 before u0).
    tie = [(MIDNIGHT, "z0", 9)]
    assert [key[0] for key in visits(tie, AREAS, k=1)] == ["a0"]


def test_repeated_rows_count_once() -> None:
    rows = [(MIDNIGHT, "z1", 5)] * 3 + [(MIDNIGHT + 60, "z1", 5)]
    (v,) = visits(rows, AREAS, k=3)[("a1", date(2026, 12, 1))]
    assert (v.windows, v.first_s, v.last_s) == (2, MIDNIGHT, MIDNIGHT + 60)


def counts(rows: list[PresenceRow], k: int) -> dict[tuple[str, date], tuple[int, ...]]:
    return {key: (c.visitors, *c.dwell) for key, found in visits(rows, AREAS, k).items()
            for c in [day_counts(found, 60)]}  # fmt: skip


device_rows = st.lists(
    st.tuples(st.integers(-40 * 60, 30 * 3600), st.sampled_from([f"z{i}" for i in range(6)])),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(
    others=st.lists(st.tuples(st.integers(1, 50), device_rows), max_size=8),
    extra=device_rows,
    k=st.integers(1, 4),
)
def test_one_pseudonym_day_moves_at_most_k_entries(others: list, extra: list, k: int) -> None:  # type: ignore[type-arg]
    """Adding one pseudonym-day (any windows, any areas, any local days) changes at most K
    (area, local day) entries, each by one visitor in exactly one dwell bin."""
    base: list[PresenceRow] = []
    for dev, rows in others:
        base += [(MIDNIGHT + t // 60 * 60, z, dev) for t, z in rows]
    day = (MIDNIGHT + 3600) // 86_400  # the added device's rows, all of one UTC day
    mine = [(day * 86_400 + (t % 86_400) // 60 * 60, z, 999) for t, z in extra]
    a, b = counts(base, k), counts(base + mine, k)
    diffs = [tuple(y - x for x, y in zip(a.get(key, (0,) * 5), b.get(key, (0,) * 5), strict=True))
             for key in a.keys() | b.keys()]  # fmt: skip
    moved = [d for d in diffs if any(d)]
    assert len(moved) <= k
    for d in moved:
        assert d[0] == 1 and sorted(d[1:]) == [0, 0, 0, 1]
