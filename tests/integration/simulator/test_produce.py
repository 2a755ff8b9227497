"""The simulator against the real broker: everything produced arrives, keyed by device."""

from __future__ import annotations

import time
from collections import defaultdict

import orjson
import pytest
from kafka import TopicPartition

from aggregate.kafka.client import make_consumer
from hexpulse.errors import ServiceUnavailableError
from hexpulse.kafka import ensure_topics, make_admin
from hexpulse.settings import Settings
from simulator import SimConfig, generate, produce

pytestmark = pytest.mark.integration


def _read_all(settings: Settings, topic: str, expected: int) -> list[tuple[int, int, bytes, bytes]]:
    """(partition, record timestamp ms, key, value) of every record, reading until ``expected``."""
    consumer = make_consumer(settings, enable_auto_commit=False, consumer_timeout_ms=1000)
    try:
        deadline = time.monotonic() + 30
        while not (parts := consumer.partitions_for_topic(topic)) and time.monotonic() < deadline:
            time.sleep(0.2)
        tps = [TopicPartition(topic, p) for p in sorted(parts or ())]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list[tuple[int, int, bytes, bytes]] = []
        while len(out) < expected and time.monotonic() < deadline:
            for recs in consumer.poll(timeout_ms=500, max_records=5000).values():
                out.extend((r.partition, r.timestamp, r.key, r.value) for r in recs)
        return out
    finally:
        consumer.close()


def test_produce_delivers_every_message_keyed_by_device(services: Settings, unique_name: str) -> None:
    topic = f"sim-{unique_name}"
    ensure_topics(services, [topic])
    try:
        _produce_and_check(services, topic)
    finally:
        admin = make_admin(services)
        admin.delete_topics([topic])
        admin.close()


def _produce_and_check(services: Settings, topic: str) -> None:
    # speed 20: a 20 s run takes ~1 s and starts 19 s in the past, so event time catches up with
    # the clock only at the very end.
    sim = generate(
        SimConfig(devices=150, duration_s=20, interval_s=2, speed=20.0, malformed_rate=0.05), services
    )
    report = produce(services, sim, topic=topic, progress=None)
    assert report.messages == len(sim) == sim.truth.counts["messages"]

    records = _read_all(services, topic, len(sim))
    assert len(records) == len(sim)
    assert sorted(v for *_, v in records) == sorted(v for _, v in sim.messages())

    partitions_of: dict[bytes, set[int]] = defaultdict(set)
    bad_values = {
        v for i, (_, v) in enumerate(sim.messages()) if i in {m["index"] for m in sim.truth.malformed}
    }
    for partition, created_ms, key, value in records:
        partitions_of[key].add(partition)
        if value in bad_values:
            continue
        doc = orjson.loads(value)
        assert key == doc["device"].encode()
        # Paced production never sends a ping before its event time.
        assert max(p["ts"] for p in doc["pings"]) <= created_ms
    assert all(len(p) == 1 for p in partitions_of.values())
    assert len({p for ps in partitions_of.values() for p in ps}) == services.topic_partitions


def test_unreachable_broker_is_one_sentence(services: Settings) -> None:
    dead = services.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})
    sim = generate(SimConfig(devices=5, duration_s=20), dead)
    with pytest.raises(ServiceUnavailableError, match="127.0.0.1:1"):
        produce(dead, sim, progress=None, bootstrap_timeout_ms=2000)


def test_unreachable_broker_is_one_sentence_with_librdkafka(services: Settings) -> None:
    pytest.importorskip("confluent_kafka")
    from simulator.sender import make_sender

    dead = services.model_copy(update={"kafka_bootstrap": "127.0.0.1:1"})
    with pytest.raises(ServiceUnavailableError, match="127.0.0.1:1"):
        make_sender(dead, "pings", "librdkafka")


def test_the_fast_sender_is_the_default_and_keeps_kafka_pythons_partitions(
    services: Settings, unique_name: str
) -> None:
    pytest.importorskip("confluent_kafka")
    from hexpulse.kafka import make_producer
    from simulator.ground_truth import partition_of
    from simulator.sender import LibrdkafkaSender, make_sender

    topic = f"sim-parts-{unique_name}"
    ensure_topics(services, [topic])
    try:
        sender = make_sender(services, topic)
        assert isinstance(sender, LibrdkafkaSender)
        sender.close()
        # Where kafka-python's own default partitioner puts each device key is where the
        # simulator sends it (and where the ground truth expects it).
        ids = [f"sim-000000-{i:06x}" for i in range(40)]
        producer = make_producer(services)
        for d in ids:
            producer.send(topic, key=d.encode(), value=b"{}")
        producer.flush(timeout=30)
        producer.close()
        placed = {key: part for part, _, key, _ in _read_all(services, topic, len(ids))}
        expected = partition_of(ids, services.topic_partitions).tolist()
        assert [placed[d.encode()] for d in ids] == expected
    finally:
        admin = make_admin(services)
        admin.delete_topics([topic])
        admin.close()
