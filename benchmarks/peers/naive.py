"""The naive consumer (kafka-python + crc32c, ``json.loads`` per message, ``h3`` str API per ping,
a dict of device sets per (window, cell), no output store) and the poll loop under it.

Shared by ``bench_pipeline.py`` (its ``naive_pings_per_s`` and poll-only ceilings) and
``bench_peers.py`` (peer (c), whose counts are also checked against the ground truth).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import h3
from kafka import KafkaConsumer, TopicPartition

from peers.stream import WINDOW_MS, Counts


def poll_loop(
    bootstrap: str,
    topic: str,
    partitions: int,
    total: int,
    handle: Callable[[list[Any]], None],
    prepare: Callable[[KafkaConsumer], None] | None = None,
) -> float:
    """Read ``total`` records from the start of every partition; seconds from first to last record.

    ``prepare`` may change the consumer before it is assigned (bench_pipeline.py swaps in
    hexpulse's record-batch decoder with it).
    """
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        enable_auto_commit=False,
        group_id=None,
        max_poll_records=5000,
        max_partition_fetch_bytes=8 << 20,
        fetch_max_bytes=64 << 20,
    )
    if prepare is not None:
        prepare(consumer)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    seen = 0
    t0: float | None = None
    while seen < total:
        batch = consumer.poll(timeout_ms=1000)
        for records in batch.values():
            if t0 is None:
                t0 = time.perf_counter()
            handle(records)
            seen += len(records)
    elapsed = time.perf_counter() - (t0 or time.perf_counter())
    consumer.close()
    return elapsed


@dataclass(frozen=True)
class NaiveRun:
    pings_per_s: float
    counts: Counts  # distinct devices per (window start ms, res-9 cell as int)


def naive(bootstrap: str, topic: str, partitions: int, total: int) -> NaiveRun:
    """The obvious consumer over ``total`` records: pings/s from first to last record, and its counts."""
    sets: dict[tuple[int, str], set[str]] = defaultdict(set)
    counted = [0]

    def handle(records: list[Any]) -> None:
        for r in records:
            msg = json.loads(r.value)
            dev = msg["device"]
            for p in msg.get("pings") or [msg]:
                cell = h3.latlng_to_cell(p["lat"], p["lon"], 9)
                sets[(p["ts"] // WINDOW_MS * WINDOW_MS, cell)].add(dev)
                counted[0] += 1

    elapsed = poll_loop(bootstrap, topic, partitions, total, handle)
    counts = {(w, h3.str_to_int(cell)): len(devs) for (w, cell), devs in sets.items()}
    return NaiveRun(counted[0] / elapsed, counts)
