"""The release feed: released windows in release order, after a cursor.

Release order is window order. The releaser publishes a window only when every earlier window
is public (it resumes after the newest public window, and completeness is a prefix of time), so a
window published *late* (held back by a quiet partition or a releaser outage) holds back every
later window with it and still arrives in window order. The cursor is therefore the start of the
last handled window, and the next windows are those that start after it. What happens if that
order is ever broken is :meth:`releases.follower.Follower.behind`'s business.

The feed reads ``release_windows`` only; it never calls into the releaser, and any number of
processes may walk it, each with its own cursor.
"""

from __future__ import annotations

from typing import Literal

from hexpulse.store.pool import ClickHousePool
from releases import queries
from releases.cursors import CursorStore
from releases.models import Window

Start = Literal["earliest", "latest"]
"""Where a feed without a cursor begins: the oldest window still retained, or the newest one."""


class ReleaseFeed:
    """Walks released windows from ``cursor``; :meth:`fetch` reads, :meth:`commit` moves the cursor."""

    def __init__(self, pool: ClickHousePool, cursor: CursorStore, *, start: Start = "latest",
                 batch: int = 500) -> None:  # fmt: skip
        self._pool = pool
        self.cursor = cursor
        self._start = start
        self._batch = batch

    def fetch(self) -> list[Window]:
        """The next released windows after the cursor, oldest first (at most ``batch``).

        Without a cursor: the newest window alone (``start="latest"``) or the oldest ones.
        Reading never moves the cursor, so a window fetched but not committed comes again.
        """
        at = self.cursor.load()
        if at is None and self._start == "latest":
            sql, params = queries.latest_window()
        else:
            sql, params = queries.windows_after(at.window_start if at else None, self._batch)
        return [Window.from_row(row) for row in self._pool.query(sql, params)]

    def commit(self, window: Window) -> None:
        """Record ``window`` as handled: the next :meth:`fetch` starts after it."""
        self.cursor.save(window)
