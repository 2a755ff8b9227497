"""A product's durable subscription to released windows (alerts, tourism, open-data exports).

Contract (docs/ARCHITECTURE.md, "Release feed"):

- **Every window, once, in window order, per follower name.** The cursor lives in ClickHouse
  (``feed_cursors``), so a restarted process resumes after the last window it committed. It does
  not depend on the releaser (no callback) nor on how many API workers run; run *one* process
  per follower name (two would each handle every window).
- **At-least-once to the handler.** The cursor is committed after the handler returns, one
  window at a time. A crash between the two hands that one window over again after the restart,
  so handlers must be idempotent per window start (e.g. write output keyed by window start to a
  ReplacingMergeTree). A handler that raises stops the loop with the window uncommitted.
- **Order check.** A window published behind the cursor (only if the releaser's window order
  were broken: a second releaser, a manual insert) cannot be delivered in order; the follower
  logs ``window published behind the feed cursor`` once per window and carries on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from hexpulse.errors import ServiceUnavailableError, StoreError
from hexpulse.logs import log_event
from hexpulse.store.pool import ClickHousePool
from hexpulse.times import S_PER_DAY, epoch_s, utc
from releases.cursors import ClickHouseCursor
from releases.feed import ReleaseFeed, Start
from releases.models import Window

log = logging.getLogger("hexpulse.releases.follower")

Handler = Callable[[Window], None]
#: How far behind the cursor (seconds of window start) the order check looks.
BEHIND_LOOKBACK_S = S_PER_DAY


class Follower:
    """Follower ``name``: hands each released window to a handler, then commits its cursor."""

    def __init__(self, pool: ClickHousePool, name: str, *, start: Start = "earliest",
                 poll_s: float = 1.0, batch: int = 500) -> None:  # fmt: skip
        self.name = name
        self.feed = ReleaseFeed(pool, ClickHouseCursor(pool, name), start=start, batch=batch)
        self._pool = pool
        self._poll_s = poll_s
        self._reported: set[datetime] = set()

    def poll_once(self, handler: Handler, stop: threading.Event | None = None) -> int:
        """Hand every window released after the cursor to ``handler``, committing each; return how
        many were handled. Stops between windows once ``stop`` is set."""
        handled = 0
        for window in self.feed.fetch():
            if stop is not None and stop.is_set():
                break
            handler(window)
            self.feed.commit(window)
            handled += 1
        self.behind()
        return handled

    def behind(self) -> list[datetime]:
        """Windows published after the cursor's window but starting before it (never delivered)."""
        at = self.feed.cursor.load()
        if at is None:
            return []
        rows = self._pool.query(
            "SELECT window_start FROM release_windows FINAL WHERE window_start < toDateTime(%(c)s)"
            " AND window_start >= toDateTime(%(c)s) - %(span)s AND released_at > toDateTime(%(r)s)"
            " ORDER BY window_start",
            {"c": epoch_s(at.window_start), "r": epoch_s(at.released_at), "span": BEHIND_LOOKBACK_S},
        )
        found = [utc(r[0]) for r in rows]
        for start in found:
            if start not in self._reported:
                self._reported.add(start)
                log_event(log, "window published behind the feed cursor", logging.WARNING,
                          follower=self.name, window_start=epoch_s(start),
                          cursor=epoch_s(at.window_start))  # fmt: skip
        return found

    def run(self, handler: Handler, stop: threading.Event) -> None:
        """Poll every ``poll_s`` seconds until ``stop`` is set; ClickHouse outages are retried."""
        while not stop.is_set():
            try:
                self.poll_once(handler, stop)
            except (StoreError, ServiceUnavailableError) as exc:
                log_event(log, "release feed poll failed; retrying", logging.WARNING,
                          follower=self.name, error=type(exc).__name__)  # fmt: skip
            stop.wait(self._poll_s)
