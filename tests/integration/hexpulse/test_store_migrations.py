from __future__ import annotations

import time
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
        assert {"partials", "progress", "release_windows", "release_cells", "budget_ledger"} <= tables
    finally:
        client.execute(f"DROP DATABASE IF EXISTS {database}")
        client.disconnect()


def test_a_migration_interrupted_after_an_add_column_resumes(services: Settings) -> None:
    """ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS: a crash after 0004's first ALTER (its
    record not yet written) must not make the next run fail on the column that is already there."""
    database = f"hexpulse_mig_{uuid.uuid4().hex[:8]}"
    client = connect(services, use_db=False)
    try:
        apply_migrations(client, database)
        client.execute(f"ALTER TABLE {database}.schema_migrations DELETE WHERE version = 4")
        deadline = 60
        while client.execute(f"SELECT count() FROM {database}.schema_migrations WHERE version = 4")[0][0]:
            deadline -= 1
            assert deadline, "the delete mutation did not finish"
            time.sleep(0.5)
        assert apply_migrations(client, database) == [4]
        columns = {r[0] for r in client.execute(f"DESCRIBE TABLE {database}.progress")}
        assert {"from_horizon", "closing", "epoch", "generation"} <= columns
    finally:
        client.execute(f"DROP DATABASE IF EXISTS {database}")
        client.disconnect()
