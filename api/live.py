"""One shared poller of ``release_windows`` fanning new windows out to every SSE subscriber.

Subscribers never query ClickHouse for "is there a new window?": the feed asks once per
``api_stream_poll_s`` for all subscribers, and each subscriber then builds its payload through
the shared payload cache, so N subscribers of the same view cost one cells query per window.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from api.releases import ReleaseReader, Window
from hexpulse.errors import HexpulseError
from hexpulse.logs import log_event

log = logging.getLogger("hexpulse.api.live")


class WindowFeed:
    """Publishes each newly released window, oldest first, to every subscriber queue."""

    def __init__(self, reader: ReleaseReader, poll_s: float, queue_size: int = 256) -> None:
        self._reader = reader
        self._poll_s = poll_s
        self._queue_size = queue_size
        self._subscribers: set[asyncio.Queue[Window | None]] = set()
        self._last: datetime | None = None
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
        if self._last is None:
            latest = await self._reader.latest(fresh=True)
            new = [latest] if latest is not None else []
        else:
            new = await self._reader.since(self._last)
        for window in new:
            self._publish(window)
            self._last = window.start
        return new

    async def run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except HexpulseError as exc:
                log_event(log, "live_poll_failed", logging.WARNING, error=type(exc).__name__)
            await asyncio.sleep(self._poll_s)
