"""Which partition a key belongs in: Kafka's default partitioner (murmur2), vectorized and cached.

Bounding is per partition, so a device must live in exactly one partition: the one its key maps
to under the partitioner producers are required to use (murmur2 of the key bytes, positive part,
modulo the partition count: the Java client's and kafka-python's default; librdkafka needs
``partitioner=murmur2_random``). A record anywhere else is dead-lettered as ``wrong_partition``
(docs/PINGS.md), so one device can never be counted in two partitions of one window.

The check runs on every message, so it must cost little next to decoding one (~2.7 µs for a
single ping): a bounded dict answers repeat keys (a device sends many messages), and the misses
of a poll are hashed together with numpy, one array operation per 4-byte block for all keys of
the same length.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat

import numpy as np
import numpy.typing as npt

U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]

_SEED = 0x9747B28C
_M = np.uint32(0x5BD1E995)
_R = np.uint32(24)
_S13 = np.uint32(13)
_S15 = np.uint32(15)
_POSITIVE = np.uint32(0x7FFFFFFF)

CACHE_ENTRIES = 1 << 17
"""Most keys remembered (a few MB); the cache starts over when full, which costs one poll's hashing."""


def _hash_rows(buf: npt.NDArray[np.uint8], length: int) -> U32:
    """murmur2 of each row of ``buf`` (every key ``length`` bytes long), as unsigned 32-bit."""
    h = np.full(buf.shape[0], (_SEED ^ length) & 0xFFFFFFFF, dtype=np.uint32)
    blocks = length // 4
    if blocks:
        k = np.ascontiguousarray(buf[:, : 4 * blocks]).view("<u4") * _M  # a copy: buf is read-only
        k ^= k >> _R
        k *= _M
        for j in range(blocks):
            h *= _M
            h ^= k[:, j]
    tail = length & 3
    if tail:
        rest = buf[:, 4 * blocks :].astype(np.uint32)
        if tail == 3:
            h ^= rest[:, 2] << np.uint32(16)
        if tail >= 2:
            h ^= rest[:, 1] << np.uint32(8)
        h ^= rest[:, 0]
        h *= _M
    h ^= h >> _S13
    h *= _M
    h ^= h >> _S15
    return h


def murmur2(keys: Sequence[bytes]) -> U32:
    """Kafka's murmur2 (seed 0x9747b28c) of every key, as the unsigned 32-bit value."""
    n = len(keys)
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=n)
    out = np.empty(n, dtype=np.uint32)
    if n == 0:
        return out
    first = int(lengths[0])
    if bool(np.all(lengths == first)):
        return _hash_rows(np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(n, first), first)
    for length in np.unique(lengths).tolist():
        at = np.flatnonzero(lengths == length)
        group = [keys[i] for i in at.tolist()]
        rows = np.frombuffer(b"".join(group), dtype=np.uint8).reshape(len(group), length)
        out[at] = _hash_rows(rows, length)
    return out


def partition_of(keys: Sequence[bytes], partitions: int) -> I64:
    """The partition Kafka's default partitioner picks for each key among ``partitions``."""
    return ((murmur2(keys) & _POSITIVE) % np.uint32(partitions)).astype(np.int64)


class PartitionMap:
    """Expected partition of keys for one partition count, with a bounded cache of answers."""

    def __init__(self, partitions: int, cache_entries: int = CACHE_ENTRIES) -> None:
        if partitions < 1:
            raise ValueError("a topic has at least one partition")
        self.partitions = partitions
        self._cache: dict[bytes, int] = {}
        self._limit = cache_entries

    def expected(self, keys: Sequence[bytes]) -> I64:
        """The partition each key belongs in (one entry per key, same order)."""
        n = len(keys)
        cached = np.fromiter(map(self._cache.get, keys, repeat(-1)), dtype=np.int64, count=n)
        missing = np.flatnonzero(cached < 0)
        if missing.size:
            todo = [keys[i] for i in missing.tolist()]
            found = partition_of(todo, self.partitions)
            cached[missing] = found
            if len(self._cache) + len(todo) > self._limit:
                self._cache.clear()
            self._cache.update(zip(todo, found.tolist(), strict=True))
        return cached
