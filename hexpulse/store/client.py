"""ClickHouse connections (native protocol, clickhouse-driver).

SQL issued anywhere in hexpulse must run on ClickHouse 18.16 (CI) and on current ClickHouse
(production); tests/integration/hexpulse/test_modern_dialect.py replays it through chdb.
"""

from __future__ import annotations

import os
from typing import Any

from clickhouse_driver import Client

from hexpulse.errors import ServiceUnavailableError
from hexpulse.settings import Settings
from hexpulse.store.capture import CAPTURE_ENV, RecordingClient
from hexpulse.store.errors import DRIVER_FAILURES


def client_kwargs(settings: Settings, database: str | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "host": settings.clickhouse_host,
        "port": settings.clickhouse_port,
        "user": settings.clickhouse_user,
        "password": settings.clickhouse_password.get_secret_value(),
        "secure": settings.clickhouse_secure,
        "connect_timeout": 5,
        "send_receive_timeout": 60,
        "settings": {"use_numpy": False},
    }
    if database:
        kwargs["database"] = database
    if settings.clickhouse_secure:
        kwargs["verify"] = True
        if settings.clickhouse_ca_certs:
            kwargs["ca_certs"] = str(settings.clickhouse_ca_certs)
    return kwargs


def connect(settings: Settings, *, database: str | None = None, use_db: bool = True) -> Client:
    """A client bound to the configured database (or ``database``; none when ``use_db`` is False)."""
    db = database or (settings.clickhouse_database if use_db else None)
    if os.environ.get(CAPTURE_ENV):
        return RecordingClient(**client_kwargs(settings, db))
    return Client(**client_kwargs(settings, db))


def ping_clickhouse(settings: Settings) -> None:
    """Raise ServiceUnavailableError with one sentence if ClickHouse does not answer."""
    client = connect(settings, use_db=False)
    try:
        client.execute("SELECT 1")
    except DRIVER_FAILURES as exc:
        raise ServiceUnavailableError(
            f"ClickHouse is not reachable at {settings.clickhouse_host}:{settings.clickhouse_port} "
            f"({type(exc).__name__}); start it with 'make services' or set HEXPULSE_CLICKHOUSE_HOST/PORT."
        ) from None
    finally:
        client.disconnect()
