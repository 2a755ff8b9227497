"""Ingest test doubles and record builders: a keyed-hash pseudonymizer, an in-memory DLQ sink,
Kafka records and ping messages around a fixed instant inside the bundled service area."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from kafka.consumer.fetcher import ConsumerRecord

from ingest import DeadLetter

NOW_MS = 1_764_201_600_000  # 2025-11-27 00:00:00 UTC
INSIDE = (23.13, 113.32)  # Tianhe, inside the bundled service area
OUTSIDE = (39.9, 116.4)  # Beijing


class KeyedHashPseudonymizer:
    """Test double of privacy.keys.pseudonyms.RotatingPseudonymizer: keyed BLAKE2b per (device, day)."""

    def __init__(self, key: bytes = b"test-key") -> None:
        self.key = key
        self.calls: list[tuple[bytes, int]] = []

    def pseudonymize(self, device: bytes, day: int) -> int:
        self.calls.append((device, day))
        digest = hashlib.blake2b(device + day.to_bytes(8, "big", signed=True), key=self.key, digest_size=8)
        return int.from_bytes(digest.digest(), "big")


class ListSink:
    """In-memory DeadLetterSink: keeps (letter, original bytes) pairs."""

    def __init__(self) -> None:
        self.letters: list[tuple[DeadLetter, bytes | None]] = []
        self.flushes = 0

    def send(self, letters: list[DeadLetter], original: bytes | None) -> None:
        self.letters.extend((letter, original) for letter in letters)

    def flush(self, timeout_s: float | None = None) -> None:
        self.flushes += 1


def record(value: bytes | None, offset: int = 0, key: bytes | None = b"dev-1", ts: int = NOW_MS) -> Any:
    size = len(value) if value is not None else -1
    return ConsumerRecord("pings", 0, None, offset, ts, 0, key, value, [], None, 0, size, 0)


def ping(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"ts": NOW_MS - 1000, "lat": INSIDE[0], "lon": INSIDE[1]}
    base.update(fields)
    return {k: v for k, v in base.items() if v is not ...}


def single(device: str = "dev-1", **fields: Any) -> bytes:
    return orjson.dumps({"device": device, **ping(**fields)})


def batch(pings: list[Any], device: str = "dev-1", **extra: Any) -> bytes:
    return orjson.dumps({"device": device, "pings": pings, **extra})
