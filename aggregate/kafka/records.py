"""A faster decoder of fetched record batches for kafka-python's consumer.

kafka-python turns every fetched record into Python objects in pure Python: a ``DefaultRecord``
with seven varints decoded by function calls, CRC checks per record, then a ``ConsumerRecord``.
That costs ~5 µs per record here, more than everything hexpulse does with a single-ping message
(BENCHMARKS.md, "Pipeline"). :class:`FastPartitionRecords` replaces only that step: it decodes each
plain v2 batch (the format every broker since Kafka 0.11 writes) in one tight loop and yields the
same ``ConsumerRecord`` tuples, so offsets, positions, pausing and rebalances stay kafka-python's.
Any batch it does not handle byte for byte (the legacy v0/v1 formats, control batches,
transactional batches under read_committed, custom deserializers) makes it hand the whole fetch to
kafka-python's own decoder. ``tests/unit/aggregate/test_kafka_records.py`` (generated and corrupted batches)
and ``tests/integration/aggregate/test_kafka_records.py`` (a real broker) check that both decoders return
identical records and positions. One difference is deliberate: a batch is decoded whole before its
first record is yielded, so a corrupt record makes the fetch fail without first delivering the
records ahead of it in that batch (both raise ``CorruptRecordError``).

Both also fix what kafka-python 3.0.12 does after a corrupt batch (:class:`DrainingPartitionRecords`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord, Fetcher
from kafka.errors import CorruptRecordError
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.util import decode_varint

from hexpulse.logs import log_event

_log = logging.getLogger(__name__)

_READ_UNCOMMITTED = 0
_LOG_APPEND_TIME = 1


class _Batches:
    """The ``next_batch()`` interface of kafka-python's ``MemoryRecords`` over batches read already."""

    def __init__(self, batches: list[Any]) -> None:
        self._batches = iter(batches)

    def next_batch(self) -> Any:
        return next(self._batches, None)


def _fast(batch: Any, isolation_level: int) -> bool:
    """Whether :func:`decode_batch` handles ``batch`` exactly as kafka-python would."""
    if type(batch) is not DefaultRecordBatch or batch.is_control_batch:
        return False
    return not (batch.is_transactional and isolation_level != _READ_UNCOMMITTED)


