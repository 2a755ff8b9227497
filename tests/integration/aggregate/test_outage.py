"""ClickHouse down for 30+ s mid-stream (a private server; the shared one is never stopped): the
consumer pauses its partitions instead of buffering, keeps its group membership, resumes when
ClickHouse is back, and the partials are exactly the fault-free ones."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import orjson
import psutil
import pytest

from hexpulse.settings import Settings
from tests.support.aggregate import (
    HEXPULSE,
    PrivateClickHouse,
    agg_settings,
    all_closed,
    env_for,
    expected,
    free_port,
    produce_stream,
    read_horizons,
    read_partials,
    scrape,
)

pytestmark = pytest.mark.integration
OUTAGE_S = 32.0


def test_clickhouse_outage_pauses_and_loses_nothing(
    migrated: Settings, unique_name: str, tmp_path: Path
) -> None:
    ch = PrivateClickHouse(tmp_path / "ch")
    ch.start()
    proc: subprocess.Popen[bytes] | None = None
    try:
        s = agg_settings(
            migrated,
            unique_name,
            state_dir=tmp_path,
            clickhouse_port=ch.port,
            consumer_max_poll_records=8,
            sink_retry_max_s=2.0,
            metrics_port=free_port(),
        )
        stream = produce_stream(s, devices=400, span_s=400, seed=5)
        with (tmp_path / "consume.log").open("ab") as log:
            proc = subprocess.Popen([HEXPULSE, "consume"], env=env_for(s), stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        while not read_horizons(s):
            assert time.monotonic() < deadline, "the consumer wrote nothing"
            time.sleep(0.1)
        assert not all_closed(s, stream), "the stream was consumed before the outage"
        ch.stop()
        down_at = time.monotonic()
        time.sleep(6.0)
        first = scrape(s.metrics_port)
        rss_first = psutil.Process(proc.pid).memory_info().rss
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        last = scrape(s.metrics_port)
        rss_last = psutil.Process(proc.pid).memory_info().rss
        assert proc.poll() is None, "the consumer died while ClickHouse was down"
        assert first["hexpulse_aggregate_paused"] == 1.0 and last["hexpulse_aggregate_paused"] == 1.0
        # Paused partitions fetch nothing: the open-window buffer does not grow during the outage.
        assert last["hexpulse_aggregate_buffered_pings"] == first["hexpulse_aggregate_buffered_pings"]
        assert rss_last - rss_first < 20 * 2**20
        assert (
            last["hexpulse_aggregate_sink_failures_total"] > first["hexpulse_aggregate_sink_failures_total"]
        )
        ch.start()
        deadline = time.monotonic() + 90
        while not all_closed(s, stream):
            assert time.monotonic() < deadline, "windows were not all closed after ClickHouse returned"
            assert proc.poll() is None
            time.sleep(0.5)
        assert scrape(s.metrics_port)["hexpulse_aggregate_paused"] == 0.0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=s.shutdown_timeout_s + 15) == 0
        proc = None
        want, _, _ = expected(s, stream)
        assert read_partials(s) == want
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        ch.stop()


def _assigned(log: Path) -> list[list[int]]:
    """The partition lists of every "partitions assigned" line of a consumer log, in order."""
    out = []
    for line in log.read_bytes().splitlines():
        if b'"partitions assigned"' in line:
            out.append(orjson.loads(line)["partitions"])
    return out


def test_a_rebalance_during_the_outage_does_not_leave_partitions_paused(
    migrated: Settings, unique_name: str, tmp_path: Path
) -> None:
    """EAGER rebalances revoke everything, and with it every pending write; the pause used to be
    lifted only by a successful write, so after a rebalance during an outage it never was."""
    ch = PrivateClickHouse(tmp_path / "ch")
    ch.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        s = agg_settings(
            migrated,
            unique_name,
            state_dir=tmp_path,
            clickhouse_port=ch.port,
            consumer_max_poll_records=8,
            sink_retry_max_s=2.0,
            metrics_port=free_port(),
            shutdown_timeout_s=5.0,
            consumer_stall_timeout_s=0.0,  # the watchdog would hide the stall this test is about
        )
        stream = produce_stream(s, devices=400, span_s=400, seed=6)
        first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
        env = {**env_for(s), "HEXPULSE_LOG_LEVEL": "INFO"}
        with first_log.open("ab") as fh:
            procs.append(subprocess.Popen([HEXPULSE, "consume"], env=env, stdout=fh, stderr=fh))
        deadline = time.monotonic() + 60
        while not read_horizons(s):
            assert time.monotonic() < deadline, "the consumer wrote nothing"
            time.sleep(0.1)
        assert not all_closed(s, stream), "the stream was consumed before the outage"
        ch.stop()
        deadline = time.monotonic() + 60
        while scrape(s.metrics_port)["hexpulse_aggregate_paused"] != 1.0:
            assert time.monotonic() < deadline, "the consumer did not pause for the outage"
            time.sleep(0.2)
        rounds = len(_assigned(first_log))
        # A second member joins (every partition of the first is revoked) and leaves again.
        with second_log.open("ab") as fh:
            second_env = {**env, "HEXPULSE_METRICS_PORT": str(free_port())}
            procs.append(subprocess.Popen([HEXPULSE, "consume"], env=second_env, stdout=fh, stderr=fh))
        deadline = time.monotonic() + 60
        while len(_assigned(first_log)) == rounds or not _assigned(second_log):
            assert time.monotonic() < deadline, "the group did not rebalance to two members"
            time.sleep(0.2)
        procs[1].send_signal(signal.SIGTERM)
        assert procs[1].wait(timeout=s.shutdown_timeout_s + 15) == 0
        deadline = time.monotonic() + 60
        while _assigned(first_log)[-1] != [0, 1, 2]:
            assert time.monotonic() < deadline, "the first member did not get every partition back"
            time.sleep(0.2)
        ch.start()
        deadline = time.monotonic() + 90
        while not all_closed(s, stream):
            assert time.monotonic() < deadline, "windows were not all closed after ClickHouse returned"
            assert procs[0].poll() is None
            time.sleep(0.5)
        assert scrape(s.metrics_port)["hexpulse_aggregate_paused"] == 0.0
        procs[0].send_signal(signal.SIGTERM)
        assert procs[0].wait(timeout=s.shutdown_timeout_s + 15) == 0
        want, _, _ = expected(s, stream)
        assert read_partials(s) == want
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        ch.stop()
