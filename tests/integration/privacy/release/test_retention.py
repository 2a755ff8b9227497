"""Retention against the real ClickHouse: partials partitions past release + grace, release months
past the retention, nothing unreleased. Runs in a private database so other tests' data is safe.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest

from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.scratch import scratch_database
from privacy.release.retention import enforce_retention

pytestmark = pytest.mark.integration

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def t(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture()
def ret_settings(migrated: Settings) -> Iterator[Settings]:
    with scratch_database(
        migrated,
        clickhouse_database=f"{migrated.clickhouse_database}_ret",
        partials_grace_h=24,
        release_retention_days=400,
    ) as s:
        yield s


def _partitions(client: object, db: str, table: str) -> list[str]:
    rows = client.execute(  # type: ignore[attr-defined]
        "SELECT DISTINCT partition FROM system.parts WHERE database = %(db)s AND table = %(t)s AND active "
        "ORDER BY partition",
        {"db": db, "t": table},
    )
    return [r[0] for r in rows]


def test_retention_drops_released_partials_and_old_release_months(ret_settings: Settings) -> None:
    db, exact = ret_settings.clickhouse_database, ret_settings.exact_database
    client = connect(ret_settings)
    partials = [
        # 11-23: released, but only 11-26 13:00, after the grace edge (11-26 12:00) -> kept
        (t(2026, 11, 23, 8, 0), 1, 0),
        # 11-24: every window released on time -> dropped
        (t(2026, 11, 24, 10, 0), 1, 0),
        (t(2026, 11, 24, 10, 1), 2, 1),
        # 11-25: one window never released -> kept (never lose unpublished exact data)
        (t(2026, 11, 25, 9, 0), 3, 0),
        (t(2026, 11, 25, 9, 1), 3, 0),
        # 11-26: the day plus its grace is not over yet -> kept
        (t(2026, 11, 26, 1, 0), 4, 2),
    ]
    client.execute(
        f"INSERT INTO {exact}.partials "
        "(window_start, cell, partition, devices, moving, speed_sum, close_offset) VALUES",
        [(w, cell, part, 5, 1, 30, 100) for w, cell, part in partials],
    )
    released = [
        (t(2026, 11, 23, 8, 0), t(2026, 11, 26, 13, 0)),
        (t(2026, 11, 24, 10, 0), t(2026, 11, 24, 10, 2)),
        (t(2026, 11, 24, 10, 1), t(2026, 11, 24, 10, 3)),
        (t(2026, 11, 25, 9, 0), t(2026, 11, 25, 9, 2)),
        (t(2026, 11, 26, 1, 0), t(2026, 11, 26, 1, 2)),
        # release data: 2025-09 is past 400 days (cut-off = 2025-10-01), 2025-10 is not
        (t(2025, 9, 15, 0, 0), t(2025, 9, 15, 0, 2)),
        (t(2025, 10, 5, 0, 0), t(2025, 10, 5, 0, 2)),
    ]
    client.execute(
        f"INSERT INTO {db}.release_windows (window_start, window_end, released_at, base_cells, rho, "
        "mechanism, lag_s) VALUES",
        [(w, w + dt.timedelta(minutes=1), at, 1, 0.001, "gaussian", 1.0) for w, at in released],
    )
    client.execute(
        f"INSERT INTO {db}.release_cells (window_start, res, cell, count, count_sigma, count_lo, count_hi, "
        "moving, moving_sigma, moving_lo, moving_hi, speed_kmh, speed_lo_kmh, speed_hi_kmh) VALUES",
        [(w, 9, 1, 10, 3.0, 4.0, 16.0, 1, 3.0, 0.0, 7.0, None, None, None) for w, _ in released],
    )
    client.execute(
        f"INSERT INTO {db}.release_intents (window_start, plan, releaser, plan_json, at) VALUES",
        [(w, 1, "r", "{}", at) for w, at in released],
    )
    client.execute(  # corridors measured directly (issue #12) go with their months like the cells
        f"INSERT INTO {db}.release_zone_traffic (window_start, zone_set, zone_id, version, bins_est, "
        "bins_sigma, moving_est, mids_kmh, cells, plan) VALUES",
        [(w, "corridor", "c1", 1, [1.0, 2.0], 3.0, 3.0, [13.6, 30.0], 7, 1) for w, _ in released],
    )
    now_ms = int(NOW.timestamp() * 1000)

    dry = enforce_retention(ret_settings, client=client, now_ms=now_ms, dry_run=True)
    assert dry.partials_dropped == ("20261124",)
    assert dry.partials_kept_unreleased == ("20261123", "20261125")
    assert dry.release_dropped == ("202509",)
    assert dry.release_cutoff == t(2025, 10, 1)
    assert "20261124" in _partitions(client, exact, "partials")  # a dry run drops nothing
    assert "202509" in _partitions(client, db, "release_intents")

    report = enforce_retention(ret_settings, client=client, now_ms=now_ms)
    assert report == dry
    assert _partitions(client, exact, "partials") == ["20261123", "20261125", "20261126"]
    assert _partitions(client, db, "release_cells") == ["202510", "202611"]
    assert _partitions(client, db, "release_intents") == ["202510", "202611"]
    assert _partitions(client, db, "release_zone_traffic") == ["202510", "202611"]
    # release_windows has no partition key: its old rows go by an (asynchronous) mutation.
    deadline = time.monotonic() + 30
    while True:
        old = client.execute(
            f"SELECT count() FROM {db}.release_windows WHERE window_start < toDateTime(%(c)s)",
            {"c": int(t(2025, 10, 1).timestamp())},
        )[0][0]
        if old == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert old == 0
    assert client.execute(f"SELECT count() FROM {db}.release_windows")[0][0] == len(released) - 1

    # Idempotent: nothing more to do.
    again = enforce_retention(ret_settings, client=client, now_ms=now_ms)
    assert again.partials_dropped == () and again.release_dropped == ()
    client.disconnect()
