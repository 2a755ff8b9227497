"""FastPartitionRecords on the real broker: a topic read with and without it gives equal records.

Each partition is read on its own (one fetch in flight at a time), so the records every poll
returns and the position after it depend only on the stored batches, not on network timing.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.record.default_records import DefaultRecordBatch

import aggregate.kafka.records as kafka_records
from aggregate.kafka.client import make_consumer
from hexpulse.kafka import ensure_topics, make_producer
from hexpulse.settings import Settings

pytestmark = pytest.mark.integration

PARTITIONS = 2
RECORDS = 3000
Poll = tuple[list[ConsumerRecord], int]  # records of one poll, position after it


def _produce(settings: Settings, topic: str) -> tuple[Counter[tuple[Any, ...]], dict[int, int]]:
    """Mixed records into both partitions: (partition, key, value, headers) counts, end offsets."""
    plain = make_producer(settings, linger_ms=5)
    gzipped = make_producer(settings, linger_ms=5, compression_type="gzip")
    sent: Counter[tuple[Any, ...]] = Counter()
    futures = []
    try:
        for i in range(RECORDS):
            key = None if i % 3 == 0 else f"device-{i % 101}".encode()
            value: bytes | None = b'{"i": %d, "pad": "%s"}' % (i, b"x" * (i % 200))
            if key is not None and i % 41 == 0:
                value = None  # tombstone (kafka-python refuses one without a key)
            elif i % 997 == 0:
                value = b"y" * 20_000  # multi-byte varints for lengths
            headers = [("seq", str(i).encode()), ("ü-trace", b"")] if i % 5 == 0 else []
            producer = gzipped if i % 4 == 3 else plain
            partition = i % PARTITIONS
            ts = 1_700_000_000_000 + i * 1_000 if i % 7 else None  # else the producer's clock
            futures.append(
                producer.send(
                    topic, value=value, key=key, headers=headers, partition=partition, timestamp_ms=ts
                )
            )
            sent[(partition, key, value, tuple(headers))] += 1
        plain.flush(timeout=30)
        gzipped.flush(timeout=30)
    finally:
        plain.close()
        gzipped.close()
    acked = dict.fromkeys(range(PARTITIONS), 0)
    for future in futures:
        meta = future.get(timeout=0)
        acked[meta.partition] = max(acked[meta.partition], meta.offset + 1)
    consumer = make_consumer(settings, group_id=None)
    try:
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
    finally:
        consumer.close()
    assert {tp.partition: end for tp, end in ends.items()} == acked  # the log end, not a batch's base
    return sent, acked


def _read(settings: Settings, topic: str, ends: dict[int, int], fast: bool) -> list[Poll]:
    """Every non-empty poll of each partition in turn: at most 7 records, often mid-batch.

    Each partition is read from its beginning and again from offsets inside batches (the broker
    returns the whole batch; the records before the offset must be skipped).
    """
    consumer = make_consumer(
        settings,
        group_id=None,
        enable_auto_commit=False,
        max_poll_records=7,
        fetch_max_wait_ms=50,  # a fetch at the end of the log, in flight when seeking, returns soon
    )
    if fast:
        kafka_records.use_fast_records(consumer)
    polls: list[Poll] = []
    try:
        for partition in range(PARTITIONS):
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            for start in (None, 333, ends[partition] - 50):
                if start is None:
                    consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, start)
                deadline = time.monotonic() + 60  # guards against a hang, not a speed check
                while consumer.position(tp) < ends[partition]:
                    assert time.monotonic() < deadline, f"partition {partition} not read to the end"
                    got = consumer.poll(timeout_ms=500)
                    if got:
                        polls.append((got[tp], consumer.position(tp)))
    finally:
        consumer.close()
    return polls


# LogAppendTime batches carry the broker's time once, in the batch header, for every record.
@pytest.mark.parametrize("timestamps", ["CreateTime", "LogAppendTime"])
def test_fast_records_read_the_topic_as_kafka_python(
    services: Settings, unique_name: str, monkeypatch: pytest.MonkeyPatch, timestamps: str
) -> None:
    settings = services.model_copy(
        update={"topic_partitions": PARTITIONS, "topic_timestamp_type": timestamps}
    )
    topic = f"fast-records-{unique_name}"
    ensure_topics(settings, [topic])
    sent, ends = _produce(settings, topic)

    codecs: Counter[int] = Counter()

    def spy(batch: DefaultRecordBatch, topic: str, partition: int) -> list[ConsumerRecord]:
        codecs[batch.compression_type] += 1
        return decode(batch, topic, partition)

    decode = kafka_records.decode_batch
    monkeypatch.setattr(kafka_records, "decode_batch", spy)

    expected = _read(settings, topic, ends, fast=False)
    assert not codecs
    got = _read(settings, topic, ends, fast=True)
    # Both compressions reached the fast loop (it did not hand every fetch to kafka-python).
    assert codecs[DefaultRecordBatch.CODEC_NONE] > 0
    assert codecs[DefaultRecordBatch.CODEC_GZIP] > 0

    assert [len(records) for records, _ in got] == [len(records) for records, _ in expected]
    assert [position for _, position in got] == [position for _, position in expected]
    assert got == expected
    from_beginning = [r for polls, _ in expected for r in polls if r.offset < 333]
    assert len(from_beginning) == 333 * PARTITIONS  # the re-reads skipped the records before 333
    records = {(r.partition, r.offset): r for polls, _ in expected for r in polls}
    assert Counter((r.partition, r.key, r.value, tuple(r.headers)) for r in records.values()) == sent
    assert any(len(polls) < 7 for polls, _ in expected)  # takes ended at fetch boundaries too
    log_append = {r.timestamp_type for r in records.values()} == {1}
    assert log_append == (timestamps == "LogAppendTime")
