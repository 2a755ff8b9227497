"""Alerts end to end against the real ClickHouse and a real HTTP receiver, on a stadium crowd curve
published window by window: levels in order, each event once by id, signatures valid, transitions
within min_windows of the ground-truth crossings; a receiver down then up loses nothing; an
evaluator killed (SIGKILL) mid-stream and restarted loses and repeats no event."""

from __future__ import annotations

import calendar
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from alerts import events as alert_events
from alerts.levels import Level, Rule
from alerts.service import AlertsService
from alerts.signing import new_secret
from alerts.subscriptions import SubscriptionStore
from hexpulse.settings import Settings
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import scratch_database
from tests.integration.alerts.support import (
    CRITICAL,
    WARNING,
    ZONE,
    Receiver,
    Stadium,
    stadium_truth,
    wait_for,
)
from tests.support.clickhouse_users import allow_api
from tests.support.release import recent_window

pytestmark = pytest.mark.integration

N = 40
MIN_WINDOWS = 2
RULE = Rule((Level("warning", WARNING, WARNING * 0.8), Level("critical", CRITICAL, CRITICAL * 0.8)),
            min_windows=MIN_WINDOWS, confidence=0.9)  # fmt: skip
EXPECTED = [("raised", "warning"), ("raised", "critical"), ("lowered", "warning"), ("cleared", "normal")]


@pytest.fixture()
def alerts_settings(migrated: Settings) -> Iterator[Settings]:
    tag = uuid.uuid4().hex[:6]
    with scratch_database(migrated, clickhouse_database=f"{migrated.clickhouse_database}_al{tag}",
                          alerts_allow_networks=("127.0.0.0/8",), alerts_poll_s=0.2,
                          alerts_lease_term_s=2.0, alerts_metrics_port=0) as s:  # fmt: skip
        allow_api(s)
        yield s


def subscribe(s: Settings, url: str, secret: str) -> str:
    pool = ClickHousePool(s, size=1)
    try:
        return SubscriptionStore(pool).create("owner-a", "stadium gates", ZONE, "crowd_count", 1.0, RULE, url,
                                              (secret,)).subscription_id  # fmt: skip
    finally:
        pool.close()


def expected_windows(stadium: Stadium) -> list[int]:
    """Window indexes of the ground-truth crossings, in EXPECTED's order."""
    t = stadium.truth
    up1 = next(k for k in range(N) if t[k] > WARNING)
    up2 = next(k for k in range(N) if t[k] > CRITICAL)
    down2 = next(k for k in range(up2, N) if t[k] < CRITICAL * 0.8)
    down1 = next(k for k in range(down2, N) if t[k] < WARNING * 0.8)
    return [up1, up2, down2, down1]


def check_events(stadium: Stadium, rx: Receiver) -> None:
    got = [(m["data"]["kind"], m["data"]["level_after"]) for m in rx.accepted]
    assert got == EXPECTED
    assert len(set(rx.ids)) == len(rx.ids) == 4  # each event exactly once by id
    assert rx.bad_signatures == 0
    for msg, k in zip(rx.accepted, expected_windows(stadium), strict=True):
        start = calendar.timegm(time.strptime(msg["data"]["window_start"], "%Y-%m-%dT%H:%M:%SZ"))
        index = (start - stadium.w0) // 60
        assert k <= index <= k + MIN_WINDOWS, (msg["data"], k)  # within min_windows of the true crossing
        assert 0.0 <= msg["data"]["probability"] <= 1.0 and msg["data"]["sigma"] > 0


def run_service(s: Settings, holder: str) -> tuple[AlertsService, threading.Event, threading.Thread]:
    svc = AlertsService(s, holder=holder)
    stop = threading.Event()
    thread = threading.Thread(target=svc.run, args=(stop,), daemon=True)
    thread.start()
    return svc, stop, thread


def test_stadium_levels_arrive_in_order_once_and_signed(alerts_settings: Settings) -> None:
    secret = new_secret()
    rx = Receiver(secret)
    stadium = Stadium(alerts_settings, recent_window(hours_ago=1.0), stadium_truth(N))
    subscribe(alerts_settings, rx.url, secret)
    svc, stop, thread = run_service(alerts_settings, "a")
    try:
        for k in range(0, N, 5):
            stadium.publish(k + 5)
            time.sleep(0.3)
        assert wait_for(lambda: len(rx.accepted) >= 4, 60), rx.accepted
        time.sleep(1.0)  # nothing more may arrive
        check_events(stadium, rx)
    finally:
        stop.set()
        thread.join(30)
        rx.close()


