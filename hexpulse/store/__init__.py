"""The ClickHouse store: connections and versioned migrations."""

from hexpulse.store.client import connect, ping_clickhouse
from hexpulse.store.migrations import apply_migrations

__all__ = ["apply_migrations", "connect", "ping_clickhouse"]
