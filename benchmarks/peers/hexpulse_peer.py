"""Peer (e), hexpulse itself: ``hexpulse consume`` exactly as ``bench_pipeline.py`` runs it.

This is the one module of ``benchmarks/peers/`` that imports hexpulse (and bench_pipeline.py), so a
re-lay-out of the Python tree changes the imports here only. The rate is bench_pipeline's: one
process, ClickHouse writes included, from its first record to the write of the last window. Its
counts are the sums over partitions of the exact ``partials`` it wrote (read before the database
is dropped), i.e. what the releaser would add noise to.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from bench_pipeline import pipeline

from hexpulse.settings import Settings, load_settings
from hexpulse.store.client import connect
from peers.apps import PeerRun
from peers.outputs import check
from peers.stream import Counts, Stream


def settings(partitions: int) -> Settings:
    """Settings from the environment (``HEXPULSE_KAFKA_BOOTSTRAP``, ClickHouse port, ...)."""
    return load_settings(topic_partitions=partitions, metrics_port=0)


def _partials(s: Settings) -> Counts:
    client = connect(s)
    try:
        rows = client.execute(
            f"SELECT toUInt32(window_start), cell, sum(devices) FROM {s.exact_database}.partials FINAL "
            "GROUP BY window_start, cell"
        )
    finally:
        client.disconnect()
    return {(int(w) * 1000, int(cell)): int(n) for w, cell, n in rows}


def _into(counts: Counts) -> Callable[[Settings], None]:
    return lambda s: counts.update(_partials(s))


def run(base: Settings, stream: Stream, state: Path, tag: str) -> PeerRun:
    counts: Counts = {}
    figures: dict[str, float] | None = None
    # bench_pipeline's consumer exits after 3 s without a record; on the loaded machine it twice
    # exited having read nothing (a later try read everything), so one more try is allowed.
    for attempt in range(2):
        try:
            figures = pipeline(base, stream.topic, 1, state, f"{tag}t{attempt}", inspect=_into(counts))
            break
        except ValueError:  # no process saw a record
            sys.stderr.write(f"hexpulse consume read nothing from {stream.topic} (try {attempt + 1})\n")
    if figures is None:
        return PeerRun("hexpulse", stream.shape, None, None, check(stream.truth, {}))
    rate = figures["pings_per_s"]
    return PeerRun("hexpulse", stream.shape, rate, figures["seconds"], check(stream.truth, counts))
