"""Alert retention against the real ClickHouse: old history goes with the releases it came from, a
quiet subscription keeps its latest state, a state already at the cut-off is not overwritten, and
old lease claims go."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator

import pytest
from clickhouse_driver import Client

from alerts.retention import LEASE_KEEP_S, enforce_alert_retention
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import scratch_database
from tests.support.clickhouse_users import allow_api

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 11, 27, 12, tzinfo=dt.UTC)
CUT = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)  # release_cutoff(40 days, NOW)
OLD = dt.datetime(2026, 8, 14, 9, 30, tzinfo=dt.UTC)
RECENT = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)


@pytest.fixture()
def db(migrated: Settings) -> Iterator[tuple[Settings, Client]]:
    tag = uuid.uuid4().hex[:6]
    with scratch_database(migrated, clickhouse_database=f"{migrated.clickhouse_database}_ar{tag}",
                          release_retention_days=40) as s:  # fmt: skip
        allow_api(s)
        client = connect(s)
        try:
            yield s, client
        finally:
            client.disconnect()


def _sub(client: Client, sid: str, deleted: int) -> None:
    client.execute(
        "INSERT INTO alert_subscriptions (subscription_id, owner, name, zone_id, metric, expansion, levels,"
        " min_windows, confidence, webhook_url, secrets, deleted, created_at, revision) VALUES",
        [(sid, "o", sid, "z", "crowd_count", 1.0, "[]", 1, 0.9, "", [], deleted, OLD, 1)],
    )


def _state(client: Client, sid: str, at: dt.datetime, level: int) -> None:
    client.execute("INSERT INTO alert_states (subscription_id, window_start, level, direction, streak,"
                   " target) VALUES", [(sid, at, level, 1, 0, level)])  # fmt: skip


def _states(client: Client) -> dict[str, list[tuple[dt.datetime, int]]]:
    out: dict[str, list[tuple[dt.datetime, int]]] = {}
    for sid, at, level in client.execute(
        "SELECT subscription_id, window_start, level FROM alert_states FINAL"
        " ORDER BY subscription_id, window_start"
    ):
        out.setdefault(sid, []).append((at, level))
    return out


def _settle(client: Client) -> None:
    """Wait for the DELETE mutations (asynchronous in ClickHouse) to finish."""
    for _ in range(600):
        if client.execute("SELECT count() FROM system.mutations WHERE database = currentDatabase()"
                          " AND NOT is_done")[0][0] == 0:  # fmt: skip
            return
        time.sleep(0.05)
    raise AssertionError("mutations did not finish in 30 s")


def test_old_history_goes_and_live_subscriptions_keep_their_latest_state(db: tuple[Settings, Client]) -> None:
    s, client = db
    _sub(client, "quiet", 0)
    _sub(client, "gone", 1)
    _sub(client, "busy", 0)
    _state(client, "quiet", OLD, 1)
    _state(client, "quiet", OLD + dt.timedelta(minutes=5), 2)  # its latest state, long before the cut-off
    _state(client, "gone", OLD, 3)
    _state(client, "busy", OLD, 1)
    _state(client, "busy", CUT, 0)  # a real state written at the cut-off instant: must not be replaced
    _state(client, "busy", RECENT, 2)
    for eid, at in (("e-old", OLD), ("e-new", RECENT)):
        client.execute(
            "INSERT INTO alert_events (event_id, subscription_id, owner, zone_id, window_start, kind,"
            " level_before, level_after, metric, value, sigma, lo, hi, threshold, probability, created_at)"
            " VALUES", [(eid, "quiet", "o", "z", at, "raised", "normal", "warning", "crowd_count", 1.0, 1.0,
                         0.0, 2.0, 1.0, 0.5, at)],
        )  # fmt: skip
        client.execute(
            "INSERT INTO alert_deliveries (subscription_id, event_id, window_start, status, attempts,"
            " next_at, expires_at, last_status, last_error, version) VALUES",
            [("quiet", eid, at, "delivered", 1, 0.0, 0.0, 200, "", 1)],
        )
    now_ns = int(NOW.timestamp()) * 1_000_000_000
    stale = now_ns - (LEASE_KEEP_S + 60) * 1_000_000_000
    client.execute("INSERT INTO alert_leases (term, holder, claimed_ns) VALUES",
                   [(1, "a", stale), (2, "a", now_ns - 5)])  # fmt: skip

    pool = ClickHousePool(s, size=1)
    try:
        report = enforce_alert_retention(pool, s.release_retention_days, int(NOW.timestamp() * 1000))
        _settle(client)
        again = enforce_alert_retention(pool, s.release_retention_days, int(NOW.timestamp() * 1000))
    finally:
        pool.close()

    assert report.cutoff == CUT
    assert report.state_partitions_dropped == ("202608",)
    assert again.state_partitions_dropped == () and again.events_deleted == 0 and again.leases_deleted == 0
    states = _states(client)
    assert states["quiet"] == [(CUT, 2)]  # carried: the same state before any later window
    assert "gone" not in states  # a deleted subscription needs no state
    assert states["busy"] == [(CUT, 0), (RECENT, 2)]
    assert [r[0] for r in client.execute("SELECT event_id FROM alert_events")] == ["e-new"]
    assert [r[0] for r in client.execute("SELECT event_id FROM alert_deliveries")] == ["e-new"]
    assert [r[0] for r in client.execute("SELECT term FROM alert_leases")] == [2]
