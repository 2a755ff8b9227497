"""Throw-away migrated databases for tests and benchmarks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hexpulse.settings import Settings
from hexpulse.store.client import connect
from hexpulse.store.migrations import apply_migrations

KEEP_ENV = "HEXPULSE_KEEP_TEST_DB"


def create_database(settings: Settings) -> None:
    """Create ``settings.clickhouse_database`` and its exact database with every migration applied."""
    client = connect(settings, use_db=False)
    try:
        apply_migrations(client, settings.clickhouse_database, settings.exact_database)
    finally:
        client.disconnect()


def drop_database(settings: Settings) -> None:
    """Drop the public and the exact database unless ``HEXPULSE_KEEP_TEST_DB`` is set (for debugging)."""
    if os.environ.get(KEEP_ENV):
        return
    client = connect(settings, use_db=False)
    try:
        for db in (settings.clickhouse_database, settings.exact_database):
            client.execute(f"DROP DATABASE IF EXISTS {db}")
    finally:
        client.disconnect()


@contextmanager
def scratch_database(settings: Settings, **update: Any) -> Iterator[Settings]:
    """Settings with ``update`` applied (a new database name at least), migrated; dropped on exit."""
    scratch = settings.model_copy(update=update)
    create_database(scratch)
    try:
        yield scratch
    finally:
        drop_database(scratch)
