"""A short `make soak` (benchmarks/soak.py) as a long reliability run: two minutes of a small city
in real time through every process; all stay up, every process is sampled, windows are released
within issue #12's bound. The 30-minute run at real density is `make soak` (RELIABILITY.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from hexpulse.settings import Settings
from tests.support.figures import needs_full, record_figure
from tests.support.paths import REPO

pytestmark = [pytest.mark.integration, needs_full]
PROCESSES = {"simulator", "consumer-1", "consumer-2", "releaser", "api", "alerts", "exporter"}


def test_a_short_soak_keeps_every_process_up_and_releases_in_time(services: Settings, tmp_path: Path) -> None:
    minutes = float(os.environ.get("SOAK_MINUTES", "2"))
    out = tmp_path / "soak.jsonl"
    args = ["--minutes", str(minutes), "--devices", "5000", "--lead-s", "30", "--warmup-min", "0.5"]
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "soak.py"), *args, "--out", str(out)],
        capture_output=True, timeout=minutes * 60 + 900, cwd=REPO,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    summary = orjson.loads(out.read_bytes().splitlines()[-1])["summary"]
    alive = summary["processes_alive_at_end"]
    assert set(alive) == PROCESSES
    assert summary["feed_exit"] == 0 and not alive["simulator"]  # the feed ends with its run
    assert all(v for k, v in alive.items() if k != "simulator"), alive
    assert set(summary["rss"]) == PROCESSES
    lag = summary["release_lag_s"]
    assert lag["windows"] >= minutes - 1
    assert lag["max"] <= lag["bound"], lag
    record_figure("soak_smoke", "release_lag_s_max", lag["max"], "s")
