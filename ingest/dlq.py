"""Dead letters: one record per rejected ping (or per unreadable message) on ``settings.topic_dlq``.

A DLQ record carries no key and, in clear, only the reason and the provenance as headers:

=================  ==========================================================================
``reason``         a :class:`ingest.contract.Reason` value
``source_topic``   topic of the rejected message
``source_partition`` / ``source_offset``  where it was read (decimal ASCII)
``index``          position of the rejected ping in its batch (only for per-ping rejections)
``pings``          number of pings a whole-message rejection carried, when it could be read
``expected_partition``  where the record's key belongs (only for ``wrong_partition``)
``key_id``         id of the sealing key (only when a :class:`Sealer` is configured)
``dlq_v``          version of this record layout (``1``)
=================  ==========================================================================

The value is the original message sealed (encrypted) by the :class:`Sealer`, or empty without one:
raw device ids and coordinates never appear in clear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from kafka import KafkaProducer
from kafka.errors import KafkaError

from hexpulse.settings import Settings
from ingest.exceptions import DeadLetterError
from ingest.metrics import DLQ_RECORDS

DLQ_RECORD_VERSION = b"1"


@runtime_checkable
class Sealer(Protocol):
    def seal(self, plaintext: bytes) -> tuple[str, bytes]:
        """Encrypt ``plaintext``; return (key id, ciphertext). See ``privacy.keys.sealing.PayloadSealer``."""
        ...


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected ping (``index`` set) or one rejected message (``index`` is None)."""

    reason: str
    topic: str
    partition: int
    offset: int
    index: int | None = None
    pings: int | None = None
    expected_partition: int | None = None

    def headers(self) -> list[tuple[str, bytes]]:
        out = [
            ("reason", self.reason.encode()),
            ("source_topic", self.topic.encode()),
            ("source_partition", str(self.partition).encode()),
            ("source_offset", str(self.offset).encode()),
            ("dlq_v", DLQ_RECORD_VERSION),
        ]
        if self.index is not None:
            out.append(("index", str(self.index).encode()))
        if self.pings is not None:
            out.append(("pings", str(self.pings).encode()))
        if self.expected_partition is not None:
            out.append(("expected_partition", str(self.expected_partition).encode()))
        return out


@runtime_checkable
class DeadLetterSink(Protocol):
    """Where :class:`ingest.Ingestor` sends rejections.

    ``send`` must not block on the network; ``flush`` blocks until every record sent so far is
    durable and raises :class:`ingest.exceptions.DeadLetterError` if any was not. The consumer
    calls ``flush`` before committing offsets.
    """

    def send(self, letters: list[DeadLetter], original: bytes | None) -> None:
        """Send ``letters`` that all come from the message whose raw value is ``original``."""
        ...

    def flush(self, timeout_s: float | None = None) -> None: ...


class KafkaDeadLetterSink:
    """Asynchronous DLQ producer (kafka-python, lingering) with optional payload sealing."""

    def __init__(
        self,
        settings: Settings,
        sealer: Sealer | None = None,
        producer: KafkaProducer | None = None,
    ) -> None:
        from hexpulse.kafka import make_producer

        self._topic = settings.topic_dlq
        self._sealer = sealer
        self._owns_producer = producer is None
        self._producer = producer or make_producer(settings, linger_ms=50)
        self._pending: list[Any] = []

    def send(self, letters: list[DeadLetter], original: bytes | None) -> None:
        if not letters:
            return
        value = b""
        key_id: bytes | None = None
        if self._sealer is not None:
            # One seal per message: every dead letter of a batch carries the same sealed original.
            kid, value = self._sealer.seal(original or b"")
            key_id = kid.encode()
        for letter in letters:
            headers = letter.headers()
            if key_id is not None:
                headers.append(("key_id", key_id))
            try:
                self._pending.append(self._producer.send(self._topic, value=value, headers=headers))
            except (KafkaError, ValueError) as exc:  # ValueError: e.g. an illegal topic name
                raise DeadLetterError(f"cannot queue a DLQ record on {self._topic}: {exc}") from None
            DLQ_RECORDS.labels(reason=letter.reason).inc()

    def flush(self, timeout_s: float | None = 30.0) -> None:
        try:
            self._producer.flush(timeout=timeout_s)
        except KafkaError as exc:
            raise DeadLetterError(f"the DLQ topic {self._topic} did not acknowledge: {exc}") from None
        pending, self._pending = self._pending, []
        failed = [f for f in pending if not f.is_done or f.failed()]
        if failed:
            # The caller must not commit and must replay from its last commit, which re-sends them.
            raise DeadLetterError(
                f"{len(failed)} DLQ records on {self._topic} were not acknowledged; do not commit offsets"
            )

    def close(self, timeout_s: float = 10.0) -> None:
        self.flush(timeout_s)
        if self._owns_producer:
            self._producer.close(timeout=timeout_s)
