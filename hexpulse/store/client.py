"""ClickHouse connections (native protocol, clickhouse-driver).

SQL issued anywhere in hexpulse must run on ClickHouse 18.16 (CI) and on current ClickHouse
(production); tests/integration/hexpulse/test_modern_dialect.py replays it through chdb.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from clickhouse_driver import Client

from hexpulse.errors import ConfigError, ServiceUnavailableError
from hexpulse.settings import Settings
from hexpulse.store.capture import CAPTURE_ENV, RecordingClient
from hexpulse.store.errors import DRIVER_FAILURES

Role = Literal["pipeline", "api"]
"""Who connects: the pipeline user may read everything; the API user only the public database."""

_PLACEHOLDERS = ("", "changethis")


def credentials(settings: Settings, role: Role) -> tuple[str, str]:
    """(user, password) of ``role``; in production an empty or placeholder password is refused."""
    if role == "api":
        user, secret, env = settings.api_clickhouse_user, settings.api_clickhouse_password, "API_CLICKHOUSE"
    else:
        user, secret, env = settings.clickhouse_user, settings.clickhouse_password, "CLICKHOUSE"
    password = secret.get_secret_value()
    if settings.environment == "production" and password in _PLACEHOLDERS:
        raise ConfigError(f"production needs a real HEXPULSE_{env}_PASSWORD or HEXPULSE_{env}_PASSWORD_FILE.")
    return user, password


def client_kwargs(settings: Settings, database: str | None, role: Role = "pipeline") -> dict[str, Any]:
    user, password = credentials(settings, role)
    kwargs: dict[str, Any] = {
        "host": settings.clickhouse_host,
        "port": settings.clickhouse_port,
        "user": user,
        "password": password,
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


def connect(
    settings: Settings, *, database: str | None = None, use_db: bool = True, role: Role = "pipeline"
) -> Client:
    """A client of ``role`` bound to the configured public database (or ``database``; none when
    ``use_db`` is False). Tables of the exact database are always named with it."""
    db = database or (settings.clickhouse_database if use_db else None)
    if os.environ.get(CAPTURE_ENV):
        return RecordingClient(**client_kwargs(settings, db, role))
    return Client(**client_kwargs(settings, db, role))


def ping_clickhouse(settings: Settings, role: Role = "pipeline") -> None:
    """Raise ServiceUnavailableError with one sentence if ClickHouse does not answer ``role``'s user
    (the API user on its public database, which is all it may use)."""
    client = connect(settings, use_db=role == "api", role=role)
    try:
        client.execute("SELECT 1")
    except DRIVER_FAILURES as exc:
        if getattr(exc, "code", None) in _REFUSED:
            user = credentials(settings, role)[0]
            raise ServiceUnavailableError(
                f"ClickHouse refused user {user!r} (code {getattr(exc, 'code', '?')}); check its password "
                f"and, for the API user, that its allow_databases lists {settings.clickhouse_database} "
                "(docs/DEPLOY.md)."
            ) from None
        raise _unreachable(settings, exc) from None
    finally:
        client.disconnect()


_REFUSED = (192, 193, 291, 516)  # unknown user, wrong password, database not allowed, auth failed


def _unreachable(settings: Settings, exc: BaseException) -> ServiceUnavailableError:
    return ServiceUnavailableError(
        f"ClickHouse is not reachable at {settings.clickhouse_host}:{settings.clickhouse_port} "
        f"({type(exc).__name__}); start it with 'make services' or set HEXPULSE_CLICKHOUSE_HOST/PORT."
    )
