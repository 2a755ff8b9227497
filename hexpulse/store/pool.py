"""A small pool of ClickHouse clients, shared by the threads and async handlers of one process.

clickhouse-driver clients are synchronous and not safe to share between threads, so each query
borrows one client from a queue: :meth:`ClickHousePool.query` in the calling thread (a product
process following the release feed), :meth:`ClickHousePool.aquery` in a worker thread (the API).
Every query is parameterized with the driver's ``%(name)s`` placeholders; no SQL is built from
request strings.
"""

from __future__ import annotations

import queue
from typing import Any

import anyio.to_thread
from clickhouse_driver import Client

from hexpulse.errors import ServiceUnavailableError
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.errors import DRIVER_FAILURES, store_failure


class ClickHousePool:
    """``size`` lazily connected clients of the API user, bound to the public database.

    The API user's ``allow_databases`` lists the public database only, so the exact partials are
    out of its reach whatever SQL runs here (docs/DEPLOY.md, "ClickHouse users").
    """

    def __init__(self, settings: Settings, size: int | None = None) -> None:
        self._settings = settings
        self._idle: queue.LifoQueue[Client] = queue.LifoQueue()
        for _ in range(size or settings.api_db_pool):
            self._idle.put(connect(settings, role="api"))

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one SELECT in the calling thread; driver errors become hexpulse errors."""
        client = self._idle.get()
        try:
            rows: list[tuple[Any, ...]] = client.execute(sql, params or {})
            return rows
        except DRIVER_FAILURES as exc:
            client.disconnect()
            raise store_failure(exc, "a query") from None
        finally:
            self._idle.put(client)

    def insert(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        client = self._idle.get()
        try:
            client.execute(sql, rows)
        except DRIVER_FAILURES as exc:
            client.disconnect()
            raise store_failure(exc, "an insert", rejected=ServiceUnavailableError) from None
        finally:
            self._idle.put(client)

    async def aquery(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return await anyio.to_thread.run_sync(self.query, sql, params)

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().disconnect()
            except queue.Empty:
                return
