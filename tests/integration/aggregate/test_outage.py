"""ClickHouse down for 30+ s mid-stream (a private server; the shared one is never stopped): the
consumer pauses its partitions instead of buffering, keeps its group membership, resumes when
ClickHouse is back, and the partials are exactly the fault-free ones."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

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
