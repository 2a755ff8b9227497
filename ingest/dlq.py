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

import contextlib
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


@dataclass(slots=True)
class _Queued:
    """A DLQ record sent but not yet acknowledged: kept so a replaced producer can send it again."""

    value: bytes
    headers: list[tuple[str, bytes]]
    future: Any  # kafka-python's FutureRecordMetadata; None when not (yet) handed to a producer


class KafkaDeadLetterSink:
    """Asynchronous DLQ producer (kafka-python, lingering) with optional payload sealing.

    A producer it made itself is replaced after a failed flush: kafka-python's producer can stay
    wedged after a broker is killed and restarted (every later flush timed out in the full-size
    broker kill, tests/faults/test_broker_kill.py), as other clients' producers are known to. The
    records it had not acknowledged are sent again on the new one, so a successful flush still
    means every record sent so far is durable (a record may then be in the DLQ twice: dead letters
    are at-least-once, as after any replay)."""

    def __init__(
        self,
        settings: Settings,
        sealer: Sealer | None = None,
        producer: KafkaProducer | None = None,
    ) -> None:
        from hexpulse.kafka import make_producer

        self._settings = settings
        self._topic = settings.topic_dlq
        self._sealer = sealer
        self._owns_producer = producer is None
        self._producer: KafkaProducer | None = producer or make_producer(settings, linger_ms=50)
        self._pending: list[_Queued] = []
        self.replaced = 0  # producers replaced after failed flushes (tests, logs)

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
            queued = _Queued(value, headers, None)
            if self._producer is not None:  # else the next flush sends it on a new producer
                queued.future = self._send(self._producer, queued)
            self._pending.append(queued)
            DLQ_RECORDS.labels(reason=letter.reason).inc()

    def _send(self, producer: KafkaProducer, queued: _Queued) -> Any:
        try:
            return producer.send(self._topic, value=queued.value, headers=queued.headers)
        except (KafkaError, ValueError) as exc:  # ValueError: e.g. an illegal topic name
            raise DeadLetterError(f"cannot queue a DLQ record on {self._topic}: {exc}") from None

    def _connected(self) -> KafkaProducer:
        """The producer, made anew (and handed the unsent records) after :meth:`_drop_producer`."""
        if self._producer is None:
            from hexpulse.errors import ServiceUnavailableError
            from hexpulse.kafka import make_producer

            try:
                self._producer = make_producer(self._settings, linger_ms=50)
            except ServiceUnavailableError as exc:
                raise DeadLetterError(f"cannot reconnect to the DLQ topic {self._topic}: {exc}") from None
            self.replaced += 1
        for queued in self._pending:
            if queued.future is None:
                queued.future = self._send(self._producer, queued)
        return self._producer

    def _drop_producer(self) -> None:
        """Forget the producer (closed without waiting) and mark every unacknowledged record unsent."""
        if not self._owns_producer or self._producer is None:
            return
        old, self._producer = self._producer, None
        with contextlib.suppress(KafkaError):  # it is being discarded because it no longer works
            old.close(timeout=0)
        self._pending = [q for q in self._pending if not (q.future is not None and q.future.succeeded())]
        for queued in self._pending:
            queued.future = None

    def flush(self, timeout_s: float | None = 30.0) -> None:
        try:
            self._connected().flush(timeout=timeout_s)
        except KafkaError as exc:
            self._drop_producer()
            raise DeadLetterError(f"the DLQ topic {self._topic} did not acknowledge: {exc}") from None
        failed = [q for q in self._pending if not q.future.is_done or q.future.failed()]
        if failed:
            self._drop_producer()
            if not self._owns_producer:  # nothing to resend them on: the caller replays instead
                self._pending = []
            # The caller must not commit and must replay from its last commit, which re-sends them.
            raise DeadLetterError(
                f"{len(failed)} DLQ records on {self._topic} were not acknowledged; do not commit offsets"
            )
        self._pending = []

    def close(self, timeout_s: float = 10.0) -> None:
        self.flush(timeout_s)
        if self._owns_producer and self._producer is not None:
            self._producer.close(timeout=timeout_s)
