"""A Kafka broker killed with SIGKILL mid-stream and restarted (same data folder, same ports) while
two ``hexpulse consume`` processes keep running: the body of the CI-sized test
(tests/integration/aggregate/test_broker_restart.py) and the full-size one of ``make faults``
(tests/faults/test_broker_kill.py). The broker is always a private one, never the shared one."""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

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


@dataclass(frozen=True)
class BrokerKill:
    """What one run measured: sizes, the outage, and how long the consumers took afterwards."""

    messages: int
    pings: int
    partial_rows: int
    down_s: float
    finished_after_restart_s: float
    consumer_peak_rss_mib: float


def _start(s: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = {**env_for(s), "HEXPULSE_METRICS_PORT": str(free_port())}
    with log.open("ab") as fh:
        return subprocess.Popen([HEXPULSE, "consume"], env=env, stdout=fh, stderr=fh)


def kill_broker_mid_stream(
    migrated: Settings, name: str, tmp_path: Path, *, devices: int, span_s: int, down_s: float
) -> BrokerKill:
    """Run the scenario and assert its promises: no consumer exits while the broker is down or after
    it returns; afterwards the partials (close offsets included) are exactly the expected ones and
    the rows equal a fault-free consumer's over the same offsets. Returns the figures."""
    broker = PrivateKafka(tmp_path / "kafka-state")
    broker.start()
    procs: list[subprocess.Popen[bytes]] = []
    s = migrated
    ref = None
    try:
        s = agg_settings(
            migrated.model_copy(update={"kafka_bootstrap": broker.bootstrap}),
            name,
            state_dir=tmp_path,
            consumer_max_poll_records=8,  # slow enough that the kill lands mid-stream
            shutdown_timeout_s=10.0,
        )
        stream = produce_stream(s, devices=devices, span_s=span_s, seed=31)
        log = tmp_path / "consume.log"
        procs = [_start(s, log), _start(s, log)]
        watched = [psutil.Process(p.pid) for p in procs]
        peak = 0

        def sample() -> None:
            nonlocal peak
            peak = max(peak, sum(w.memory_info().rss for w in watched))

        deadline = time.monotonic() + 90
        while not read_horizons(s):
            assert time.monotonic() < deadline, "the consumers wrote nothing before the kill"
            time.sleep(0.2)
        broker.kill9()
        down_at = time.monotonic()
        assert not all_closed(s, stream), "the stream was consumed before the kill; the test proved nothing"
        killed_at = read_horizons(s)
        while time.monotonic() - down_at < down_s:  # longer than a few fetch, commit and heartbeat rounds
            assert all(p.poll() is None for p in procs), "a consumer exited while the broker was down"
            sample()
            time.sleep(0.5)
        broker.start()
        back_at = time.monotonic()
        deadline = back_at + 180 + devices * span_s / 5_000  # a hang guard, not a speed check
        while not all_closed(s, stream):
            assert time.monotonic() < deadline, "the consumers did not finish after the broker came back"
            assert all(p.poll() is None for p in procs), "a consumer exited after the broker came back"
            sample()
            time.sleep(0.5)
        finished = time.monotonic() - back_at
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
            s, name + "-ref", state_dir=tmp_path, consumer_max_poll_records=s.consumer_max_poll_records
        )
        ref = ref.model_copy(update={"topic_pings": s.topic_pings})
        run_in_process(ref, stream, timeout_s=300 + devices * span_s / 2_000)  # a hang guard
        assert all_closed(ref, stream), "the fault-free reference run did not finish"
        assert read_rows(s) == read_rows(ref)
        return BrokerKill(
            messages=stream.messages, pings=stream.pings_in, partial_rows=len(got), down_s=down_s,
            finished_after_restart_s=round(finished, 1), consumer_peak_rss_mib=round(peak / 2**20, 1),
        )  # fmt: skip
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        broker.stop()
        drop_database(s)
        if ref is not None:
            drop_database(ref)
