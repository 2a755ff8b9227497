"""ClickHouse writes of aggregate: exact partials, then the progress row that vouches for them.

Both tables live in the restricted exact database (``Settings.exact_database``), which only the
pipeline user can read.

Order matters: a progress row says "every window before ``horizon`` is written", so it goes in
after the partials; a crash between the two only makes the next owner replay and rewrite the same
rows (same ReplacingMergeTree key, same values).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from clickhouse_driver import Client

from aggregate.exceptions import ProgressError, SinkUnavailableError
from aggregate.windows import Closing
from hexpulse.errors import HexpulseError
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.errors import DRIVER_FAILURES, store_failure


@dataclass(frozen=True)
class Resume:
    """Where a partition's previous owner got to: horizon and watermark in ms since epoch."""

    horizon_ms: int
    watermark_ms: int


class PartialsSink:
    """One ClickHouse connection, reconnected lazily after any failure."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._exact = settings.exact_database
        self._client: Client | None = None

    def _conn(self) -> Client:
        if self._client is None:
            self._client = connect(self._settings)
        return self._client

    def _fail(self, what: str, exc: BaseException) -> HexpulseError:
        if self._client is not None:
            with contextlib.suppress(*DRIVER_FAILURES):  # already broken; dropping it is all we want
                self._client.disconnect()
            self._client = None
        return store_failure(exc, what, unavailable=SinkUnavailableError, rejected=SinkUnavailableError)

    def _execute(self, what: str, sql: str, params: Any = None, *, columnar: bool = False) -> Any:
        try:
            return self._conn().execute(sql, params, columnar=columnar)
        except DRIVER_FAILURES as exc:
            raise self._fail(what, exc) from None

    def write(self, topic: str, closings: list[Closing]) -> None:
        """Insert the partials of ``closings`` (one columnar insert), then their progress rows.

        Raises SinkUnavailableError; a retry rewrites the same rows, which the table's key absorbs.
        """
        parts = [c for c in closings if len(c.partials)]
        if parts:
            columns = [
                np.concatenate([c.partials.window_start_ms // 1000 for c in parts]).tolist(),
                np.concatenate([c.partials.cell for c in parts]).tolist(),
                np.concatenate([np.full(len(c.partials), c.partition, np.int64) for c in parts]).tolist(),
                np.concatenate([c.partials.devices for c in parts]).tolist(),
                np.concatenate([c.partials.moving for c in parts]).tolist(),
                np.concatenate([c.partials.speed_sum for c in parts]).tolist(),
                np.concatenate([c.close_offsets for c in parts]).tolist(),
            ]
            self._execute(
                "insert into partials",
                f"INSERT INTO {self._exact}.partials (window_start, cell, partition, devices, moving, "
                "speed_sum, close_offset) VALUES",
                columns,
                columnar=True,
            )
        now_s = int(time.time())
        self._execute(
            "insert into progress",
            f"INSERT INTO {self._exact}.progress (topic, partition, horizon, watermark_ms, close_offset, "
            "closed_by, written_at) VALUES",
            [
                (
                    topic,
                    c.partition,
                    max(c.horizon_ms // 1000, 0),
                    c.watermark_ms,
                    c.close_offset,
                    c.closed_by,
                    now_s,
                )
                for c in closings
            ],
        )

    def load_resume(self, topic: str, partition: int) -> Resume | None:
        """The latest closing decision recorded for a partition, or None for a fresh partition."""
        rows = self._execute(
            "read progress",
            f"SELECT toUnixTimestamp(horizon), watermark_ms FROM {self._exact}.progress "
            "WHERE topic = %(topic)s AND partition = %(partition)s "
            "ORDER BY horizon DESC, watermark_ms DESC, close_offset DESC LIMIT 1",
            {"topic": topic, "partition": partition},
        )
        if not rows:
            return None
        horizon_s, watermark_ms = rows[0]
        if horizon_s < 0:
            raise ProgressError(f"progress of {topic}[{partition}] holds a negative horizon")
        return Resume(horizon_ms=int(horizon_s) * 1000, watermark_ms=int(watermark_ms))

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(*DRIVER_FAILURES):
                self._client.disconnect()
            self._client = None
