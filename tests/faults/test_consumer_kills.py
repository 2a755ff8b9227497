"""The full-size consumer crash run of ``make faults``: ``kill -9`` of ``hexpulse consume`` at
random instants for ``FAULTS_KILL_ROUNDS`` rounds (default 20), then a clean finish; the partials
and close offsets the releaser reads are exactly a fault-free run's of the same seed. The CI-sized
run (3 kills) and the 1 → 3 → 1 scaling run are tests/integration/aggregate/test_crash.py, whose
helpers this reuses so both prove the same thing."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest

from hexpulse.settings import Settings
from hexpulse.store.scratch import drop_database
from tests.integration.aggregate.test_crash import check, start, stop_all, wait_closed
from tests.support.aggregate import agg_settings, all_closed, produce_stream, read_horizons
from tests.support.figures import needs_full, record_figure

pytestmark = [pytest.mark.integration, pytest.mark.slow, needs_full]
ROUNDS = int(os.environ.get("FAULTS_KILL_ROUNDS", "20"))


def test_kill9_rounds_give_fault_free_partials(migrated: Settings, unique_name: str, tmp_path: Path) -> None:
    # Eight records a poll and a long stream, so each round consumes only part of it.
    s = agg_settings(
        migrated, unique_name, state_dir=tmp_path, consumer_max_poll_records=8, shutdown_timeout_s=10.0
    )
    stream = produce_stream(s, devices=1500, span_s=600, seed=11)
    rng = random.Random(15)
    log = tmp_path / "consume.log"
    mid_stream = 0
    started = time.monotonic()
    try:
        for _ in range(ROUNDS):
            before = read_horizons(s)
            p = start(s, log)
            deadline = time.monotonic() + 60
            while read_horizons(s) == before and time.monotonic() < deadline and not all_closed(s, stream):
                time.sleep(0.1)  # until this process has closed something
            time.sleep(rng.uniform(0.0, 1.0))
            if not all_closed(s, stream):
                mid_stream += 1
            p.kill()  # SIGKILL: no flush, no commit
            p.wait()
        p = start(s, log)
        wait_closed(s, stream, [p], 300)
        stop_all([p], s)
        elapsed = time.monotonic() - started
        record_figure("consumer_kills", "kill -9 rounds landing mid-stream", mid_stream, "rounds")
        record_figure("consumer_kills", "kill -9 rounds in all", ROUNDS, "rounds")
        record_figure("consumer_kills", "time to the clean finish", round(elapsed, 1), "s")
        # Most rounds must land before the end, or the run proved little.
        assert mid_stream >= ROUNDS * 3 // 4, f"only {mid_stream} of {ROUNDS} kills landed mid-stream"
        check(s, stream, unique_name)
    finally:
        drop_database(s)
