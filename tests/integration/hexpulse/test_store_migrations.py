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
        assert {"partials", "progress", "release_windows", "release_cells", "budget_ledger",
                "release_ledger", "release_intents"} <= tables  # fmt: skip
    finally:
        client.execute(f"DROP DATABASE IF EXISTS {database}")
        client.disconnect()


def test_noise_once_migration_resumes_after_a_crash(services: Settings) -> None:
    """0005 moves the ledger to an append-only table and adds plan columns. A crash after its
    ALTERs but before it was recorded must not stop the next run (18.16 has no ADD COLUMN IF NOT
    EXISTS), and copying the old ledger twice must not double the spend."""
    from datetime import date, datetime

    from privacy.release.ledger import spent_on

    database = f"hexpulse_mig_{uuid.uuid4().hex[:8]}"
    client = connect(services, use_db=False)
    try:
        apply_migrations(client, database)
        day, w = date(2026, 11, 27), datetime(2026, 11, 27, 12, 0)
        client.execute(  # a draw recorded in the old ledger
            f"INSERT INTO {database}.budget_ledger (day, window_start, res, metric, mechanism, sensitivity,"
            " scale, rho, recorded_at) VALUES",
            [(day, w, 9, "count", "gaussian", 1.0, 49.0, 0.0003, w)],
        )
        for _ in range(2):  # "crashed" before 0005 was recorded, twice: its statements run again
            client.execute(f"ALTER TABLE {database}.schema_migrations DELETE WHERE version = 5")
            _wait_mutations(client, database)
            assert apply_migrations(client, database) == [5]
        columns = {r[0] for r in client.execute(f"DESCRIBE TABLE {database}.release_cells")}
        assert "plan" in columns
        assert spent_on(client, database, day) == 0.0003
        ((rows,),) = client.execute(f"SELECT count() FROM {database}.release_ledger")
        assert rows == 2  # the copy ran twice; the spend counts it once
    finally:
        client.execute(f"DROP DATABASE IF EXISTS {database}")
        client.disconnect()


def _wait_mutations(client: object, database: str) -> None:
    import time

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ((pending,),) = client.execute(  # type: ignore[attr-defined]
            "SELECT count() FROM system.mutations WHERE database = %(db)s AND is_done = 0", {"db": database}
        )
        if not pending:
            return
        time.sleep(0.1)
    raise AssertionError("mutation did not finish")
