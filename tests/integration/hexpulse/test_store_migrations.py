from __future__ import annotations

import uuid

import pytest

from hexpulse.settings import Settings
from hexpulse.store import apply_migrations, connect
from hexpulse.store.migrations import load_migrations

pytestmark = pytest.mark.integration


def test_migrations_apply_once_and_are_recorded(services: Settings) -> None:
    database = f"hexpulse_mig_{uuid.uuid4().hex[:8]}"
    client = connect(services, use_db=False)
    try:
        applied = apply_migrations(client, database)
        assert applied == [m.version for m in load_migrations()]
        assert apply_migrations(client, database) == []
        recorded = client.execute(f"SELECT version FROM {database}.schema_migrations ORDER BY version")
        assert [r[0] for r in recorded] == applied
        tables = {r[0] for r in client.execute(f"SHOW TABLES FROM {database}")}
        wanted = {"partials", "progress", "release_windows", "release_cells", "budget_ledger", "feed_cursors"}
        assert wanted <= tables
    finally:
        client.execute(f"DROP DATABASE IF EXISTS {database}")
        client.disconnect()
