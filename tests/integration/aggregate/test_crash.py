"""Crash and rebalance: ``kill -9`` of ``hexpulse consume`` at random instants, restarts, and a group
scaled 1 → 3 → 1 mid-stream all leave exactly the partials of a fault-free run (close offsets
included): exactly-once aggregates over at-least-once Kafka (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from hexpulse.kafka import ensure_topics
from hexpulse.settings import Settings
from hexpulse.store.scratch import drop_database
from tests.support.aggregate import (
    HEXPULSE,
    Stream,
    agg_settings,
    all_closed,
    env_for,
    expected,
    produce_stream,
    read_horizons,
    read_partials,
    read_rows,
    run_in_process,
)
from tests.support.released import Released, differences, read_released, release_all

pytestmark = pytest.mark.integration


def _started(log: Path) -> int:
    return log.read_text().count('"consumer started"') if log.exists() else 0


def start(s: Settings, log: Path) -> subprocess.Popen[bytes]:
    """A consumer process, returned once it has started (its signal handlers are installed before
    it logs that): a SIGTERM sent earlier would kill it with -15 instead of a clean stop."""
    env = {**env_for(s), "HEXPULSE_LOG_LEVEL": "INFO"}  # "partitions assigned" tells a rebalance
    before = _started(log)
    with log.open("ab") as fh:
        p = subprocess.Popen([HEXPULSE, "consume"], env=env, stdout=fh, stderr=fh)
    deadline = time.monotonic() + 60
    while _started(log) == before and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return p


def assignments(log: Path) -> int:
    return sum('"partitions assigned"' in line for line in log.read_text().splitlines())


def wait_closed(s: Settings, stream: Stream, procs: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not all_closed(s, stream):
        assert time.monotonic() < deadline, "windows were not all closed in time"
        for p in procs:
            assert p.poll() is None, f"a consumer exited early with {p.returncode}"
        time.sleep(0.5)


def stop_all(procs: list[subprocess.Popen[bytes]], s: Settings) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        # SIGTERM: flush, commit, exit 0 within the shutdown deadline (plus interpreter exit).
        assert p.wait(timeout=s.shutdown_timeout_s + 15) == 0


def fault_free(s: Settings, stream: Stream, unique: str) -> tuple[dict, Released]:
    """The partials (close offsets included) and the releases of a fault-free run of ``stream``."""
    ref = agg_settings(
        s, unique + "-ref", state_dir=s.state_dir, consumer_max_poll_records=s.consumer_max_poll_records
    )
    ref = ref.model_copy(update={"topic_pings": s.topic_pings, "topic_dlq": s.topic_dlq + ".ref"})
    ensure_topics(ref, [ref.topic_dlq])  # the broker does not create it on first use
    try:
        # The timeout only guards against a hang (a loaded machine reads 8 records a poll slowly).
        run_in_process(ref, stream, timeout_s=300)
        assert all_closed(ref, stream), "the fault-free reference run did not finish"
        assert release_all(ref) > 0
        return read_rows(ref), read_released(ref)
    finally:
        drop_database(ref)


def check(s: Settings, stream: Stream, unique: str) -> None:
    """Partials exact, and partials and released numbers equal to a fault-free run's. Both runs
    share the master key and key ring, so equal partials must give equal noise (seeds.py)."""
    want, _, _ = expected(s, stream)
    got = read_partials(s)
    assert len(got) == len(want) and got == want
    rows, released = fault_free(s, stream, unique)
    assert read_rows(s) == rows  # close offsets included
    assert release_all(s) > 0  # after the reference's release: it may hold a later window too
    assert differences(read_released(s), released) == []


def kill_rounds(s: Settings, stream: Stream, log: Path, rng: random.Random, rounds: int = 3) -> None:
    """``rounds`` consumers SIGKILLed at random instants after each has written something, then one
    run to the end and stopped cleanly; at least two kills must land mid-stream."""
    kills_mid_stream = 0
    for _ in range(rounds):
        before = read_horizons(s)
        p = start(s, log)
        deadline = time.monotonic() + 60
        while read_horizons(s) == before and time.monotonic() < deadline:
            time.sleep(0.2)  # until this process has written something
        time.sleep(rng.uniform(0.0, 1.5))
        if not all_closed(s, stream):
            kills_mid_stream += 1
        p.kill()  # SIGKILL: no flush, no commit
        p.wait()
    p = start(s, log)
    wait_closed(s, stream, [p], 120)
    stop_all([p], s)
    assert kills_mid_stream >= 2, "no kill landed mid-stream; the test proved nothing"


@pytest.fixture()
def setup(migrated: Settings, unique_name: str, tmp_path: Path, request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    s = agg_settings(
        migrated, unique_name, state_dir=tmp_path, consumer_max_poll_records=8, shutdown_timeout_s=10.0
    )
    devices = getattr(request, "param", 400)
    stream = produce_stream(s, devices=devices, span_s=400, seed=hash(unique_name) % 1000)
    yield s, stream, unique_name, tmp_path
    drop_database(s)


def test_kill9_restart_gives_fault_free_partials(setup) -> None:  # type: ignore[no-untyped-def]
    s, stream, unique, tmp = setup
    kill_rounds(s, stream, tmp / "consume.log", random.Random(7))
    check(s, stream, unique)


# A longer stream: the group takes ~6 s to rebalance to three members, which must happen mid-stream.
@pytest.mark.parametrize("setup", [1500], indirect=True)
def test_scale_1_3_1_gives_fault_free_partials(setup) -> None:  # type: ignore[no-untyped-def]
    s, stream, unique, tmp = setup
    log = tmp / "consume.log"
    first = start(s, log)
    deadline = time.monotonic() + 60
    while not read_horizons(s) and time.monotonic() < deadline:
        time.sleep(0.2)  # the single consumer is under way
    before = assignments(log)
    extra = [start(s, log), start(s, log)]
    deadline = time.monotonic() + 60
    while assignments(log) < before + 3 and time.monotonic() < deadline:
        time.sleep(0.1)  # until the group has rebalanced to three members
    time.sleep(0.5)  # and they consume for a moment
    mid = not all_closed(s, stream)
    stop_all(extra, s)
    wait_closed(s, stream, [first], 120)
    stop_all([first], s)
    assert mid, "the scale-down happened after the stream was consumed; the test proved nothing"
    check(s, stream, unique)