def decode_batch(batch: DefaultRecordBatch, topic: str, partition: int) -> tuple[list[ConsumerRecord], int]:
    """Every record of one v2 batch (CRC already checked) as kafka-python's ``ConsumerRecord``, and
    the sum of their body lengths (what kafka-python's fetch metrics count as bytes read)."""
    # kafka-python API beyond its docs: these private fields hold the (decompressed) record bytes.
    batch._maybe_uncompress()
    buf = bytes(batch._buffer)  # slices of bytes are bytes: one copy per value, not two
    pos = batch._pos
    base_offset = batch.base_offset
    first_ts = batch.first_timestamp
    ts_type = batch.timestamp_type
    fixed_ts = batch.max_timestamp if ts_type == _LOG_APPEND_TIME else None
    epoch = batch.leader_epoch
    out: list[ConsumerRecord] = []
    body = 0
    add = out.append
    new = tuple.__new__  # skips the namedtuple's Python-level __new__ (13 arguments per record)
    try:
        for _ in range(batch.records_count):
            # Varints inlined (zig-zag; one or two bytes for every field of a small record): a call
            # per field would double the cost.
            b = buf[pos]
            if b < 0x80:
                length, pos = (b >> 1) ^ -(b & 1), pos + 1
            elif buf[pos + 1] < 0x80:
                b = (b & 0x7F) | (buf[pos + 1] << 7)
                length, pos = (b >> 1) ^ -(b & 1), pos + 2
            else:
                length, pos = decode_varint(buf, pos)
            end = pos + length
            body += length
            if buf[pos] >= 0x80:  # kafka-python reads the (unused) attributes byte as a varint and fails
                raise CorruptRecordError(f"invalid record attributes in batch at offset {base_offset}")
            pos += 1
            b = buf[pos]
            if b < 0x80:
                ts_delta, pos = (b >> 1) ^ -(b & 1), pos + 1
            elif buf[pos + 1] < 0x80:
                b = (b & 0x7F) | (buf[pos + 1] << 7)
                ts_delta, pos = (b >> 1) ^ -(b & 1), pos + 2
            else:
                ts_delta, pos = decode_varint(buf, pos)
            b = buf[pos]
            if b < 0x80:
                offset_delta, pos = (b >> 1) ^ -(b & 1), pos + 1
            elif buf[pos + 1] < 0x80:
                b = (b & 0x7F) | (buf[pos + 1] << 7)
                offset_delta, pos = (b >> 1) ^ -(b & 1), pos + 2
            else:
                offset_delta, pos = decode_varint(buf, pos)
            b = buf[pos]
            if b < 0x80:
                key_len, pos = (b >> 1) ^ -(b & 1), pos + 1
            elif buf[pos + 1] < 0x80:
                b = (b & 0x7F) | (buf[pos + 1] << 7)
                key_len, pos = (b >> 1) ^ -(b & 1), pos + 2
            else:
                key_len, pos = decode_varint(buf, pos)
            if key_len >= 0:
                key: bytes | None = buf[pos : pos + key_len]
                pos += key_len
            else:
                key = None
            b = buf[pos]
            if b < 0x80:
                value_len, pos = (b >> 1) ^ -(b & 1), pos + 1
            elif buf[pos + 1] < 0x80:
                b = (b & 0x7F) | (buf[pos + 1] << 7)
                value_len, pos = (b >> 1) ^ -(b & 1), pos + 2
            else:
                value_len, pos = decode_varint(buf, pos)
            if value_len >= 0:
                value: bytes | None = buf[pos : pos + value_len]
                pos += value_len
            else:
                value = None
            if buf[pos] == 0:  # no headers: the common case
                pos += 1
                headers: list[tuple[str, bytes | None]] = []
                header_size = -1
            else:
                headers, pos = _headers(buf, pos)
                # -1 as kafka-python when a count written in more than one byte is still zero.
                header_size = (
                    sum(len(k.encode()) + (len(v) if v is not None else 0) for k, v in headers)
                    if headers
                    else -1
                )
            if pos != end:
                raise CorruptRecordError(f"invalid record size in batch at offset {base_offset}")
            add(
                new(
                    ConsumerRecord,
                    (
                        topic,
                        partition,
                        epoch,
                        base_offset + offset_delta,
                        first_ts + ts_delta if fixed_ts is None else fixed_ts,
                        ts_type,
                        key,
                        value,
                        headers,
                        None,
                        key_len if key_len >= 0 else -1,
                        value_len if value_len >= 0 else -1,
                        header_size,
                    ),
                )
            )
    except (IndexError, ValueError) as err:
        raise CorruptRecordError(
            f"invalid record structure in batch at offset {base_offset}: {err!r}"
        ) from err
    if pos != len(buf):
        raise CorruptRecordError(
            f"{len(buf) - pos} unconsumed bytes after the records of batch {base_offset}"
        )
    return out, body


def _headers(buf: bytes, pos: int) -> tuple[list[tuple[str, bytes | None]], int]:
    count, pos = decode_varint(buf, pos)
    if count < 0:
        raise CorruptRecordError(f"invalid number of record headers {count}")
    headers: list[tuple[str, bytes | None]] = []
    for _ in range(count):
        key_len, pos = decode_varint(buf, pos)
        if key_len < 0:
            raise CorruptRecordError(f"invalid negative header key size {key_len}")
        key = buf[pos : pos + key_len].decode("utf-8")
        pos += key_len
        value_len, pos = decode_varint(buf, pos)
        value = buf[pos : pos + value_len] if value_len >= 0 else None
        pos += max(value_len, 0)
        headers.append((key, value))
    return headers, pos


class CorruptBatchError(CorruptRecordError):  # type: ignore[misc]
    """A fetched record batch failed its CRC or structure check: its partition cannot be read past
    ``offset`` (the first offset not yet delivered) until the log is repaired."""

    def __init__(self, topic_partition: Any, offset: int, detail: str) -> None:
        super().__init__(detail)
        self.topic_partition = topic_partition
        self.offset = offset


