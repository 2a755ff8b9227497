"""Record every statement the store issues, for the modern-dialect check.

When ``HEXPULSE_SQL_CAPTURE`` names a file, :func:`hexpulse.store.connect` returns a client that
appends each distinct statement (parameters substituted; an INSERT with its first data row as a
literal) to that file as JSON lines. tests/integration/hexpulse/test_modern_dialect.py replays them on
current ClickHouse (chdb), so SQL that only works on the old CI server cannot land unnoticed.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import orjson
from clickhouse_driver import Client
from clickhouse_driver.util.escape import escape_param

CAPTURE_ENV = "HEXPULSE_SQL_CAPTURE"
_seen: set[str] = set()
_lock = threading.Lock()


def _literal_insert(query: str, rows: Any, client: Client) -> str | None:
    first = None
    if isinstance(rows, list | tuple) and rows:
        first = rows[0]
    if first is None:
        return None
    values = first.values() if isinstance(first, dict) else first
    context = client.connection.context
    return f"{query.rstrip()} (" + ", ".join(escape_param(v, context) for v in values) + ")"


def _record(sql: str) -> None:
    path = os.environ.get(CAPTURE_ENV)
    if not path:
        return
    with _lock:
        if sql in _seen or len(_seen) > 5000:
            return
        _seen.add(sql)
        with open(path, "ab") as handle:
            handle.write(orjson.dumps({"sql": sql}) + b"\n")


class RecordingClient(Client):  # type: ignore[misc]
    """A clickhouse-driver client that also records what it executes."""

    def execute(self, query: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        try:
            if query.lstrip().upper().startswith("INSERT"):
                literal = _literal_insert(query, params, self)
                if literal:
                    _record(literal)
            else:
                _record(self.substitute_params(query, params, self.connection.context) if params else query)
        except Exception:  # noqa: S110 - capture is a test aid and must never break the store
            pass
        return super().execute(query, params, *args, **kwargs)
