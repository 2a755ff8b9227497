"""Every migration and every statement the store issued in this test run also runs on current
ClickHouse (26.x, embedded through chdb). tests/conftest.py runs it last, so the capture is complete.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import orjson
import pytest

from hexpulse.store.migrations import load_migrations, render

pytestmark = pytest.mark.integration

chdb = pytest.importorskip("chdb", reason="chdb (pip install '.[modern]') is not installed")

_DB = re.compile(r"\b(hexpulse_[A-Za-z0-9_]+)\.")
# Dropping is not replayed; nor is adding a column: ADD COLUMN is only ever a migration statement,
# and every migration was applied to the replay database already (there is no IF NOT EXISTS for
# columns on ClickHouse 18.16, so a second ADD would fail where the first succeeded).
_SKIP = re.compile(r"^\s*(DROP\s+DATABASE|DROP\s+TABLE|ALTER\s+TABLE\s+\S+\s+ADD\s+COLUMN)", re.IGNORECASE)


def _captured() -> list[str]:
    path = Path(os.environ["HEXPULSE_SQL_CAPTURE"])
    if not path.exists():
        return []
    return [orjson.loads(line)["sql"] for line in path.read_bytes().splitlines() if line.strip()]


def test_migrations_run_on_current_clickhouse(tmp_path: Path) -> None:
    conn = chdb.connect(str(tmp_path / "chdb"))
    conn.query("CREATE DATABASE IF NOT EXISTS modern_check")
    for migration in load_migrations():
        for statement in migration.statements:
            conn.query(render(statement, "modern_check"))
    tables = conn.query("SHOW TABLES FROM modern_check", "CSV").data()
    assert "partials" in tables and "release_cells" in tables


def test_captured_statements_run_on_current_clickhouse(tmp_path: Path) -> None:
    statements = _captured()
    assert statements, "no SQL was captured; did the integration tests run through hexpulse.store.connect?"
    conn = chdb.connect(str(tmp_path / "chdb"))
    # Unqualified table names (a client bound to its database) resolve in chdb's `default`.
    for db in ["default", *sorted({m for sql in statements for m in _DB.findall(sql)})]:
        conn.query(f"CREATE DATABASE IF NOT EXISTS {db}")
        for migration in load_migrations():
            for statement in migration.statements:
                conn.query(render(statement, db))
    failures = []
    for sql in statements:
        if _SKIP.match(sql):
            continue
        try:
            conn.query(sql)
        except Exception as exc:  # chdb raises a plain RuntimeError-like error per statement
            failures.append(f"{sql[:200]} -> {str(exc).splitlines()[0][:200]}")
    assert not failures, "statements that fail on current ClickHouse:\n" + "\n".join(failures)