class DrainingPartitionRecords(Fetcher.PartitionRecords):  # type: ignore[misc]
    """kafka-python's ``PartitionRecords``, drained when its decoder raises.

    kafka-python 3.0.12 keeps the records object whose decoder raised (e.g. on a batch that fails
    its CRC): its iterator is spent but the object still counts as pending, so the next ``poll()``
    loops on it forever at full CPU, and neither SIGTERM nor the group notices (found with a
    damaged log segment on a real broker). Drained, the next poll fetches the batch again and
    raises again, as the Java consumer does, as :class:`CorruptBatchError` naming the partition.
    """

    def take(self, n: int | None = None) -> list[ConsumerRecord]:
        try:
            records: list[ConsumerRecord] = super().take(n)
        except CorruptRecordError as exc:
            offset = self.next_fetch_offset
            self.drain()
            if isinstance(exc, CorruptBatchError):
                raise
            detail = str(exc.args[0]) if exc.args else str(exc)
            raise CorruptBatchError(self.topic_partition, offset, detail) from exc
        except Exception:
            self.drain()
            raise
        return records


class FastPartitionRecords(DrainingPartitionRecords):
    """kafka-python's ``PartitionRecords`` with :func:`decode_batch` for plain v2 batches."""

    def _unpack_records(
        self, tp: Any, records: Any, key_deserializer: Any, value_deserializer: Any
    ) -> Iterator[ConsumerRecord]:
        batches = []
        batch = records.next_batch()
        while batch is not None:
            batches.append(batch)
            batch = records.next_batch()
        if key_deserializer or value_deserializer or not all(_fast(b, self.isolation_level) for b in batches):
            yield from super()._unpack_records(tp, _Batches(batches), key_deserializer, value_deserializer)
            return
        for batch in batches:
            if self.check_crcs and not batch.validate_crc():
                raise CorruptRecordError(
                    f"Record batch for partition {self.topic_partition} at offset {batch.base_offset}"
                    " failed crc check"
                )
            self.leader_epoch = batch.leader_epoch
            decoded, body = decode_batch(batch, tp.topic, tp.partition)
            self.records_read += len(decoded)
            self.bytes_read += body
            for record in decoded:
                self.next_fetch_offset = record.offset + 1
                yield record
        if batches:
            # v2 keeps the last offset even when compaction removed the last record: skip past it.
            self.next_fetch_offset = batches[-1].next_offset
        self.drain()


_COMPATIBLE = (
    {"_buffer", "_pos"} <= set(DefaultRecordBatch.__slots__)
    and hasattr(DefaultRecordBatch, "_maybe_uncompress")
    and all(hasattr(Fetcher.PartitionRecords, a) for a in ("_unpack_records", "take", "drain"))
    and hasattr(Fetcher, "send_fetches")
)
"""Whether the installed kafka-python has the internals this module builds on (checked once)."""


def guard_corrupt_batches(consumer: KafkaConsumer) -> bool:
    """Make ``consumer`` use :class:`DrainingPartitionRecords` (kafka-python's own decoder)."""
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not _COMPATIBLE:
        log_event(_log, "corrupt-batch guard unavailable", logging.WARNING, reason="kafka-python internals")
        return False
    fetcher.PartitionRecords = DrainingPartitionRecords
    return True


def use_fast_records(consumer: KafkaConsumer) -> bool:
    """Make ``consumer`` decode fetched batches with :class:`FastPartitionRecords`.

    Returns False (and leaves the consumer as it is) when kafka-python's internals have changed.
    """
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None or not _COMPATIBLE:
        log_event(_log, "fast record decoding unavailable", logging.WARNING, reason="kafka-python internals")
        return False
    fetcher.PartitionRecords = FastPartitionRecords
    return True


def prefetch(consumer: KafkaConsumer) -> None:
    """Send the next fetch requests now, so they are answered while this poll's records are handled.

    kafka-python 3.0 sends a fetch only at the start of ``poll()`` when nothing is buffered, and not
    again after the response it then waited for, so a consumer that drains every poll waits one
    broker round trip per poll (~25 ms here, a third of the batched pipeline's time). Partitions
    with buffered records or a fetch in flight are skipped by kafka-python itself.
    """
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is not None and _COMPATIBLE:
        fetcher.send_fetches()
