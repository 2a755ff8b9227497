"""Versioned SQL migrations, applied in order and recorded in ``schema_migrations``.

Files live in ``hexpulse/store/migrations/NNNN_name.sql``; statements are separated by lines
holding only ``;``-terminated SQL. ``{db}`` in a file is replaced by the public database name and
``{exact}`` by the restricted one (exact partials and progress; ``Settings.exact_database``).
Applying twice is a no-op: each version is recorded (in the public database) after all its
statements succeed, and every statement is itself ``IF NOT EXISTS`` so a crash mid-file can be
resumed; a ``RENAME TABLE a TO b`` whose ``a`` is gone and ``b`` exists was done by such a run and
is skipped. ClickHouse 18.16 has no
``ADD COLUMN IF NOT EXISTS``, so an ``ALTER TABLE … ADD COLUMN`` refused because the column
already exists counts as done (an ALTER's changes land together or not at all).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from clickhouse_driver import Client

from hexpulse.errors import StoreError
from hexpulse.store.errors import DRIVER_FAILURES, store_failure
from hexpulse.times import naive_utc_now

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_ADD_COLUMN = re.compile(r"^\s*ALTER\s+TABLE\s+\S+\s+ADD\s+COLUMN\s", re.IGNORECASE)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def split_statements(sql: str) -> list[str]:
    """Split a file on ';' at line ends, dropping '--' comment lines and blanks."""
    lines = [ln for ln in sql.splitlines() if not ln.strip().startswith("--")]
    parts = re.split(r";\s*$", "\n".join(lines), flags=re.MULTILINE)
    return [p.strip() for p in parts if p.strip()]


def load_migrations() -> list[Migration]:
    found: list[Migration] = []
    folder = resources.files("hexpulse.store") / "migrations"
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(
                Migration(int(match.group(1)), match.group(2), tuple(split_statements(entry.read_text())))
            )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise StoreError(f"two migration files share a version number: {versions}")
    return found


_RENAME = re.compile(r"^RENAME\s+TABLE\s+(\w+)\.(\w+)\s+TO\s+(\w+)\.(\w+)$", re.IGNORECASE)


def render(statement: str, database: str, exact_database: str) -> str:
    return statement.replace("{db}", database).replace("{exact}", exact_database)


def _exists(client: Client, database: str, table: str) -> bool:
    rows = client.execute(
        "SELECT count() FROM system.tables WHERE database = %(d)s AND name = %(t)s",
        {"d": database, "t": table},
    )
    return bool(rows[0][0])


def _already_done(client: Client, statement: str) -> bool:
    """True for a table move that an interrupted run of the same migration already made."""
    move = _RENAME.match(statement.strip())
    if move is None:
        return False
    src_db, src, dst_db, dst = move.groups()
    return not _exists(client, src_db, src) and _exists(client, dst_db, dst)


def apply_migrations(client: Client, database: str, exact_database: str) -> list[int]:
    """Create ``database`` if needed and apply pending migrations; return the versions applied."""
    try:
        client.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        client.execute(
            f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations "
            "(version UInt32, name String, applied_at DateTime('UTC')) "
            "ENGINE = MergeTree() ORDER BY version"
        )
        done = {row[0] for row in client.execute(f"SELECT version FROM {database}.schema_migrations")}
    except DRIVER_FAILURES as exc:
        raise store_failure(exc, f"preparing database {database}") from None
    applied: list[int] = []
    for migration in load_migrations():
        if migration.version in done:
            continue
        for statement in migration.statements:
            sql = render(statement, database, exact_database)
            try:
                if not _already_done(client, sql):
                    client.execute(sql)
            except DRIVER_FAILURES as exc:
                message = getattr(exc, "message", "") or ""
                if _ADD_COLUMN.match(statement) and "already exists" in message:
                    continue  # a resumed migration: this column was added before the crash
                raise store_failure(exc, f"migration {migration.version:04d}_{migration.name}") from None
        client.execute(
            f"INSERT INTO {database}.schema_migrations (version, name, applied_at) VALUES",
            [(migration.version, migration.name, naive_utc_now())],
        )
        applied.append(migration.version)
    return applied
