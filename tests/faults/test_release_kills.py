"""The releaser killed (SIGKILL) at random instants and restarted, alone, until every window is
public: no window released twice, none skipped, no noise re-drawn, and the released numbers are
exactly those of a fault-free releaser over the same partials with the same master key and key ring
(noise is keyed per window and exact input, privacy/release/seeds.py).

``FAULTS_RELEASE_KILL_ROUNDS`` kills over 30 windows in ``make faults`` (default 10); ``make test``
runs 3 over 10 windows.
tests/integration/privacy/release/test_noise_once.py covers a crash after *each* statement and
two releasers at once; this is the process-level run compared with a fault-free release."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from clickhouse_driver import Client

from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.scratch import scratch_database
from privacy.release.releaser import Releaser
from tests.support.figures import FULL, record_figure
from tests.support.release import (
    RELEASE_CMD,
    complete,
    double_draws,
    double_values,
    insert_partials,
    recent_window,
    release_env,
    release_settings,
)
from tests.support.released import differences, read_released, release_all

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROUNDS = int(os.environ.get("FAULTS_RELEASE_KILL_ROUNDS", "10")) if FULL else 3
WINDOWS = 30 if FULL else 10


def _published(client: Client, db: str) -> int:
    ((n,),) = client.execute(f"SELECT count() FROM {db}.release_windows FINAL")
    return int(n)


def _seed(s: Settings, windows: list[int]) -> None:
    client = connect(s)
    try:
        insert_partials(client, s, windows, Releaser(s, client=client).tree.cells[0], seed=29)
        complete(client, s, windows[-1] + 60)
    finally:
        client.disconnect()


def test_release_kills_publish_the_fault_free_release(
    migrated: Settings, unique_name: str, tmp_path: Path
) -> None:
    ring = tmp_path / "keyring.bin"
    base = f"{migrated.clickhouse_database}_rk{unique_name[-6:]}"
    first = recent_window(2.0)
    windows = [first + 60 * i for i in range(WINDOWS)]
    with (
        scratch_database(release_settings(migrated, base, ring)) as s,
        scratch_database(release_settings(migrated, base + "_ref", ring)) as ref,
    ):
        _seed(s, windows)
        _seed(ref, windows)
        client = connect(s)
        db = s.clickhouse_database
        rng = random.Random(20261201)
        env = release_env(s)
        mid_run = 0
        started = time.monotonic()
        for _ in range(ROUNDS):
            before = _published(client, db)
            p = subprocess.Popen(RELEASE_CMD, env=env)
            deadline = time.monotonic() + 60
            while _published(client, db) == before < len(windows) and time.monotonic() < deadline:
                time.sleep(0.05)  # until this process has published a window
            time.sleep(rng.uniform(0.0, 0.5))
            p.send_signal(signal.SIGKILL)  # no cleanup: a claim, a ledger row or cells may be half-done
            p.wait(timeout=30)
            if _published(client, db) < len(windows):
                mid_run += 1
        p = subprocess.Popen([*RELEASE_CMD[:2], "--once"], env=env)
        assert p.wait(timeout=300) == 0
        elapsed = time.monotonic() - started
        assert _published(client, db) == len(windows), "a window was skipped"
        assert double_values(client, db) == []  # no window's value released twice
        assert double_draws(client, db) == []  # no noise re-drawn
        ((claims,),) = client.execute(f"SELECT uniqExact(releaser) FROM {db}.release_intents")
        assert release_all(ref) == len(windows)
        assert differences(read_released(s), read_released(ref)) == []
        assert mid_run >= ROUNDS * 2 // 3, f"only {mid_run} of {ROUNDS} kills landed before the end"
        client.disconnect()
    if FULL:
        record_figure("release_kills", "SIGKILL rounds landing mid-run", mid_run, "rounds")
        record_figure("release_kills", "releaser processes that claimed windows", int(claims), "processes")
        record_figure("release_kills", f"time to release {WINDOWS} windows", round(elapsed, 1), "s")
