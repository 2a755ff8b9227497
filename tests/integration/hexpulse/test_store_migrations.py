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
        applied = apply_migrations(client, database, f"{database}_exact")
        assert applied == [m.version for m in load_migrations()]
        assert apply_migrations(client, database, f"{database}_exact") == []
        recorded = client.execute(f"SELECT version FROM {database}.schema_migrations ORDER BY version")
        assert [r[0] for r in recorded] == applied
        public = {r[0] for r in client.execute(f"SHOW TABLES FROM {database}")}
        assert {"release_windows", "release_cells", "budget_ledger", "api_keys", "feed_cursors"} <= public
        exact = {r[0] for r in client.execute(f"SHOW TABLES FROM {database}_exact")}
        assert exact == {"partials", "progress"} and not exact & public  # hole 6: nothing exact is public
    finally:
        for db in (database, f"{database}_exact"):
            client.execute(f"DROP DATABASE IF EXISTS {db}")
        client.disconnect()


def test_an_interrupted_move_to_the_exact_database_resumes(services: Settings) -> None:
    """Migration 0006 renames two tables; a run that died between them is finished by the next."""
    database = f"hexpulse_mig_{uuid.uuid4().hex[:8]}"
    exact = f"{database}_exact"
    client = connect(services, use_db=False)
    try:
        apply_migrations(client, database, exact)
        # As if the first run died after moving partials: progress still public, 0006 unrecorded.
        client.execute(f"RENAME TABLE {exact}.progress TO {database}.progress")
        client.execute(f"ALTER TABLE {database}.schema_migrations DELETE WHERE version = 6")
        deadline = time.monotonic() + 30
        while client.execute(
            "SELECT count() FROM system.mutations WHERE database = %(d)s AND is_done = 0", {"d": database}
        )[0][0]:
            assert time.monotonic() < deadline, "the mutation did not finish"
            time.sleep(0.2)
        assert apply_migrations(client, database, exact) == [6]
        assert {r[0] for r in client.execute(f"SHOW TABLES FROM {exact}")} == {"partials", "progress"}
        assert not {"partials", "progress"} & {r[0] for r in client.execute(f"SHOW TABLES FROM {database}")}
    finally:
        for db in (database, exact):
            client.execute(f"DROP DATABASE IF EXISTS {db}")
        client.disconnect()
