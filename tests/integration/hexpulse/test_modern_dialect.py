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
from privacy.release.traffic_bound import COUNTED_STRUCTURE, COUNTED_TABLE

pytestmark = pytest.mark.integration

chdb = pytest.importorskip("chdb", reason="chdb (pip install '.[modern]') is not installed")

_TABLES = (
    "partials|progress|release_windows|release_cells|budget_ledger|release_ledger|release_intents|"
    "feed_cursors|api_keys|schema_migrations|release_zones|release_traffic|zones"
)
_DB = re.compile(rf"\b([A-Za-z_][A-Za-z0-9_]*)\.(?:{_TABLES})\b")
# Migrations (renames and ADD COLUMN included) run above as migrations; replaying one would fail
# (ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS).
_SKIP = re.compile(
    r"^\s*(DROP\s+DATABASE|DROP\s+TABLE|RENAME\s+TABLE|ALTER\s+TABLE\s+\S+\s+ADD\s+COLUMN)", re.IGNORECASE
)


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
            conn.query(render(statement, "modern_check", "modern_check_exact"))
    assert "release_cells" in conn.query("SHOW TABLES FROM modern_check", "CSV").data()
    assert "partials" in conn.query("SHOW TABLES FROM modern_check_exact", "CSV").data()


def test_captured_statements_run_on_current_clickhouse(tmp_path: Path) -> None:
    statements = _captured()
    assert statements, "no SQL was captured; did the integration tests run through hexpulse.store.connect?"
    conn = chdb.connect(str(tmp_path / "chdb"))
    # Unqualified table names (a client bound to its database) resolve in chdb's `default`.
    public = {m.removesuffix("_exact") for sql in statements for m in _DB.findall(sql)} - {"system"}
    applied: set[str] = set()  # the migrations, applied here once (an ALTER cannot run twice)
    for db in ["default", *sorted(public)]:
        conn.query(f"CREATE DATABASE IF NOT EXISTS {db}")
        for migration in load_migrations():
            for statement in migration.statements:
                sql = render(statement, db, f"{db}_exact")
                applied.add(sql)
                conn.query(sql)
    # A statement that reads an external table (sent with the query over the native protocol,
    # which chdb has no API for) runs with the same columns as an inline table instead.
    columns = ", ".join(f"{name} {kind}" for name, kind in COUNTED_STRUCTURE)
    inline = f"IN (SELECT * FROM values('{columns}', (0, 0, 0)))"
    failures = []
    for sql in statements:
        if _SKIP.match(sql) or sql in applied:
            continue
        sql = re.sub(rf"\bIN {COUNTED_TABLE}\b", inline, sql)
        try:
            conn.query(sql)
        except Exception as exc:  # chdb raises a plain RuntimeError-like error per statement
            failures.append(f"{sql[:200]} -> {str(exc).splitlines()[0][:200]}")
    assert not failures, "statements that fail on current ClickHouse:\n" + "\n".join(failures)
