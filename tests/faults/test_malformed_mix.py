"""Malformed traffic of ``make faults`` (and ``make test``): a simulated city's stream with about
10 % more messages of 24 malformed kinds (truncated JSON, wrong types, huge batches, NaN-like
numbers, null island, far future, a device with a fast clock, wrong partition, binary garbage, ...)
through the real broker and ClickHouse. The accounting identity holds (received = accepted +
rejected + late + duplicate, every rejected ping dead-lettered with its reason), and the partials
are exactly those of the good pings alone: malformed input moves no count. A value over the
broker's record limit (10 MB) never reaches the topic: the producer is refused.
The neighbour bound under an adversarial device is tests/integration/aggregate/test_neighbour.py."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import TopicPartition
from kafka.errors import KafkaError
from kafka.partitioner.default import murmur2

from aggregate.kafka.client import make_consumer
from hexpulse.kafka import ensure_topics, make_producer
from hexpulse.settings import Settings
from hexpulse.store.scratch import drop_database
from tests.support.aggregate import agg_settings, expected, produce_stream, read_partials, run_in_process
from tests.support.figures import record_figure

pytestmark = pytest.mark.integration
LAT, LON = 23.13, 113.32

# kind → (message for a device key and a send time in ms, pings the accounting counts it for)
Kind = Callable[[str, int], tuple[bytes, int]]


def ping(ts: int, **extra: Any) -> dict[str, Any]:
    return {"ts": ts, "lat": LAT, "lon": LON, **extra}


def doc(dev: str, **fields: Any) -> bytes:
    return orjson.dumps({"v": 1, "device": dev, **fields})


KINDS: dict[str, Kind] = {
    "truncated json": lambda d, t: (doc(d, **ping(t))[:-7], 1),
    "binary garbage": lambda d, t: (bytes(range(256)) * 3, 1),
    "json array": lambda d, t: (b"[1, 2, 3]", 1),
    "bad version": lambda d, t: (orjson.dumps({"v": 99, "device": d, **ping(t)}), 1),
    "device not a string": lambda d, t: (orjson.dumps({"v": 1, "device": 42, **ping(t)}), 1),
    "device of another key": lambda d, t: (doc(d + "-x", **ping(t)), 1),
    "empty batch": lambda d, t: (doc(d, pings=[]), 1),
    "huge batch": lambda d, t: (doc(d, pings=[ping(t - k) for k in range(600)]), 600),
    "oversized message": lambda d, t: (doc(d, pad="x" * 300_000, **ping(t)), 1),
    "ping not an object": lambda d, t: (doc(d, pings=["nope", 7]), 2),
    "missing lat": lambda d, t: (doc(d, ts=t, lon=LON), 1),
    "lat a string": lambda d, t: (doc(d, **ping(t, lat="23.13")), 1),
    "ts a string": lambda d, t: (doc(d, ts="soon", lat=LAT, lon=LON), 1),
    "NaN-like lat": lambda d, t: (doc(d, **ping(t))[:-1] + b',"lat":1e999}', 1),
    "lat out of range": lambda d, t: (doc(d, **ping(t, lat=91.5)), 1),
    "lon out of range": lambda d, t: (doc(d, **ping(t, lon=-181.0)), 1),
    "null island": lambda d, t: (doc(d, **ping(t, lat=0.0, lon=0.0)), 1),
    "accuracy too coarse": lambda d, t: (doc(d, **ping(t, acc=5000.0)), 1),
    "speed of a plane": lambda d, t: (doc(d, **ping(t, spd=250.0)), 1),
    "heading over 360": lambda d, t: (doc(d, **ping(t, hdg=400.0)), 1),
    "unknown source": lambda d, t: (doc(d, **ping(t, src="psychic")), 1),
    "far future": lambda d, t: (doc(d, **ping(4_102_444_800_000)), 1),
    "fast clock": lambda d, t: (doc(d, **ping(t + 3_600_000)), 1),
    "years old": lambda d, t: (doc(d, **ping(t - 3 * 365 * 86_400_000)), 1),
    "outside the area": lambda d, t: (doc(d, **ping(t, lat=39.9, lon=116.4)), 1),
}


def dlq_reasons(s: Settings, timeout_s: float = 60.0, idle_s: float = 3.0) -> Counter[str]:
    """Reason header counts of the whole DLQ (read until nothing new arrives for ``idle_s``)."""
    consumer = make_consumer(s, enable_auto_commit=False, group_id=None, consumer_timeout_ms=1000)
    try:
        parts = [TopicPartition(s.topic_dlq, p) for p in consumer.partitions_for_topic(s.topic_dlq) or {0}]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        got: Counter[str] = Counter()
        deadline = time.monotonic() + timeout_s
        last_new = time.monotonic()
        while time.monotonic() < deadline and (not got or time.monotonic() - last_new < idle_s):
            for recs in consumer.poll(timeout_ms=500).values():
                last_new = time.monotonic()
                for rec in recs:
                    got[dict(rec.headers)["reason"].decode()] += 1
        return got
    finally:
        consumer.close()


def test_malformed_mix_is_accounted_for_and_moves_no_count(
    migrated: Settings, unique_name: str, tmp_path: Path
) -> None:
    s = agg_settings(migrated, unique_name, state_dir=tmp_path)
    ensure_topics(s, [s.topic_dlq])
    try:
        stream = produce_stream(
            s, devices=int(os.environ.get("FAULTS_MALFORMED_DEVICES", "150")), span_s=300, seed=21
        )
        n_bad = stream.messages // 9  # ~10 % of all messages
        send_ms = stream.max_ts_ms + 1000
        producer = make_producer(s, max_request_size=1_048_576 * 12)
        bad_pings = 0
        names = sorted(KINDS)
        for i in range(n_bad):
            dev = f"bad-device-{i % 40}"
            value, carried = KINDS[names[i % len(names)]](dev, send_ms - 1000)
            producer.send(s.topic_pings, key=dev.encode(), value=value, timestamp_ms=send_ms)
            bad_pings += carried
        # Wrong partition and no key, one of each per 25 bad messages.
        extra = max(1, n_bad // 25)
        for i in range(extra):
            dev = f"bad-device-{i}"
            right = (murmur2(dev.encode()) & 0x7FFFFFFF) % s.topic_partitions
            producer.send(s.topic_pings, key=dev.encode(), value=doc(dev, **ping(send_ms - 1000)),
                          partition=(right + 1) % s.topic_partitions, timestamp_ms=send_ms)  # fmt: skip
            producer.send(
                s.topic_pings, key=None, value=doc(dev, **ping(send_ms - 1000)), timestamp_ms=send_ms
            )
        bad_pings += 2 * extra
        producer.flush()
        # The broker refuses a 10 MB record outright (its limit is ~1 MB): it never reaches ingest.
        with pytest.raises(KafkaError):
            producer.send(s.topic_pings, key=b"big", value=b"x" * 10_000_000).get(timeout=30)
        producer.close()
        messages = stream.messages + n_bad + 2 * extra
        _, agg = run_in_process(s, stream, timeout_s=300, messages=messages)
        received = stream.pings_in + bad_pings
        assert agg.pings_in == received
        assert (
            agg.pings_in
            == agg.accepted + agg.rejected + agg.late + agg.duplicate + agg.open_pings + agg.dropped_open
        )
        # The city's own rejects: its ~5 % malformed messages and pings that wandered off the area.
        kept = sum(len(pings) for pings in stream.by_partition.values())
        city_rejects = stream.pings_in - kept
        assert agg.rejected == bad_pings + city_rejects  # every bad ping, and no good one
        reasons = dlq_reasons(s)
        assert len(reasons) >= 20, reasons
        want, _, _ = expected(s, stream)
        assert read_partials(s) == want
        record_figure("malformed_mix", "messages", messages, "messages")
        record_figure("malformed_mix", "malformed kinds", len(KINDS) + 2, "kinds")
        record_figure("malformed_mix", "distinct DLQ reasons", len(reasons), "reasons")
        record_figure("malformed_mix", "pings received", received, "pings")
        record_figure("malformed_mix", "pings rejected", agg.rejected, "pings")
    finally:
        drop_database(s)
