"""Where a release feed keeps its cursor: the start of the last window its follower handled.

A cursor is a window start (plus that window's release time, for the order check in
:mod:`releases.follower`). :class:`MemoryCursor` lives as long as its process (the API's live
stream, which only reads); :class:`ClickHouseCursor` survives restarts (``feed_cursors``,
migration 0007) and is what a product with side effects uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from hexpulse.store.pool import ClickHousePool
from hexpulse.times import epoch_s, naive_utc, naive_utc_now, utc
from releases.exceptions import FollowerNameError
from releases.models import Window

_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Cursor:
    """The last handled window: its start and its release time (UTC)."""

    window_start: datetime
    released_at: datetime


class CursorStore(Protocol):
    def load(self) -> Cursor | None:
        """The cursor, or None before the first commit."""

    def save(self, window: Window) -> None:
        """Move the cursor to ``window`` (the feed only ever moves it forward)."""


class MemoryCursor:
    """A cursor held by one process; gone when it exits."""

    def __init__(self) -> None:
        self._at: Cursor | None = None

    def load(self) -> Cursor | None:
        return self._at

    def save(self, window: Window) -> None:
        self._at = Cursor(window.start, window.released_at)


def check_follower_name(name: str) -> str:
    """``name`` if it can key a cursor (lower-case letters, digits, ``_ . -``; 1–64 characters)."""
    if not _NAME.match(name):
        raise FollowerNameError(
            f"follower name {name[:80]!r} is not allowed: use 1-64 characters, a lower-case letter "
            "first, then lower-case letters, digits, '_', '.' or '-' (for example 'alerts')"
        )
    return name


class ClickHouseCursor:
    """The durable cursor of follower ``name`` in ``feed_cursors``.

    Read once per process (then kept in memory, since this process is the one that moves it);
    every save is one row, so a crash loses at most the save in flight.
    """

    def __init__(self, pool: ClickHousePool, name: str) -> None:
        self._pool = pool
        self.name = check_follower_name(name)
        self._at: Cursor | None = None
        self._loaded = False

    def load(self) -> Cursor | None:
        if not self._loaded:
            rows = self._pool.query(
                "SELECT window_start, released_at FROM feed_cursors WHERE follower = %(f)s "
                "ORDER BY window_start DESC LIMIT 1",
                {"f": self.name},
            )
            self._at = Cursor(utc(rows[0][0]), utc(rows[0][1])) if rows else None
            self._loaded = True
        return self._at

    def save(self, window: Window) -> None:
        self._pool.insert(
            "INSERT INTO feed_cursors (follower, window_start, released_at, committed_at) VALUES",
            [(self.name, naive_utc(epoch_s(window.start)), naive_utc(epoch_s(window.released_at)),
              naive_utc_now())],
        )  # fmt: skip
        self._at = Cursor(window.start, window.released_at)
        self._loaded = True
