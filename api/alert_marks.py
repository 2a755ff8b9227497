"""Whether a subscriber has new alert events, for every ``/v1/alerts/stream`` of one API process
at the cost of one small query per poll interval.

Each open stream used to run its own events query every ``alerts_poll_s``: 1,000 idle streams
were 1,000 ClickHouse queries a second through the worker threads, and the API stopped answering
anyone else (p50 4.9 s, RELIABILITY.md §4). Now one query per interval reads a *mark* per owner
(distinct event ids and the newest window), and a stream reads its events only when its owner's
mark changed. ``uniqExact(event_id)`` rather than ``count()``: a merge of duplicate rows lowers a
count, and a new event with a merge at the same instant could leave it unchanged.

The reads are shared too: streams that ask for the same (owner, position) at once wait for one
query (1,000 streams opened together were 1,000 first reads queued behind the worker threads,
RELIABILITY.md §4), and a fresh stream of an owner whose newest event is older than where it
would start reads nothing at all.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anyio.to_thread

from alerts import events as alert_events
from hexpulse.store.pool import ClickHousePool

Mark = tuple[int, int]  # (distinct event ids, newest window start in epoch s) of one owner
Docs = list[dict[str, Any]]

_SQL = "SELECT owner, uniqExact(event_id), toUInt32(max(window_start)) FROM alert_events GROUP BY owner"


class EventMarks:
    def __init__(self, pool: ClickHousePool, ttl_s: float) -> None:
        self._pool = pool
        self._ttl_s = ttl_s
        self._marks: dict[str, Mark] = {}
        self._at = float("-inf")
        self._lock = asyncio.Lock()
        self._reading: dict[tuple[str, str | None, int], asyncio.Task[Docs]] = {}
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

    async def events_after(self, owner: str, last_id: str | None, since_s: int, mark: Mark) -> Docs:
        """``owner``'s events after ``last_id`` or from ``since_s`` (:func:`alerts.events.after`), read
        once for every stream asking the same at the same time; none without a query when ``mark``
        (read before this call) shows no event at or after ``since_s`` and there is no ``last_id``."""
        if last_id is None and (mark[0] == 0 or mark[1] < since_s):
            return []
        key = (owner, last_id, since_s)
        task = self._reading.get(key)
        if task is None:
            task = asyncio.ensure_future(self._read(key))
            self._reading[key] = task
        return await asyncio.shield(task)  # one stream going away must not cancel the others' read

    async def _read(self, key: tuple[str, str | None, int]) -> Docs:
        try:
            self.reads += 1
            return await anyio.to_thread.run_sync(alert_events.after, self._pool, *key)
        finally:
            self._reading.pop(key, None)
