"""The rebalance stall of issue #15 and the watchdog behind its fix.

- A leader's rebalance round that kafka-python 3.0.12 used to abandon halfway (stale assignment
  snapshot, SyncGroup slower than a poll) now completes: the consumer finishes the stream.
- A consumer whose Kafka client wedges mid-stream anyway (a rejoin that never completes; a poll
  that never returns) is ended by the no-progress watchdog with status 75; the restart its
  supervisor makes (here: the test) finishes the stream.
Either way the partials, close offsets included, are those of a fault-free run
(aggregate/watchdog.py, aggregate/kafka/client.py ``hold_rejoin``, RELIABILITY.md)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from aggregate.watchdog import STALL_EXIT_CODE
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
from tests.support.paths import REPO

pytestmark = pytest.mark.integration
STALL_S = 6.0


def _setup(migrated: Settings, unique: str, tmp: Path) -> Settings:
    return agg_settings(
        migrated,
        unique,
        state_dir=tmp,
        consumer_max_poll_records=8,  # slow enough that the fault lands mid-stream
        shutdown_timeout_s=5.0,
        consumer_stall_timeout_s=STALL_S,
    )


def _same_as_fault_free(s: Settings, stream: Stream, unique: str, tmp: Path) -> None:
    want, _, _ = expected(s, stream)
    got = read_partials(s)
    assert len(got) == len(want) and got == want
    ref = agg_settings(
        s, unique + "-ref", state_dir=tmp, consumer_max_poll_records=s.consumer_max_poll_records
    )
    try:
        ref = ref.model_copy(update={"topic_pings": s.topic_pings})
        run_in_process(ref, stream, timeout_s=300)  # a hang guard, not a speed check
        assert all_closed(ref, stream), "the fault-free reference run did not finish"
        assert read_rows(s) == read_rows(ref)  # close offsets included
    finally:
        drop_database(ref)


def test_a_rebalance_round_kafka_python_abandoned_now_completes(
    migrated: Settings, unique_name: str, tmp_path: Path
) -> None:
    s = _setup(migrated, unique_name, tmp_path)
    try:
        stream = produce_stream(s, devices=150, span_s=300, seed=43)
        log = tmp_path / "consume.log"
        env = {**env_for(s), "HEXPULSE_LOG_LEVEL": "INFO"}
        with log.open("ab") as fh:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.support.wedge", "stale", "400"],
                env=env,
                cwd=REPO,
                stdout=fh,
                stderr=fh,
            )
        deadline = time.monotonic() + 180
        while not all_closed(s, stream):
            assert time.monotonic() < deadline, "the consumer did not finish"
            assert proc.poll() is None, f"exited with {proc.returncode}: {log.read_text()[-1500:]}"
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=s.shutdown_timeout_s + 15) == 0
        text = log.read_text()
        assert "wedge struck" in text, "the stale round came after the stream was consumed"
        after = text[text.index("wedge struck") :]
        assert '"partitions assigned"' in after  # the abandoned round's assignment arrived
        assert not _stall_lines(log)
        _same_as_fault_free(s, stream, unique_name, tmp_path)
    finally:
        drop_database(s)


def _stall_lines(log: Path) -> list[dict[str, object]]:
    out = []
    for line in log.read_bytes().splitlines():
        if b'"consumer stalled; exiting"' in line:
            out.append(orjson.loads(line))
    return out


@pytest.mark.parametrize("mode", ["join", "block"])
def test_wedged_consumer_exits_and_its_restart_gives_fault_free_partials(
    migrated: Settings, unique_name: str, tmp_path: Path, mode: str
) -> None:
    s = _setup(migrated, unique_name, tmp_path)
    try:
        stream = produce_stream(s, devices=150, span_s=300, seed=41)
        log = tmp_path / "consume.log"
        env = {**env_for(s), "HEXPULSE_LOG_LEVEL": "INFO"}
        with log.open("ab") as fh:
            wedged = subprocess.Popen(
                [sys.executable, "-m", "tests.support.wedge", mode, "400"],
                env=env,
                cwd=REPO,
                stdout=fh,
                stderr=fh,
            )
        # A hang guard, not a speed check: the watchdog fires STALL_S after the wedge.
        code = wedged.wait(timeout=180)
        assert code == STALL_EXIT_CODE, log.read_text()[-2000:]
        assert b"wedge struck" in log.read_bytes()
        assert not all_closed(s, stream), "the stream was consumed before the wedge; the test proved nothing"
        stalls = _stall_lines(log)
        assert len(stalls) == 1
        if mode == "join":  # the loop saw it: its reason names what was owed
            assert stalls[0]["reason"] == "no progress while work is owed"
            assert "waiting for a partition assignment" in stalls[0]["owed"]  # type: ignore[operator]
        else:  # only the guard thread could: the loop was stuck inside poll()
            assert stalls[0]["reason"] == "consume loop stuck inside one call"
        assert stalls[0]["quiet_s"] >= STALL_S  # type: ignore[operator]
        stuck_at = read_horizons(s)

        # The supervisor's restart: an unwedged consumer of the same group finishes the stream. It
        # waits for its assignment until the broker drops the dead member (the 10 s session timeout),
        # longer than the wedged one's short STALL_S: its own watchdog gets the deployed scale of time.
        restart_env = {**env, "HEXPULSE_CONSUMER_STALL_TIMEOUT_S": "60"}
        with log.open("ab") as fh:
            restarted = subprocess.Popen([HEXPULSE, "consume"], env=restart_env, stdout=fh, stderr=fh)
        deadline = time.monotonic() + 180
        while not all_closed(s, stream):
            assert time.monotonic() < deadline, "the restarted consumer did not finish"
            assert restarted.poll() is None, f"the restarted consumer exited with {restarted.returncode}"
            time.sleep(0.5)
        assert read_horizons(s) != stuck_at
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=s.shutdown_timeout_s + 15) == 0

        _same_as_fault_free(s, stream, unique_name, tmp_path)
    finally:
        drop_database(s)
