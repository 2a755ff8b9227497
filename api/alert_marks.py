"""Whether a subscriber has new alert events, for every ``/v1/alerts/stream`` of one API process
at the cost of one small query per poll interval.

Each open stream used to run its own events query every ``alerts_poll_s``: 1,000 idle streams
were 1,000 ClickHouse queries a second through the worker threads, and the API stopped answering
anyone else (p50 4.9 s, RELIABILITY.md §4). Now one query per interval reads a *mark* per owner
(distinct event ids and the newest window), and a stream reads its events only when its owner's
mark changed. ``uniqExact(event_id)`` rather than ``count()``: a merge of duplicate rows lowers a
count, and a new event with a merge at the same instant could leave it unchanged.
"""

from __future__ import annotations

import asyncio
import time

import anyio.to_thread

from hexpulse.store.pool import ClickHousePool

Mark = tuple[int, int]  # (distinct event ids, newest window start in epoch s) of one owner

_SQL = "SELECT owner, uniqExact(event_id), toUInt32(max(window_start)) FROM alert_events GROUP BY owner"


class EventMarks:
    def __init__(self, pool: ClickHousePool, ttl_s: float) -> None:
        self._pool = pool
        self._ttl_s = ttl_s
        self._marks: dict[str, Mark] = {}
        self._at = float("-inf")
        self._lock = asyncio.Lock()
        self.polls = 0  # mark queries run (tests: they do not grow with the number of streams)
        self.reads = 0  # events queries the streams ran

    async def mark(self, owner: str) -> Mark:
        """``owner``'s mark, at most ``ttl_s`` old."""
        if time.monotonic() - self._at >= self._ttl_s:
            async with self._lock:
                if time.monotonic() - self._at >= self._ttl_s:
                    rows = await anyio.to_thread.run_sync(self._pool.query, _SQL)
                    self._marks = {str(r[0]): (int(r[1]), int(r[2])) for r in rows}
                    self._at = time.monotonic()
                    self.polls += 1
        return self._marks.get(owner, (0, 0))
