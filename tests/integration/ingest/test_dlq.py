"""Ingest against the real broker: a mix of good and malformed messages → accepted pings + a DLQ
whose every record has the right reason and provenance and carries nothing raw in clear."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import TopicPartition
from prometheus_client import REGISTRY
from pydantic import SecretStr

from aggregate.kafka.client import make_consumer
from hexpulse.kafka import ensure_topics, make_producer
from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings
from ingest import DeadLetter, DeadLetterError, Ingestor, KafkaDeadLetterSink
from ingest.contract import MESSAGE_REASONS
from tests.support.ingest import KeyedHashPseudonymizer

pytestmark = pytest.mark.integration

LAT, LON = 23.1234567, 113.3456789  # distinctive digits, looked for in the DLQ bytes
DEVICES = [f"SECRET-DEVICE-{i:03d}" for i in range(6)]


def _ping(ts: int, **extra: Any) -> dict[str, Any]:
    return {"ts": ts, "lat": LAT, "lon": LON, **extra}


def _mix(now: int) -> list[tuple[bytes | None, bytes, Counter[str]]]:
    """(key, value, expected outcome counts) for each message to produce."""
    d = [dev.encode() for dev in DEVICES]
    out: list[tuple[bytes | None, bytes, Counter[str]]] = []

    def add(key: bytes | None, doc: Any, expected: dict[str, int]) -> None:
        value = doc if isinstance(doc, bytes) else orjson.dumps(doc)
        out.append((key, value, Counter(expected)))

    for i in range(4):
        add(d[0], {"device": DEVICES[0], **_ping(now - 1000 * i, spd=3.0)}, {"accepted": 1})
    add(d[1], {"device": DEVICES[1], "pings": [_ping(now - 500 * k) for k in range(5)]}, {"accepted": 5})
    bad_batch = [_ping(now - 10), _ping(now - 20, lat=91.5), "nope", _ping(now - 30, spd=99.0), _ping(now)]
    add(
        d[2],
        {"device": DEVICES[2], "pings": bad_batch},
        {"accepted": 2, "lat_range": 1, "ping_not_object": 1, "speed_range": 1},
    )
    add(d[3], b'{"device": "SECRET-DEVICE-003", "lat": 23.1234567, "lon": 113.34', {"not_json": 1})
    add(d[3], {"device": 42, **_ping(now)}, {"bad_device": 1})
    add(d[4], {"device": DEVICES[3], "pings": [_ping(now), _ping(now - 1)]}, {"key_mismatch": 2})
    add(d[4], {"device": DEVICES[4], "pings": []}, {"empty_batch": 1})
    add(d[4], {"device": DEVICES[4], **_ping(now, lat=0.0, lon=0.0)}, {"null_island": 1})
    add(d[5], {"device": DEVICES[5], **_ping(now, lat=39.9, lon=116.4)}, {"outside_area": 1})
    add(d[5], {"device": DEVICES[5], **_ping(now - 86_400_000)}, {"stale_ts": 1})
    add(d[5], {"device": DEVICES[5], "pad": "x" * 600, **_ping(now)}, {"message_too_large": 1})
    return out


def _settings(services: Settings, unique_name: str, tmp_path: Path) -> Settings:
    s = services.model_copy(
        update={
            "topic_pings": f"ingest-pings-{unique_name}",
            "topic_dlq": f"ingest-pings-{unique_name}.dlq",
            "topic_partitions": 2,
            "max_message_bytes": 512,
            "state_dir": tmp_path,
            "master_key": SecretStr("cd" * 32),
        }
    )
    ensure_topics(s)
    return s


def _read_all(s: Settings, topic: str, expected: int, timeout_s: float = 30.0) -> list[Any]:
    consumer = make_consumer(s, enable_auto_commit=False, group_id=None, consumer_timeout_ms=1000)
    try:
        parts = [TopicPartition(topic, p) for p in range(s.topic_partitions)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        got: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while len(got) < expected and time.monotonic() < deadline:
            for recs in consumer.poll(timeout_ms=500).values():
                got.extend(recs)
        assert len(got) == expected, f"read {len(got)} of {expected} records from {topic}"
        return got
    finally:
        consumer.close()


def _produce(s: Settings) -> list[tuple[bytes | None, bytes, Counter[str]]]:
    mix = _mix(int(time.time() * 1000))
    producer = make_producer(s)
    for key, value, _ in mix:
        producer.send(s.topic_pings, key=key, value=value)
    producer.flush()
    producer.close()
    return mix


def _ingest_all(s: Settings, ingestor: Ingestor, n_records: int) -> tuple[Counter[str], list[Any], int]:
    records = _read_all(s, s.topic_pings, n_records)
    counts: Counter[str] = Counter()
    accepted = 0
    by_partition: dict[int, list[Any]] = {}
    for rec in records:
        by_partition.setdefault(rec.partition, []).append(rec)
    for partition, recs in by_partition.items():
        out = ingestor.ingest(s.topic_pings, partition, sorted(recs, key=lambda r: r.offset), None)
        counts.update(out.counts)
        accepted += len(out)
    ingestor.flush()
    return counts, records, accepted


def _expected_letters(mix: list[tuple[bytes | None, bytes, Counter[str]]]) -> int:
    """One DLQ record per whole-message failure, else one per rejected ping."""
    total = 0
    for _, _, expected in mix:
        whole = [r for r in expected if r in MESSAGE_REASONS]
        total += 1 if whole else sum(n for r, n in expected.items() if r != "accepted")
    return total


def _assert_nothing_raw(dlq: list[Any]) -> None:
    for rec in dlq:
        assert rec.key is None
        blob = (rec.value or b"") + b"".join(k.encode() + v for k, v in rec.headers)
        for secret in [*DEVICES, "SECRET-DEVICE", str(LAT), str(LON), "23.123", "113.345"]:
            assert secret.encode() not in blob, f"{secret} in clear in the DLQ"


def test_dlq_with_sealing(services: Settings, unique_name: str, tmp_path: Path) -> None:
    from privacy.keys.sealing import PayloadSealer

    s = _settings(services, unique_name, tmp_path)
    mix = _produce(s)
    sealer = PayloadSealer.from_settings(s)
    sink = KafkaDeadLetterSink(s, sealer)
    ingestor = Ingestor(s, load_service_area(s), KeyedHashPseudonymizer(), sink)
    counts, records, accepted = _ingest_all(s, ingestor, len(mix))
    sink.close()

    expected_total = sum((c for _, _, c in mix), Counter())
    assert counts == expected_total
    assert accepted == expected_total["accepted"] == 11

    expected_by_value = {value: c for _, value, c in mix}
    where = {(r.partition, r.offset): r.value for r in records}
    n_letters = _expected_letters(mix)
    dlq = _read_all(s, s.topic_dlq, n_letters)
    _assert_nothing_raw(dlq)

    seen: dict[bytes, Counter[str]] = {}
    for rec in dlq:
        h = {k: v.decode() for k, v in rec.headers}
        assert h["source_topic"] == s.topic_pings and h["dlq_v"] == "1"
        original = where[(int(h["source_partition"]), int(h["source_offset"]))]
        assert sealer.open(h["key_id"], rec.value) == original
        weight = 1 if "index" in h or "pings" not in h else max(1, int(h["pings"]))
        seen.setdefault(original, Counter())[h["reason"]] += weight
        if h["reason"] == "key_mismatch":
            assert h["pings"] == "2" and "index" not in h
        if h["reason"] in ("lat_range", "ping_not_object", "speed_range"):
            assert h["index"] == {"lat_range": "1", "ping_not_object": "2", "speed_range": "3"}[h["reason"]]
    for value, expected in expected_by_value.items():
        rejected = Counter({k: v for k, v in expected.items() if k != "accepted"})
        assert seen.get(value, Counter()) == rejected


def test_dlq_without_sealer_carries_reason_and_provenance_only(
    services: Settings, unique_name: str, tmp_path: Path
) -> None:
    s = _settings(services, unique_name, tmp_path)
    mix = _produce(s)
    metric_before = (
        REGISTRY.get_sample_value("hexpulse_ingest_dlq_records_total", {"reason": "lat_range"}) or 0
    )
    sink = KafkaDeadLetterSink(s, None)
    ingestor = Ingestor(s, load_service_area(s), KeyedHashPseudonymizer(), sink)
    counts, _, _ = _ingest_all(s, ingestor, len(mix))
    sink.close()
    n_rejected_records = _expected_letters(mix)
    assert n_rejected_records == 11
    dlq = _read_all(s, s.topic_dlq, n_rejected_records)
    _assert_nothing_raw(dlq)
    assert all(rec.value in (b"", None) for rec in dlq)
    assert all("key_id" not in dict(rec.headers) for rec in dlq)
    reasons = Counter(dict(rec.headers)["reason"].decode() for rec in dlq)
    assert sum(reasons.values()) == n_rejected_records
    assert counts["accepted"] == 11
    metric_after = REGISTRY.get_sample_value("hexpulse_ingest_dlq_records_total", {"reason": "lat_range"})
    assert metric_after == metric_before + reasons["lat_range"] == metric_before + 1


def test_an_unusable_dlq_topic_raises_dead_letter_error(services: Settings) -> None:
    s = services.model_copy(update={"topic_dlq": "not a legal topic!"})
    sink = KafkaDeadLetterSink(s, None)
    try:
        with pytest.raises(DeadLetterError, match="not a legal topic"):
            sink.send([DeadLetter("not_json", "pings", 0, 1)], b"{")
    finally:
        sink.close(1.0)


def test_wrong_partition_is_dead_lettered_on_the_broker(
    services: Settings, unique_name: str, tmp_path: Path
) -> None:
    """Hole 2 of issue #9 on the real broker: records a murmur2 producer places are accepted; the
    same device's records forced into the other partition (as another partitioner would put them)
    become one ``wrong_partition`` dead letter each, naming the partition the key belongs in."""
    from kafka.partitioner.default import murmur2

    s = _settings(services, unique_name, tmp_path)
    now = int(time.time() * 1000)
    device = DEVICES[0]
    home = (murmur2(device.encode()) & 0x7FFFFFFF) % s.topic_partitions
    away = 1 - home
    good = orjson.dumps({"device": device, **_ping(now - 1000)})
    stray = orjson.dumps({"device": device, "pings": [_ping(now - 2000), _ping(now - 3000)]})
    producer = make_producer(s)
    producer.send(s.topic_pings, key=device.encode(), value=good)  # default partitioner: home
    producer.send(s.topic_pings, key=device.encode(), value=stray, partition=away)
    producer.send(s.topic_pings, key=device.encode(), value=good, partition=away)
    producer.flush()
    producer.close()
    sink = KafkaDeadLetterSink(s, None)
    ingestor = Ingestor(s, load_service_area(s), KeyedHashPseudonymizer(), sink)
    counts, records, accepted = _ingest_all(s, ingestor, 3)
    sink.close()
    assert {r.partition for r in records if r.value == good} == {home, away}
    assert counts == Counter({"accepted": 1, "wrong_partition": 3}) and accepted == 1
    dlq = _read_all(s, s.topic_dlq, 2)
    _assert_nothing_raw(dlq)
    headers = sorted(({k: v.decode() for k, v in rec.headers} for rec in dlq), key=lambda h: h["pings"])
    assert [(h["reason"], h["pings"], h["source_partition"], h["expected_partition"]) for h in headers] == [
        ("wrong_partition", "1", str(away), str(home)),
        ("wrong_partition", "2", str(away), str(home)),
    ]
