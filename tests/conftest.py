"""Shared fixtures.

Integration tests talk to the real ClickHouse server and Apache Kafka broker that
`make test` starts (deploy/local/services.sh). Each test session uses a fresh database and fresh
topic names, so runs never see each other's data.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator

import pytest

from hexpulse.settings import Settings, load_settings

RUN_ID = uuid.uuid4().hex[:8]

# Record every statement the store issues (this process and the subprocesses tests start), so
# tests/integration/hexpulse/test_modern_dialect.py can replay them on current ClickHouse.
if "HEXPULSE_SQL_CAPTURE" not in os.environ:
    os.environ["HEXPULSE_SQL_CAPTURE"] = os.path.join(tempfile.mkdtemp(prefix="hexpulse-sql-"), "sql.jsonl")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


MODERN_DIALECT = "test_modern_dialect.py"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the modern-dialect replay last, whatever the directory order, so its capture is whole."""
    items.sort(key=lambda item: item.path.name == MODERN_DIALECT)


@pytest.fixture(scope="session")
def run_id() -> str:
    return RUN_ID


@pytest.fixture(scope="session")
def base_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for this test session: fresh database and topics, a private state folder."""
    state = tmp_path_factory.mktemp("state")
    return load_settings(
        clickhouse_database=f"hexpulse_test_{RUN_ID}",
        topic_pings=f"pings-{RUN_ID}",
        topic_dlq=f"pings-{RUN_ID}.dlq",
        consumer_group=f"hexpulse-test-{RUN_ID}",
        state_dir=state,
        metrics_port=0,
        # Tests produce as the trusted gateway would: records stamped by their producer.
        topic_timestamp_type="CreateTime",
    )


@pytest.fixture(scope="session")
def services(base_settings: Settings) -> Iterator[Settings]:
    """Fail (not skip) when the services that `make test` should have started are down.

    The settings carry a per-run API user (tests/support/clickhouse_users.py), which each public
    database the tests create is allowed to (``allow_api``) and nothing else: the API under test
    reads ClickHouse the way production does. Subprocesses inherit it through the environment.
    """
    from tests.support.clickhouse_users import provision

    host, _, port = base_settings.kafka_bootstrap.partition(":")
    missing = []
    if not _port_open(base_settings.clickhouse_host, base_settings.clickhouse_port):
        missing.append(f"ClickHouse at {base_settings.clickhouse_host}:{base_settings.clickhouse_port}")
    if not _port_open(host, int(port)):
        missing.append(f"Kafka at {base_settings.kafka_bootstrap}")
    if missing:
        pytest.fail(f"services down: {', '.join(missing)}; run the suite with 'make test'")
    try:
        user = provision(base_settings, f"hexpulse_api_{RUN_ID}")
    except RuntimeError as exc:
        pytest.fail(str(exc))
    env = {"HEXPULSE_API_CLICKHOUSE_USER": user.name, "HEXPULSE_API_CLICKHOUSE_PASSWORD": user.password}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield user.settings_for(base_settings)
    user.remove()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session", autouse=True)
def _delete_session_topics(base_settings: Settings) -> Iterator[None]:
    """The broker keeps topics across restarts: delete this session's (all named with RUN_ID)."""
    yield
    host, _, port = base_settings.kafka_bootstrap.partition(":")
    if not _port_open(host, int(port)):
        return
    from kafka.errors import KafkaError

    from hexpulse.errors import ServiceUnavailableError
    from hexpulse.kafka import make_admin

    with contextlib.suppress(KafkaError, ServiceUnavailableError):  # tidying only
        admin = make_admin(base_settings)
        try:
            mine = [t for t in admin.list_topics() if RUN_ID in t]
            if mine:
                admin.delete_topics(mine)
        finally:
            admin.close()


@pytest.fixture(scope="session")
def migrated(services: Settings) -> Iterator[Settings]:
    """A fresh database with every migration applied; dropped at the end of the session."""
    from hexpulse.store.scratch import create_database, drop_database
    from tests.support.clickhouse_users import allow_api

    create_database(services)
    allow_api(services)
    yield services
    drop_database(services)


@pytest.fixture()
def unique_name() -> str:
    """A fresh suffix for topics, groups or tables created by one test."""
    return f"{RUN_ID}-{uuid.uuid4().hex[:6]}"
