"""Time rules shared by every stage."""

from __future__ import annotations

import datetime as dt

from hexpulse.times import release_cutoff


def test_release_cutoff_keeps_whole_months_at_least_the_retention() -> None:
    now = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
    cut = release_cutoff(400, now)
    assert cut == dt.datetime(2025, 10, 1, tzinfo=dt.UTC)
    assert now - cut >= dt.timedelta(days=400)
    assert now - cut < dt.timedelta(days=400 + 31)


def test_release_cutoff_reads_a_naive_time_as_utc() -> None:
    naive = dt.datetime(2026, 3, 5)
    assert release_cutoff(3, naive) == release_cutoff(3, naive.replace(tzinfo=dt.UTC))
    assert release_cutoff(3, naive) == dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
