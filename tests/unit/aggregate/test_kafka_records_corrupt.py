"""After a corrupt batch, the fetcher's records object must be spent (kafka-python 3.0.12 keeps
it pending and its next poll() never returns); hexpulse's raises CorruptBatchError naming where."""

from __future__ import annotations

import pytest
from kafka.consumer.fetcher import Fetcher
from kafka.errors import CorruptRecordError
from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder
from kafka.structs import TopicPartition

from aggregate.kafka.records import CorruptBatchError, DrainingPartitionRecords, FastPartitionRecords

TP = TopicPartition("pings", 2)


def fetched(good: int, bad: int) -> bytes:
    """``good`` one-record batches from offset 40, then a batch of ``bad`` records with a flipped byte."""
    data = b""
    for i in range(good + 1):
        builder = MemoryRecordsBuilder(2, 0, batch_size=1 << 16, offset=40 + i)
        for j in range(1 if i < good else bad):
            builder.append(1_700_000_000_000 + j, b"device-%d" % j, b'{"v": 1}')
        builder.close()
        data += bytes(builder.buffer())
    flipped = bytearray(data)
    flipped[-3] ^= 0xFF  # inside the last batch's records, which its CRC covers
    return bytes(flipped)


def test_kafka_pythons_records_stay_pending_after_the_error() -> None:
    """The bug the guard exists for: spent, yet truthy, so fetched_records() loops on it."""
    part = Fetcher.PartitionRecords(40, TP, MemoryRecords(fetched(2, 3)))
    assert [r.offset for r in part.take(5)] == [40, 41]
    with pytest.raises(CorruptRecordError):
        part.take(5)
    assert part and part.take(5) == []


@pytest.mark.parametrize("cls", [DrainingPartitionRecords, FastPartitionRecords])
def test_hexpulse_records_are_spent_and_name_the_batch(cls: type) -> None:
    part = cls(40, TP, MemoryRecords(fetched(2, 3)))
    delivered = []
    with pytest.raises(CorruptBatchError) as err:
        while part:
            delivered += [r.offset for r in part.take(5)]
    assert delivered == [40, 41]
    assert not part  # the fetcher fetches offset 42 again instead of spinning
    assert err.value.topic_partition == TP and err.value.offset == 42
    assert isinstance(err.value, CorruptRecordError)  # what kafka-python callers catch
