"""The full-size ClickHouse outage of ``make faults``: a private server (never the shared one)
stopped for ``FAULTS_OUTAGE_S`` seconds (default 60) mid-stream, then restarted. The consumer
stays alive and paused, its RSS is sampled every 0.5 s (the peak is reported), and afterwards the
partials are exactly the fault-free ones: nothing lost, nothing doubled. The CI-sized run is
tests/integration/aggregate/test_outage.py (32 s)."""

from __future__ import annotations

import os
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
from tests.support.figures import needs_full, record_figure

pytestmark = [pytest.mark.integration, pytest.mark.slow, needs_full]
OUTAGE_S = float(os.environ.get("FAULTS_OUTAGE_S", "60"))
MiB = 2**20


def test_clickhouse_down_60s_loses_nothing(migrated: Settings, unique_name: str, tmp_path: Path) -> None:
    ch = PrivateClickHouse(tmp_path / "ch")
    ch.start()
    proc: subprocess.Popen[bytes] | None = None
    try:
        s = agg_settings(
            migrated, unique_name, state_dir=tmp_path, clickhouse_port=ch.port,
            consumer_max_poll_records=8, sink_retry_max_s=2.0, metrics_port=free_port(),
        )  # fmt: skip
        stream = produce_stream(s, devices=600, span_s=400, seed=6)
        with (tmp_path / "consume.log").open("ab") as log:
            proc = subprocess.Popen([HEXPULSE, "consume"], env=env_for(s), stdout=log, stderr=log)
        ps = psutil.Process(proc.pid)
        deadline = time.monotonic() + 60
        while not read_horizons(s):
            assert time.monotonic() < deadline, "the consumer wrote nothing"
            time.sleep(0.1)
        assert not all_closed(s, stream), "the stream was consumed before the outage"
        rss_before = ps.memory_info().rss
        ch.stop()
        down_at = time.monotonic()
        peak = rss_before
        while time.monotonic() - down_at < OUTAGE_S:
            assert proc.poll() is None, "the consumer died while ClickHouse was down"
            peak = max(peak, ps.memory_info().rss)
            time.sleep(0.5)
        during = scrape(s.metrics_port)
        assert during["hexpulse_aggregate_paused"] == 1.0
        ch.start()
        back_at = time.monotonic()
        deadline = back_at + 120
        while not all_closed(s, stream):
            assert time.monotonic() < deadline, "windows were not all closed after ClickHouse returned"
            assert proc.poll() is None
            peak = max(peak, ps.memory_info().rss)
            time.sleep(0.5)
        caught_up = time.monotonic() - back_at
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=s.shutdown_timeout_s + 15) == 0
        proc = None
        want, _, _ = expected(s, stream)
        got = read_partials(s)
        record_figure("clickhouse_outage", "outage", OUTAGE_S, "s")
        record_figure(
            "clickhouse_outage", "consumer RSS before the outage", round(rss_before / MiB, 1), "MiB"
        )
        record_figure(
            "clickhouse_outage", "consumer peak RSS, outage and catch-up", round(peak / MiB, 1), "MiB"
        )
        record_figure("clickhouse_outage", "catch-up after restart", round(caught_up, 1), "s")
        record_figure(
            "clickhouse_outage", "sink failures during the outage",
            int(during["hexpulse_aggregate_sink_failures_total"]), "failures",
        )  # fmt: skip
        assert got == want
        assert peak - rss_before < 40 * MiB, "the consumer buffered during the outage"
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        ch.stop()
