"""The DLQ sink across a Kafka broker killed with SIGKILL and restarted on its own log: flushes fail
while the broker is down, and once it is back a flush succeeds and every dead letter sent before,
during and after the outage is on the DLQ topic (at least once: a replaced producer sends the
unacknowledged ones again). The broker is a private one, never the shared one."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pytest
from kafka import TopicPartition

from aggregate.kafka.client import make_consumer
from hexpulse.kafka import ensure_topics
from hexpulse.settings import Settings
from ingest import DeadLetter, DeadLetterError, KafkaDeadLetterSink
from tests.support.kafka_broker import PrivateKafka

pytestmark = pytest.mark.integration


def _offsets(s: Settings) -> set[int]:
    """The ``source_offset`` headers on the DLQ topic (read until nothing new for 3 s)."""
    consumer = make_consumer(s, enable_auto_commit=False, group_id=None, consumer_timeout_ms=1000)
    try:
        parts = [TopicPartition(s.topic_dlq, p) for p in consumer.partitions_for_topic(s.topic_dlq) or {0}]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        seen: set[int] = set()
        last_new = time.monotonic()
        while time.monotonic() - last_new < 3.0:
            for recs in consumer.poll(timeout_ms=500).values():
                last_new = time.monotonic()
                seen.update(int(dict(r.headers)["source_offset"]) for r in recs)
        return seen
    finally:
        consumer.close()


def _letters(first: int, n: int) -> list[DeadLetter]:
    return [DeadLetter("not_json", "pings", 0, off) for off in range(first, first + n)]


def test_dead_letters_survive_a_broker_kill_and_restart(
    services: Settings, unique_name: str, tmp_path: Path
) -> None:
    broker = PrivateKafka(tmp_path / "kafka-state")
    broker.start()
    sink = None
    try:
        s = services.model_copy(
            update={"kafka_bootstrap": broker.bootstrap, "topic_dlq": f"{unique_name}.dlq"}
        )
        ensure_topics(s, [s.topic_dlq])
        sink = KafkaDeadLetterSink(s, None)
        sink.send(_letters(0, 50), b"{")
        sink.flush(10.0)
        for first in range(50, 20_050, 500):  # batches in flight when the broker dies
            sink.send(_letters(first, 500), b"{")
        broker.kill9()
        with pytest.raises(DeadLetterError):
            sink.flush(3.0)
        sink.send(_letters(20_050, 50), b"{")  # queued while no producer works
        time.sleep(60.0)  # as long as the full-size broker kill's outage
        broker.start()
        sink.send(_letters(20_100, 100), b"{")
        deadline = time.monotonic() + 120
        while True:
            try:
                sink.flush(10.0)
                break
            except DeadLetterError:
                assert time.monotonic() < deadline, "no flush succeeded within 120 s of the broker's return"
        assert _offsets(s) == set(range(20_200))
    finally:
        if sink is not None:
            with contextlib.suppress(DeadLetterError):
                sink.close(1.0)
        broker.stop()
