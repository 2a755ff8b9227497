"""The open-data export follower: a durable follower of the release feed that writes each UTC day
once the day is complete.

A day is complete when a window of a later day is released: release order is window order
(docs/ARCHITECTURE.md, "Release feed"), so no window of an earlier day can still come. The handler
is idempotent (a day's folder, once renamed into place, is never rewritten), which is what the
feed's at-least-once delivery needs. Folders older than the release retention are deleted, the
same horizon as the release tables they come from.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from hexpulse.logs import log_event
from hexpulse.settings import Settings
from hexpulse.store.pool import ClickHousePool
from opendata.dataset import export_day, is_exported, opendata_root, remove_stale
from releases.days import released_days
from releases.follower import Follower
from releases.models import Window

log = logging.getLogger("hexpulse.opendata")


class Exporter:
    """Exports every complete released day under ``root`` (a handler for :class:`Follower`)."""

    def __init__(self, pool: ClickHousePool, root: Path, retention_days: int) -> None:
        self.pool = pool
        self.root = root
        self.retention_days = retention_days
        self._checked_before: date | None = None  # every day before this one is exported

    def keep_from(self, today: date) -> date:
        """The oldest day kept (the release retention's horizon)."""
        return today - timedelta(days=self.retention_days)

    def handle(self, window: Window) -> None:
        """Export every released day before ``window``'s day that has no folder yet."""
        day = window.start.astimezone(UTC).date()
        if self._checked_before is not None and day <= self._checked_before:
            return
        since = self.keep_from(datetime.now(UTC).date())
        for done in released_days(self.pool, since):
            if done >= day:
                break
            if not is_exported(self.root, done):
                path = export_day(self.pool, self.root, done)
                log_event(log, "open data day exported", day=done.isoformat(), folder=str(path))
        self._checked_before = day
        remove_stale(self.root, since)


def run(settings: Settings, pool: ClickHousePool, stop: threading.Event) -> None:
    """Follow the release feed as ``settings.opendata_follower`` until ``stop`` is set."""
    exporter = Exporter(pool, opendata_root(settings), settings.release_retention_days)
    Follower(pool, settings.opendata_follower, start="earliest").run(exporter.handle, stop)
