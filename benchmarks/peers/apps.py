"""Running a peer that is its own process (Kafka Streams, Quix Streams) and timing it from outside.

The time is from the peer's first input record (the wall-clock ms the peer prints at exit) to the
broker append time of its last result (the output topic is LogAppendTime): the span the peer
needs to read, aggregate, close and emit everything. The runner stops the peer with SIGTERM once
every expected result is there (or the time limit passed, or the peer died).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from peers.outputs import Check, check, read_results
from peers.stream import Stream


@dataclass(frozen=True)
class PeerRun:
    """One peer on one stream: its rate (pings/s, counted over the whole topic) and its check."""

    peer: str
    shape: str
    pings_per_s: float | None  # None when the run produced no timing
    seconds: float | None
    check: Check

    @property
    def valid_rate(self) -> float | None:
        """The rate, only if every count matched the ground truth (a fast wrong peer cannot win)."""
        return self.pings_per_s if self.check.valid else None

    def line(self) -> str:
        rate = "n/a" if self.pings_per_s is None else f"{self.pings_per_s:,.0f} pings/s"
        secs = "" if self.seconds is None else f" in {self.seconds:.2f} s"
        return f"{self.peer}, {self.shape}: {rate}{secs}; {self.check.sentence()}"


def run_app(
    peer: str, cmd: list[str], bootstrap: str, stream: Stream, sink: str, timeout_s: float
) -> PeerRun:
    """Start ``cmd``, wait for its results on ``sink``, stop it, check and time it."""
    with tempfile.TemporaryFile("w+") as errors:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
        try:
            results = read_results(
                bootstrap, sink, len(stream.truth), timeout_s, alive=lambda: proc.poll() is None
            )
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                out, _ = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
        stats = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
        verdict = check(stream.truth, results.counts)
        if not stats or not verdict.valid or results.duplicates:
            errors.seek(0)
            sys.stderr.write(f"-- {peer} stderr (tail):\n{errors.read()[-3000:]}\n")
    if results.duplicates:
        sys.stderr.write(f"{peer}: {results.duplicates} results emitted more than once (last one kept)\n")
    first = stats[-1]["first_record_ms"] if stats else 0
    if not first or results.last_append_ms is None:
        return PeerRun(peer, stream.shape, None, None, verdict)
    seconds = (results.last_append_ms - first) / 1000
    if seconds <= 0 or results.last_append_ms > time.time() * 1000 + 1000:
        raise RuntimeError(
            f"{sink}: result timestamps are not the broker's append time; the broker must honour "
            "message.timestamp.type=LogAppendTime for the peers to be timed"
        )
    return PeerRun(peer, stream.shape, stream.pings / seconds, seconds, verdict)
