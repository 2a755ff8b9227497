"""Broker kill -9 and restart mid-stream: two consumers keep running through the outage, resume on
the restarted broker (same data folder, same ports) and leave exactly the partials of a fault-free
run, close offsets included: nothing lost, nothing counted twice (DESIGN-NOTES invariant 1).

Only a broker that keeps its log across a restart can be tested this way; the broker is a
private one (tests/support/kafka_broker.py), never the shared one.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from hexpulse.settings import Settings
from hexpulse.store.scratch import drop_database
from tests.support.aggregate import (
    HEXPULSE,
    agg_settings,
    all_closed,
    env_for,
    expected,
    free_port,
    produce_stream,
    read_horizons,
    read_partials,
    read_rows,
    run_in_process,
)
from tests.support.kafka_broker import PrivateKafka

pytestmark = pytest.mark.integration


def _start(s: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = {**env_for(s), "HEXPULSE_METRICS_PORT": str(free_port())}
    with log.open("ab") as fh:
        return subprocess.Popen([HEXPULSE, "consume"], env=env, stdout=fh, stderr=fh)


def test_broker_kill9_restart_mid_stream_gives_fault_free_partials(
    migrated: Settings, unique_name: str, tmp_path: Path
) -> None:
    broker = PrivateKafka(tmp_path / "kafka-state")
    broker.start()
    procs: list[subprocess.Popen[bytes]] = []
    s = migrated
    ref = None
    try:
        s = agg_settings(
            migrated.model_copy(update={"kafka_bootstrap": broker.bootstrap}),
            unique_name,
            state_dir=tmp_path,
            consumer_max_poll_records=8,  # slow enough that the kill lands mid-stream
            shutdown_timeout_s=10.0,
        )
        stream = produce_stream(s, devices=400, span_s=400, seed=31)
        log = tmp_path / "consume.log"
        procs = [_start(s, log), _start(s, log)]
        deadline = time.monotonic() + 90
        while not read_horizons(s):
            assert time.monotonic() < deadline, "the consumers wrote nothing before the kill"
            time.sleep(0.2)
        broker.kill9()
        assert not all_closed(s, stream), "the stream was consumed before the kill; the test proved nothing"
        killed_at = read_horizons(s)
        time.sleep(8.0)  # longer than a few fetch, commit and heartbeat rounds
        assert all(p.poll() is None for p in procs), "a consumer exited while the broker was down"
        broker.start()
        deadline = time.monotonic() + 180
        while not all_closed(s, stream):
            assert time.monotonic() < deadline, "the consumers did not finish after the broker came back"
            assert all(p.poll() is None for p in procs), "a consumer exited after the broker came back"
            time.sleep(0.5)
        assert read_horizons(s) != killed_at
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(timeout=s.shutdown_timeout_s + 15) == 0
        procs = []

        want, _, _ = expected(s, stream)
        got = read_partials(s)
        assert len(got) == len(want) and got == want

        # The same offsets consumed in one process without any fault write the same rows.
        ref = agg_settings(
            s, unique_name + "-ref", state_dir=tmp_path, consumer_max_poll_records=s.consumer_max_poll_records
        )
        ref = ref.model_copy(update={"topic_pings": s.topic_pings})
        run_in_process(ref, stream, timeout_s=300)  # a hang guard, not a speed check
        assert all_closed(ref, stream), "the fault-free reference run did not finish"
        assert read_rows(s) == read_rows(ref)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        broker.stop()
        drop_database(s)
        if ref is not None:
            drop_database(ref)
