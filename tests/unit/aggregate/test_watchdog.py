"""The no-progress watchdog's clock and its guard thread (aggregate/watchdog.py), without services."""

from __future__ import annotations

import subprocess
import sys
import time

from aggregate.exceptions import ConsumerStalledError
from aggregate.watchdog import STALL_EXIT_CODE, StallGuard, Watchdog, probe_interval_s, thread_stacks


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_owed_work_without_progress_stalls_only_past_the_timeout() -> None:
    clock = Clock()
    wd = Watchdog(60.0, clock)
    wd.report(["partition 1 behind by 40 records"])
    clock.now += 59.0
    assert wd.stalled_for() is None
    clock.now += 2.0
    assert wd.stalled_for() == 61.0


def test_progress_or_owing_nothing_resets_the_clock() -> None:
    clock = Clock()
    wd = Watchdog(60.0, clock)
    wd.report(["waiting for a partition assignment"])
    clock.now += 50.0
    wd.progress()  # a record handled
    wd.report(["partition 0 not resumed"])
    clock.now += 50.0
    assert wd.stalled_for() is None
    wd.report([])  # caught up: an idle member is not stalled
    clock.now += 500.0
    assert wd.stalled_for() is None


def test_zero_turns_the_watchdog_off() -> None:
    clock = Clock()
    wd = Watchdog(0.0, clock)
    wd.report(["partition 2 behind by 1 records"])
    clock.now += 10_000.0
    assert wd.stalled_for() is None


def test_probes_come_a_few_times_per_timeout_within_bounds() -> None:
    assert probe_interval_s(120.0) == 15.0
    assert probe_interval_s(8.0) == 2.0
    assert probe_interval_s(0.4) == 0.5


def test_thread_stacks_name_places_not_values() -> None:
    stacks = thread_stacks()
    main = stacks["MainThread"]
    assert any("test_watchdog.py" in line and "test_thread_stacks" in line for line in main)
    assert all(line.count(":") == 1 for line in main)


def test_the_stall_error_asks_for_a_restart() -> None:
    assert ConsumerStalledError.exit_code == STALL_EXIT_CODE == 75


def test_guard_fires_once_the_loop_stops_ticking_and_not_while_it_ticks() -> None:
    guard = StallGuard(0.6, 1.0, hard_exit=False)
    guard.start()
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        guard.tick()
        time.sleep(0.05)
    assert not guard.fired
    guard.join(timeout=5.0)  # no more ticks: it fires, logs (in-process: no exit) and ends
    assert guard.fired
    guard.done.set()


def test_hard_guard_ends_a_process_whose_loop_is_stuck_with_status_75() -> None:
    code = (
        "import time\n"
        "from aggregate.watchdog import StallGuard\n"
        "from hexpulse.logs import configure_logging\n"
        "configure_logging()\n"
        "StallGuard(0.5, 1.0, hard_exit=True).start()\n"
        "time.sleep(30)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=False)
    assert proc.returncode == STALL_EXIT_CODE
    line = [ln for ln in proc.stderr.splitlines() if b"consumer stalled; exiting" in ln]
    assert line and b"consume loop stuck inside one call" in line[0] and b"MainThread" in line[0]