def test_receiver_down_then_up_gets_every_event_once(alerts_settings: Settings) -> None:
    secret = new_secret()
    up_at = time.monotonic() + 1e9
    rx = Receiver(secret, fail=lambda: time.monotonic() < up_at)
    stadium = Stadium(alerts_settings, recent_window(hours_ago=1.0), stadium_truth(N))
    subscribe(alerts_settings, rx.url, secret)
    svc, stop, thread = run_service(alerts_settings, "b")
    try:
        stadium.publish(N)
        assert wait_for(lambda: rx.refused >= 3, 60)
        assert rx.accepted == []
        up_at = time.monotonic()
        assert wait_for(lambda: len(rx.accepted) >= 4, 90), rx.accepted
        time.sleep(1.0)
        check_events(stadium, rx)
    finally:
        stop.set()
        thread.join(30)
        rx.close()


def alerts_env(s: Settings) -> dict[str, Any]:
    env = dict(os.environ)
    env.update(
        HEXPULSE_CLICKHOUSE_DATABASE=s.clickhouse_database, HEXPULSE_CLICKHOUSE_HOST=s.clickhouse_host,
        HEXPULSE_CLICKHOUSE_PORT=str(s.clickhouse_port), HEXPULSE_API_CLICKHOUSE_USER=s.api_clickhouse_user,
        HEXPULSE_API_CLICKHOUSE_PASSWORD=s.api_clickhouse_password.get_secret_value(),
        HEXPULSE_ALERTS_ALLOW_NETWORKS="127.0.0.0/8", HEXPULSE_ALERTS_POLL_S="0.2",
        HEXPULSE_ALERTS_LEASE_TERM_S="2", HEXPULSE_ALERTS_METRICS_PORT="0", HEXPULSE_LOG_LEVEL="WARNING",
    )  # fmt: skip
    return env


def test_evaluator_killed_mid_stream_loses_and_repeats_nothing(alerts_settings: Settings) -> None:
    secret = new_secret()
    rx = Receiver(secret)
    stadium = Stadium(alerts_settings, recent_window(hours_ago=1.0), stadium_truth(N))
    subscribe(alerts_settings, rx.url, secret)
    cmd = [sys.executable, "-c", "from hexpulse.cli import main; main()", "alerts"]
    env = alerts_env(alerts_settings)
    first = subprocess.Popen(cmd, env=env)  # noqa: S603 (our own command)
    second: subprocess.Popen[bytes] | None = None
    try:
        stadium.publish(N // 2)  # the rise: warning and critical
        assert wait_for(lambda: len(rx.accepted) >= 2, 60), rx.accepted
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        stadium.publish(N)
        second = subprocess.Popen(cmd, env=env)  # noqa: S603
        assert wait_for(lambda: len(rx.accepted) >= 4, 90), rx.accepted
        time.sleep(1.0)
        check_events(stadium, rx)
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.terminate()
                p.wait(20)
        rx.close()


def test_an_endpoint_failing_past_expiry_is_dead_lettered_and_the_stream_resumes(migrated: Settings) -> None:
    tag = uuid.uuid4().hex[:6]
    with scratch_database(migrated, clickhouse_database=f"{migrated.clickhouse_database}_ad{tag}",
                          alerts_allow_networks=("127.0.0.0/8",), alerts_poll_s=0.2, alerts_lease_term_s=2.0,
                          alerts_metrics_port=0, alerts_expiry_s=10.0) as s:  # fmt: skip
        allow_api(s)
        secret = new_secret()
        rx = Receiver(secret, fail=lambda: True)
        stadium = Stadium(s, recent_window(hours_ago=1.0), stadium_truth(N))
        subscribe(s, rx.url, secret)
        svc, stop, thread = run_service(s, "d")
        pool = ClickHousePool(s, size=1)
        try:
            stadium.publish(N)
            assert wait_for(lambda: len(alert_events.deliveries(pool, "owner-a", "dead", 10)) == 4, 60)
            dead = alert_events.deliveries(pool, "owner-a", "dead", 10)
            # The first event was retried until it expired; the later ones waited behind it (order)
            # and expired at their first failure.
            assert all(d["attempts"] >= 1 and d["last_status"] == 503 for d in dead), dead
            assert max(d["attempts"] for d in dead) >= 3, dead
            assert rx.accepted == []
            # The stream's position: resuming after each event yields exactly the ones after it.
            every = alert_events.after(pool, "owner-a", None, stadium.w0 - 60)
            assert [(e["kind"], e["level_after"]) for e in every] == EXPECTED
            for i, e in enumerate(every):
                assert [x["id"] for x in alert_events.after(pool, "owner-a", e["id"], 0)] == [
                    x["id"] for x in every[i + 1:]]  # fmt: skip
            assert alert_events.after(pool, "owner-b", None, 0) == []
        finally:
            stop.set()
            thread.join(30)
            pool.close()
            rx.close()
