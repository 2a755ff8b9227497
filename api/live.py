"""One shared follower of the release feed per API process, fanning new windows out to every SSE
subscriber.

Subscribers never query ClickHouse for "is there a new window?": the feed asks once per
``api_stream_poll_s`` for all subscribers, and each subscriber then builds its payload through
the shared payload cache, so N subscribers of the same view cost one cells query per window.
The cursor is in memory (:class:`releases.cursors.MemoryCursor`, starting at the newest window):
the stream only reads, so each API process following on its own is harmless. Products with side
effects follow with a durable cursor instead (:class:`releases.follower.Follower`).
"""

from __future__ import annotations

import asyncio
import logging

import anyio.to_thread

from hexpulse.errors import HexpulseError
from hexpulse.logs import log_event
from hexpulse.store.pool import ClickHousePool
from releases.cursors import MemoryCursor
from releases.feed import ReleaseFeed
from releases.models import Window

log = logging.getLogger("hexpulse.api.live")


class WindowFeed:
    """Publishes each newly released window, oldest first, to every subscriber queue."""

    def __init__(self, pool: ClickHousePool, poll_s: float, queue_size: int = 256) -> None:
        self._feed = ReleaseFeed(pool, MemoryCursor(), start="latest")
        self._poll_s = poll_s
        self._queue_size = queue_size
        self._subscribers: set[asyncio.Queue[Window | None]] = set()
        self.polls = 0

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> asyncio.Queue[Window | None]:
        queue: asyncio.Queue[Window | None] = asyncio.Queue(self._queue_size)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Window | None]) -> None:
        self._subscribers.discard(queue)

    def _publish(self, window: Window) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(window)
            except asyncio.QueueFull:
                # A subscriber this far behind is dropped (None ends its stream); it may reconnect.
                self._subscribers.discard(queue)
                queue.get_nowait()
                queue.put_nowait(None)

    async def poll_once(self) -> list[Window]:
        self.polls += 1
        new = await anyio.to_thread.run_sync(self._feed.fetch)
        for window in new:
            self._publish(window)
            self._feed.commit(window)
        return new

    async def run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except HexpulseError as exc:
                log_event(log, "live_poll_failed", logging.WARNING, error=type(exc).__name__)
            await asyncio.sleep(self._poll_s)
