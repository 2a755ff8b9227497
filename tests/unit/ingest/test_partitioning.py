"""The partition check (issue #9, hole 2): murmur2 as Kafka computes it, and ingest dead-letters a
record that sits in a partition its key does not map to, whole, naming where it belongs."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from hexpulse.service_area import load_service_area
from hexpulse.settings import load_settings
from ingest import Ingestor
from ingest.partitioning import PartitionMap, murmur2, partition_of
from tests.support.ingest import NOW_MS, KeyedHashPseudonymizer, ListSink, batch, ping, record, single

PARTITIONS = 3


def kafka_partition(key: bytes, partitions: int) -> int:
    """kafka-python's DefaultPartitioner (the Java client's rule): positive murmur2 mod count."""
    return (kafka_python_murmur2(key) & 0x7FFFFFFF) % partitions


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=70), max_size=40), st.integers(1, 64))
def test_murmur2_matches_the_kafka_client(keys: list[bytes], partitions: int) -> None:
    want = [kafka_python_murmur2(k) & 0xFFFFFFFF for k in keys]
    assert murmur2(keys).tolist() == want
    expected = [kafka_partition(k, partitions) for k in keys]
    assert partition_of(keys, partitions).tolist() == expected
    cache = PartitionMap(partitions, cache_entries=7)  # tiny: exercises the start-over path
    assert cache.expected(keys).tolist() == expected
    assert cache.expected(keys[::-1]).tolist() == expected[::-1]


JAVA_CASES = {  # org.apache.kafka.common.utils.UtilsTest#testMurmur2 (signed 32-bit results)
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_the_java_client_values() -> None:
    keys = list(JAVA_CASES)
    assert murmur2(keys).tolist() == [v & 0xFFFFFFFF for v in JAVA_CASES.values()]
    assert murmur2([]).size == 0


def _device_in(partition: int, avoid: int | None = None) -> str:
    """A device id whose key maps to ``partition`` (found by trying names in order)."""
    for i in range(1000):
        dev = f"dev-{i}"
        if kafka_partition(dev.encode(), PARTITIONS) == partition and i != avoid:
            return dev
    raise AssertionError("no such device")


def test_wrong_partition_is_dead_lettered() -> None:
    s = load_settings(topic_partitions=PARTITIONS)
    sink = ListSink()
    ingestor = Ingestor(s, load_service_area(s), KeyedHashPseudonymizer(), sink)
    here, there = _device_in(1), _device_in(2)
    records = [
        record(single(here), offset=10, key=here.encode()),
        record(batch([ping(), ping(ts=NOW_MS - 2000), ping(lat=91.0)], device=there), 11, there.encode()),
        record(single(there, lat=91.0), offset=12, key=there.encode()),  # invalid too: the partition wins
        record(batch([ping(ts=NOW_MS - 3000), ping(ts=NOW_MS - 4000)], device=here), 13, here.encode()),
    ]
    out = ingestor.ingest("pings", 1, records, NOW_MS)
    assert out.offset.tolist() == [10, 13, 13]
    assert out.counts == {"accepted": 3, "wrong_partition": 4}
    assert out.pings_in == 7 and out.rejected == 4
    letters = [letter for letter, _ in sink.letters]
    assert [(x.reason, x.offset, x.index, x.pings, x.expected_partition) for x in letters] == [
        ("wrong_partition", 11, None, 3, 2),
        ("wrong_partition", 12, None, 1, 2),
    ]
    headers = dict(letters[0].headers())
    assert headers["expected_partition"] == b"2" and headers["source_partition"] == b"1"
    assert sink.letters[0][1] == records[1].value  # the original travels (sealed, by the real sink)


def test_every_key_belongs_somewhere() -> None:
    """The same records, each read in the partition its key maps to: nothing is rejected."""
    s = load_settings(topic_partitions=PARTITIONS)
    ingestor = Ingestor(s, load_service_area(s), KeyedHashPseudonymizer(), ListSink())
    devices = [f"phone-{i}" for i in range(60)]
    by_partition: dict[int, list[object]] = {}
    for i, dev in enumerate(devices):
        by_partition.setdefault(kafka_partition(dev.encode(), PARTITIONS), []).append(
            record(single(dev), offset=i, key=dev.encode())
        )
    total = 0
    for partition, records in by_partition.items():
        out = ingestor.ingest("pings", partition, records, NOW_MS)  # type: ignore[arg-type]
        assert out.counts == {"accepted": len(records)}
        total += len(out)
    assert total == len(devices)
    assert np.unique(list(by_partition)).size == PARTITIONS
