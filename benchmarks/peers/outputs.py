"""Reading a peer's results and holding them against the ground truth.

The Kafka Streams and Quix peers write one record per closed (window, cell) to an output topic
created with ``message.timestamp.type=LogAppendTime``: value ``"windowStartMs,cell,count"``, and
the broker's append time says when the result existed (ms since epoch, the machine's clock).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from kafka import KafkaConsumer, TopicPartition

from peers.stream import Counts


@dataclass(frozen=True)
class Results:
    counts: Counts
    last_append_ms: int | None  # broker time of the last result record; None if there was none
    duplicates: int  # result records for a (window, cell) already seen (a peer emitting twice)


@dataclass(frozen=True)
class Check:
    """How a peer's counts compare with the truth; ``valid`` only if they are identical."""

    cells: int
    missing: int
    extra: int
    wrong: int

    @property
    def valid(self) -> bool:
        return self.missing == 0 and self.extra == 0 and self.wrong == 0

    def sentence(self) -> str:
        if self.valid:
            return f"all {self.cells} (window, cell) counts match the ground truth"
        return (
            f"{self.missing} of {self.cells} (window, cell) counts missing, {self.extra} extra, "
            f"{self.wrong} wrong"
        )


def check(truth: Counts, counts: Counts) -> Check:
    """Compare ``counts`` with ``truth`` over the windows the truth covers (the closers' is left out)."""
    windows = {w for w, _ in truth}
    got = {k: v for k, v in counts.items() if k[0] in windows}
    missing = sum(1 for k in truth if k not in got)
    extra = sum(1 for k in got if k not in truth)
    wrong = sum(1 for k, v in got.items() if k in truth and truth[k] != v)
    return Check(len(truth), missing, extra, wrong)


def read_results(
    bootstrap: str,
    topic: str,
    expected: int,
    timeout_s: float,
    alive: Callable[[], bool] = lambda: True,
    idle_s: float = 60.0,
) -> Results:
    """Read ``topic`` from the start until ``expected`` distinct results, or give up.

    Gives up after ``timeout_s``, when ``alive()`` turns false, or ``idle_s`` after the last new
    result (a peer that dropped some results never sends them).
    """
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False, group_id=None)
    parts = consumer.partitions_for_topic(topic) or {0}
    tps = [TopicPartition(topic, p) for p in sorted(parts)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    counts: Counts = {}
    last: int | None = None
    duplicates = 0
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    try:
        while len(counts) < expected and time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            if batch:
                quiet_since = time.monotonic()
            elif not alive() or (counts and time.monotonic() - quiet_since > idle_s):
                break
            for records in batch.values():
                for r in records:
                    try:
                        w, cell, n = r.value.decode().split(",")
                    except ValueError:
                        bad = f"{topic}: result {r.value!r} is not 'windowStartMs,cell,count'"
                        raise ValueError(bad) from None
                    key = (int(w), int(cell))
                    duplicates += key in counts
                    counts[key] = int(n)
                    last = r.timestamp if last is None else max(last, r.timestamp)
    finally:
        consumer.close()
    return Results(counts, last, duplicates)
