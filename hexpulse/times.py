"""Day, window and time math, and the datetime conversions every stage shares.

Inside the pipeline times are epoch milliseconds (UTC); ClickHouse holds ``DateTime('UTC')``,
which clickhouse-driver reads and writes as *naive* datetimes meaning UTC; the API speaks aware
UTC datetimes. Days are UTC days (the pseudonym key rotates at 00:00 UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, overload

import numpy as np
import numpy.typing as npt

S_PER_DAY = 86_400
"""Seconds in a (UTC) day."""
MS_PER_DAY = S_PER_DAY * 1000
"""Milliseconds in a (UTC) day."""

I64 = npt.NDArray[np.int64]


def utc_day(ts_ms: int) -> int:
    """The UTC day number (days since 1970-01-01) of an epoch-millisecond timestamp."""
    return ts_ms // MS_PER_DAY


def windows_per_day(window_s: int) -> int:
    """Tumbling windows of ``window_s`` seconds in a day (settings require it to divide a day)."""
    return S_PER_DAY // window_s


@overload
def window_start(ts_ms: int, window_ms: int) -> int: ...
@overload
def window_start(ts_ms: I64, window_ms: int) -> I64: ...
def window_start(ts_ms: Any, window_ms: int) -> Any:
    """Start (ms) of the tumbling window holding each timestamp (floor, also before 1970)."""
    return (ts_ms // window_ms) * window_ms


def window_of_day(window_start_ms: I64, window_ms: int) -> I64:
    """Index of each window within its UTC day (0 for the window starting at 00:00)."""
    out: I64 = (window_start_ms % MS_PER_DAY) // window_ms
    return out


def utc(value: datetime) -> datetime:
    """Aware UTC datetime; a naive one is taken as UTC (as clickhouse-driver returns them)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def epoch_s(value: datetime) -> int:
    """Whole seconds since the epoch of ``value`` (naive means UTC)."""
    return int(utc(value).timestamp())


def utc_from_ms(ts_ms: float) -> datetime:
    """Aware UTC datetime of an epoch-millisecond timestamp."""
    return datetime.fromtimestamp(ts_ms / 1000, UTC)


def naive_utc(epoch_seconds: float) -> datetime:
    """Naive UTC datetime, the form clickhouse-driver writes into ``DateTime('UTC')`` columns."""
    return datetime.fromtimestamp(epoch_seconds, UTC).replace(tzinfo=None)


def naive_utc_now() -> datetime:
    """Now as a naive UTC datetime to the second (for ``DateTime('UTC')`` columns)."""
    return datetime.now(UTC).replace(microsecond=0, tzinfo=None)


def release_cutoff(retention_days: int, now: datetime) -> datetime:
    """First instant of release data kept: the start of the month holding ``now - retention_days``.

    Release tables are partitioned by month, so whole months go; data is kept at least
    ``retention_days`` and at most one month longer.
    """
    edge = utc(now) - timedelta(days=retention_days)
    return datetime(edge.year, edge.month, 1, tzinfo=UTC)
