"""Alerts under faults: ``hexpulse alerts`` (evaluator and delivery worker, one process) SIGKILLed at
random instants while windows are being released, and webhook receivers that flap (a seeded share
of requests answered 503, in bursts). Every event of a fault-free evaluation is stored once and
delivered to its subscriber; a receiver that keeps the ids it has seen (``webhook-id``, Standard
Webhooks) sees each event once, in order.

``FAULTS_ALERT_KILL_ROUNDS`` kills in ``make faults`` (default 8); ``make test`` runs 2.
tests/integration/alerts/test_webhooks.py has one kill, a receiver down then up and expiry."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from alerts.levels import State, step
from alerts.signing import new_secret
from hexpulse.settings import Settings
from hexpulse.store import connect
from tests.integration.alerts.support import SIGMA, Receiver, Stadium, stadium_truth, wait_for
from tests.integration.alerts.test_webhooks import RULE, N, alerts_env, alerts_settings, subscribe
from tests.support.figures import FULL, record_figure
from tests.support.release import recent_window

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROUNDS = int(os.environ.get("FAULTS_ALERT_KILL_ROUNDS", "8")) if FULL else 2
SUBSCRIBERS = 3
CMD = [sys.executable, "-c", "from hexpulse.cli import main; main()", "alerts"]
__all__ = ["alerts_settings"]  # the fixture, shared with the webhook tests


class Flapping:
    """A receiver's health: down (503) for 0.3–2 s, up for 0.3–1.5 s, alternating (seeded)."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._down = True
        self._until = time.monotonic() + self._rng.uniform(0.3, 2.0)

    def __call__(self) -> bool:
        with self._lock:
            now = time.monotonic()
            while now >= self._until:
                self._down = not self._down
                self._until += self._rng.uniform(0.3, 2.0) if self._down else self._rng.uniform(0.3, 1.5)
            return self._down


def fault_free(stadium: Stadium) -> list[tuple[int, str, str]]:
    """(window start s, kind, level after) of every event, from the rule stepped over the published
    estimates in order: what one evaluator that never fails decides."""
    names = ["normal", *(lv.name for lv in RULE.levels)]
    state, out = State(), []
    for k, est in enumerate(stadium.estimates):
        state, change = step(RULE, state, est, SIGMA)
        if change is not None:
            out.append((stadium.w0 + 60 * k, change.kind, names[change.after]))
    return out


def stored(s: Settings, sub_id: str) -> list[tuple[int, str, str]]:
    """The subscription's stored events (every part, not only merged rows), by event id."""
    client = connect(s)
    try:
        rows = client.execute(
            "SELECT event_id, toUInt32(any(window_start)) AS w, any(kind), any(level_after), "
            f"uniqExact(window_start, kind, level_after) FROM {s.clickhouse_database}.alert_events "
            "WHERE subscription_id = %(s)s GROUP BY event_id ORDER BY w",
            {"s": sub_id},
        )
    finally:
        client.disconnect()
    assert all(versions == 1 for *_, versions in rows)  # an id never names two different events
    return [(int(w), str(k), str(lv)) for _, w, k, lv, _ in rows]


def first_arrivals(rx: Receiver) -> list[tuple[str, str]]:
    seen: dict[str, tuple[str, str]] = {}
    with rx.lock:
        for msg in rx.accepted:
            seen.setdefault(msg["data"]["id"], (msg["data"]["kind"], msg["data"]["level_after"]))
    return list(seen.values())


def test_alerts_killed_at_random_with_flapping_receivers(alerts_settings: Settings, tmp_path: Path) -> None:
    s = alerts_settings
    stadium = Stadium(s, recent_window(hours_ago=1.0), stadium_truth(N))
    want = fault_free(stadium)
    assert len(want) >= 4  # the curve crosses both levels up and down
    secrets = [new_secret() for _ in range(SUBSCRIBERS)]
    receivers = [Receiver(sec, fail=Flapping(100 + i)) for i, sec in enumerate(secrets)]
    subs = [subscribe(s, rx.url, sec) for rx, sec in zip(receivers, secrets, strict=True)]
    env = alerts_env(s)
    rng = random.Random(20261201)
    cuts = sorted(rng.sample(range(1, N), ROUNDS))  # windows published before each kill
    log = (tmp_path / "alerts.log").open("ab")
    proc: subprocess.Popen[bytes] | None = None
    started = time.monotonic()
    try:
        for cut in cuts:
            proc = subprocess.Popen(CMD, env=env, stdout=log, stderr=log)  # noqa: S603 (our own command)
            stadium.publish(cut)
            time.sleep(rng.uniform(0.5, 3.0))  # evaluating, delivering or retrying: any instant
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        proc = subprocess.Popen(CMD, env=env, stdout=log, stderr=log)  # noqa: S603
        stadium.publish(N)
        expected = [(k, lv) for _, k, lv in want]
        assert wait_for(lambda: all(first_arrivals(rx) == expected for rx in receivers), 180), [
            first_arrivals(rx) for rx in receivers
        ]
        elapsed = time.monotonic() - started
        time.sleep(2.0)  # nothing more may arrive
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(20)
        for rx in receivers:
            rx.close()
        log.close()
    for sub_id, rx in zip(subs, receivers, strict=True):
        assert stored(s, sub_id) == want  # no event lost, none stored twice under another id
        assert first_arrivals(rx) == [(k, lv) for _, k, lv in want]
        assert rx.bad_signatures == 0
    repeats = sum(len(rx.ids) - len(set(rx.ids)) for rx in receivers)
    refused = sum(rx.refused for rx in receivers)
    # A repeat needs a kill between a receiver's 2xx and the worker recording it: at most one a kill.
    assert repeats <= ROUNDS * SUBSCRIBERS, repeats
    if FULL:
        record_figure("alert_faults", "SIGKILL rounds of hexpulse alerts", ROUNDS, "rounds")
        delivered = SUBSCRIBERS * len(want)
        record_figure("alert_faults", "events delivered (subscribers × events)", delivered, "events")
        record_figure("alert_faults", "503 answers of the flapping receivers", refused, "requests")
        record_figure("alert_faults", "repeated deliveries of an id (receiver dedupes)", repeats, "requests")
        record_figure("alert_faults", "time to every event delivered", round(elapsed, 1), "s")
