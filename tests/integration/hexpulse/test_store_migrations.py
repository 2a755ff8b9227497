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
        assert {"release_windows", "release_cells", "budget_ledger", "release_ledger",
                "release_intents", "api_keys", "feed_cursors"} <= public
        exact = {r[0] for r in client.execute(f"SHOW TABLES FROM {database}_exact")}
        # hole 6: nothing exact is public
        assert exact == {"partials", "progress", "tourism_presence", "traffic_moving", "traffic_movers"} \
            and not exact & public
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
        moved = {r[0] for r in client.execute(f"SHOW TABLES FROM {exact}")}
        assert moved == {"partials", "progress", "tourism_presence", "traffic_moving", "traffic_movers"}
        assert not {"partials", "progress"} & {r[0] for r in client.execute(f"SHOW TABLES FROM {database}")}
    finally:
        for db in (database, exact):
            client.execute(f"DROP DATABASE IF EXISTS {db}")
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
        apply_migrations(client, database, f"{database}_exact")
        day, w = date(2026, 11, 27), datetime(2026, 11, 27, 12, 0)
        client.execute(  # a draw recorded in the old ledger
            f"INSERT INTO {database}.budget_ledger (day, window_start, res, metric, mechanism, sensitivity,"
            " scale, rho, recorded_at) VALUES",
            [(day, w, 9, "count", "gaussian", 1.0, 49.0, 0.0003, w)],
        )
        for _ in range(2):  # "crashed" before 0005 was recorded, twice: its statements run again
            client.execute(f"ALTER TABLE {database}.schema_migrations DELETE WHERE version = 5")
            _wait_mutations(client, database)
            assert apply_migrations(client, database, f"{database}_exact") == [5]
        columns = {r[0] for r in client.execute(f"DESCRIBE TABLE {database}.release_cells")}
        assert "plan" in columns
        assert spent_on(client, database, day) == 0.0003
        ((rows,),) = client.execute(f"SELECT count() FROM {database}.release_ledger")
        assert rows == 2  # the copy ran twice; the spend counts it once
    finally:
        for db in (database, f"{database}_exact"):
            client.execute(f"DROP DATABASE IF EXISTS {db}")
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


def test_a_migration_interrupted_after_an_add_column_resumes(services: Settings) -> None:
    """ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS: a crash after 0008's first ALTER (its
    record not yet written) must not make the next run fail on the column that is already there."""
    database = f"hexpulse_mig_{uuid.uuid4().hex[:8]}"
    exact = f"{database}_exact"
    client = connect(services, use_db=False)
    try:
        apply_migrations(client, database, exact)
        client.execute(f"ALTER TABLE {database}.schema_migrations DELETE WHERE version = 8")
        _wait_mutations(client, database)
        assert apply_migrations(client, database, exact) == [8]
        columns = {r[0] for r in client.execute(f"DESCRIBE TABLE {exact}.progress")}
        assert {"from_horizon", "closing", "epoch", "generation"} <= columns
        assert "closing" in {r[0] for r in client.execute(f"DESCRIBE TABLE {exact}.partials")}
    finally:
        for db in (database, exact):
            client.execute(f"DROP DATABASE IF EXISTS {db}")
        client.disconnect()


def test_estimates_migration_defaults_to_the_released_count(services: Settings) -> None:
    """0009 adds count_est/moving_est; rows written without them (by a releaser of before 0009)
    read the clipped values, and a re-run of the migration (a crash before it was recorded) is a
    no-op."""
    from datetime import datetime

    database = f"hexpulse_mig_{uuid.uuid4().hex[:8]}"
    client = connect(services, use_db=False)
    try:
        apply_migrations(client, database, f"{database}_exact")
        w = datetime(2026, 11, 27, 12, 0)
        client.execute(
            f"INSERT INTO {database}.release_cells (window_start, res, cell, count, count_sigma, count_lo,"
            " count_hi, moving, moving_sigma, moving_lo, moving_hi) VALUES",
            [(w, 9, 1, 42, 30.0, 0.0, 100.8, 7, 30.0, 0.0, 65.8)],
        )
        client.execute(f"ALTER TABLE {database}.schema_migrations DELETE WHERE version = 9")
        _wait_mutations(client, database)
        assert apply_migrations(client, database, f"{database}_exact") == [9]
        rows = client.execute(f"SELECT count_est, moving_est FROM {database}.release_cells")
        assert rows == [(42.0, 7.0)]
    finally:
        for db in (database, f"{database}_exact"):
            client.execute(f"DROP DATABASE IF EXISTS {db}")
        client.disconnect()
