"""Hole 6 of issue #9: the API's ClickHouse user reads the public database and nothing exact.

The suite's API user (tests/support/clickhouse_users.py) is configured the way deploy/ and
deploy/local/services.sh configure the production and development ones: ``allow_databases``
lists the public database alone. The exact partials and progress live in ``<db>_exact``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from clickhouse_driver import Client
from clickhouse_driver.errors import Error as DriverError
from clickhouse_driver.errors import ServerException

from hexpulse.errors import StoreError
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.client import client_kwargs
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import drop_database
from tests.support.api import private_settings

pytestmark = pytest.mark.integration

DATABASE_ACCESS_DENIED = 291
W = datetime(2031, 1, 1, 0, 0)


@pytest.fixture(scope="module")
def settings(migrated: Settings) -> Iterator[Settings]:
    s = private_settings(migrated, "chu")
    pipeline = connect(s)
    pipeline.execute(
        f"INSERT INTO {s.exact_database}.partials "
        "(window_start, cell, partition, devices, moving, speed_sum, close_offset) VALUES",
        [(W, 617700169958293503, 0, 3, 1, 40, 7)],
    )
    pipeline.execute(
        f"INSERT INTO {s.exact_database}.progress "
        "(topic, partition, horizon, watermark_ms, close_offset, closed_by, written_at) VALUES",
        [(s.topic_pings, 0, W, 0, 7, "watermark", W)],
    )
    pipeline.disconnect()
    yield s
    drop_database(s)


def test_api_user_refused_on_partials(settings: Settings) -> None:
    s, exact = settings, settings.exact_database
    assert s.api_clickhouse_user != s.clickhouse_user
    pipeline = connect(s)
    assert pipeline.execute(f"SELECT count() FROM {exact}.partials")[0][0] == 1  # the rows are there
    pipeline.disconnect()

    # A plain driver client with the API role's connection settings: these probes are refused on
    # purpose, so they stay out of the SQL capture that the modern-dialect check replays.
    api = Client(**client_kwargs(s, s.clickhouse_database, "api"))
    try:
        assert api.execute("SELECT count() FROM release_windows")[0][0] == 0  # its own database: fine
        host = f"{s.clickhouse_host}:{s.clickhouse_port}"
        for table in ("partials", "progress"):
            for sql in (
                f"SELECT * FROM {exact}.{table}",
                f"SELECT * FROM merge('{exact}', '.*')",
                f"SELECT * FROM remote('{host}', {exact}.{table})",
                f"INSERT INTO {exact}.{table} SELECT * FROM {exact}.{table}",
            ):
                with pytest.raises(ServerException) as refused:
                    api.execute(sql)
                assert refused.value.code == DATABASE_ACCESS_DENIED, sql
        # The catalogue does not show the exact tables (nor their row counts) either.
        assert api.execute("SELECT name FROM system.tables WHERE database = %(d)s", {"d": exact}) == []
        assert api.execute("SELECT rows FROM system.parts WHERE database = %(d)s", {"d": exact}) == []
    finally:
        api.disconnect()

    bound = connect(s, role="api", database=exact)
    with pytest.raises((DriverError, EOFError, OSError)):
        bound.execute("SELECT 1")  # cannot even open a session in the exact database
    bound.disconnect()

    pool = ClickHousePool(s, size=1)  # what every API route queries through
    try:
        with pytest.raises(StoreError):
            pool.query(f"SELECT sum(devices) FROM {exact}.partials")
    finally:
        pool.close()
