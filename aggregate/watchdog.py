"""The consume loop's no-progress watchdog: a member that owes work and does none for
``consumer_stall_timeout_s`` seconds says why and exits with :data:`STALL_EXIT_CODE`.

Work is owed while the member waits for an assignment, holds a partition it has not resumed yet,
or holds one whose end offset (asked of the broker) is past its position. Progress is a handled
record, a resumed partition, or owing nothing (caught up or legitimately idle). Partitions stopped
at a corrupt batch owe nothing here: they wait for an operator (aggregate/quarantine.py).

Exit rather than re-create the Kafka consumer: a stalled kafka-python client can hold the loop's
thread inside a call that never returns (its cross-thread wait has no timeout), which no in-process
rebuild can reach, and its IO thread and half-rejoined coordinator would linger next to the new
one. A fresh process starts from clean client state, and the exactly-once rule (offsets committed
only up to the oldest unwritten window, partials keyed so a replay overwrites them) makes a restart
safe at any instant, as the kill -9 tests show. The supervisor (compose ``restart:``, systemd,
Kubernetes) starts the member again.

Two checks: the loop checks itself each round (:class:`Watchdog`); :class:`StallGuard`, a thread,
covers a loop stuck inside one call (no round for the timeout) and a shutdown that does not finish.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable

from hexpulse.logs import log_event

log = logging.getLogger("aggregate.consumer")  # the loop's logger (aggregate/loop_state.py)

STALL_EXIT_CODE = 75
"""Exit status of a stalled consumer (EX_TEMPFAIL: try again, i.e. restart me)."""
SHUTDOWN_GRACE_S = 5.0
"""Seconds past the shutdown timeout that a stalled consumer gets to exit by itself."""


def probe_interval_s(timeout_s: float) -> float:
    """How often an idle loop asks the broker for end offsets, seconds (a few per timeout)."""
    return min(15.0, max(0.5, timeout_s / 4))


def thread_stacks(limit: int = 4) -> dict[str, list[str]]:
    """The innermost ``limit`` frames of every thread, as ``file:line function`` (no values)."""
    names = {t.ident: t.name for t in threading.enumerate()}
    out: dict[str, list[str]] = {}
    for ident, frame in sys._current_frames().items():
        frames = traceback.extract_stack(frame)[-limit:]
        out[names.get(ident, str(ident))] = [
            "/".join(f.filename.split("/")[-2:]) + f":{f.lineno} {f.name}" for f in frames
        ]
    return out


class Watchdog:
    """When the loop last progressed, and whether that is longer ago than the timeout (0 = off)."""

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout_s = timeout_s
        self._clock = clock
        self.progress_at = clock()
        self.owed: list[str] = []

    def progress(self) -> None:
        """Something moved: a record handled, a partition resumed, or nothing is owed."""
        self.progress_at = self._clock()
        self.owed = []

    def report(self, owed: list[str]) -> None:
        """What the latest probe found owed; an empty list is progress (nothing to do)."""
        if owed:
            self.owed = owed
        else:
            self.progress()

    def stalled_for(self) -> float | None:
        """Seconds without progress while work is owed, once past the timeout; else None."""
        if self.timeout_s <= 0 or not self.owed:
            return None
        quiet = self._clock() - self.progress_at
        return quiet if quiet > self.timeout_s else None


class StallGuard(threading.Thread):
    """Watches the loop from outside: no round for ``timeout_s``, or a declared stall whose
    shutdown overruns ``shutdown_s`` + grace, ends the process (``hard_exit``) or is logged."""

    def __init__(self, timeout_s: float, shutdown_s: float, *, hard_exit: bool) -> None:
        super().__init__(name="hexpulse-stall-guard", daemon=True)
        self.timeout_s = timeout_s
        self.shutdown_s = shutdown_s
        self.hard_exit = hard_exit
        self.tick_at = time.monotonic()
        self.stalled_at: float | None = None
        self.done = threading.Event()
        self.fired = False

    def tick(self) -> None:
        """The loop completed a round."""
        self.tick_at = time.monotonic()

    def run(self) -> None:
        step = probe_interval_s(self.timeout_s)
        while not self.done.wait(step):
            now = time.monotonic()
            if self.stalled_at is not None:
                over = now - self.stalled_at - self.shutdown_s - SHUTDOWN_GRACE_S
                if over > 0:
                    self._fire("stalled consumer did not shut down in time", now - self.stalled_at)
                    return
            elif now - self.tick_at > self.timeout_s:
                self._fire("consume loop stuck inside one call", now - self.tick_at)
                if not self.hard_exit:
                    return

    def _fire(self, reason: str, quiet_s: float) -> None:
        self.fired = True
        log_event(
            log,
            "consumer stalled; exiting" if self.hard_exit else "consumer stalled",
            logging.ERROR,
            reason=reason,
            quiet_s=round(quiet_s, 1),
            timeout_s=self.timeout_s,
            exit_code=STALL_EXIT_CODE if self.hard_exit else None,
            stacks=thread_stacks(),
        )
        if self.hard_exit:
            logging.shutdown()
            os._exit(STALL_EXIT_CODE)
