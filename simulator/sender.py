"""Where the simulator's records go: librdkafka (confluent-kafka) when installed, else kafka-python.

Measured on this machine (benchmarks/bench_simulator.py, BENCHMARKS.md "Simulator"): kafka-python
spends ~53 µs of CPU per record (send + flush), so the city's ~10,000 messages/s at real density
take half a core and fall behind next to the pipeline; librdkafka spends ~5.6 µs. The city's
messages cannot simply carry more pings: a batch spans at most the lateness − upload delay
(``config.MAX_BATCH_SPAN_MS``), and a moving device pings every 20 s. Both senders place a record
in the partition given by the caller (the device key's murmur2 partition, as kafka-python's
default partitioner and the ground truth do).
"""

from __future__ import annotations

from typing import Any, Protocol

from kafka.errors import KafkaError

from hexpulse.kafka import broker_unreachable, make_producer
from hexpulse.settings import Settings
from simulator.exceptions import ProduceError


class Sender(Protocol):
    name: str

    def send(self, partition: int, key: bytes, value: bytes, timestamp_ms: int) -> None: ...

    def flush(self, timeout_s: float) -> None: ...

    def close(self) -> None: ...

    def failures(self) -> list[str]: ...


class KafkaPythonSender:
    """kafka-python's producer (the project's own client; slow per record)."""

    name = "kafka-python"

    def __init__(self, settings: Settings, topic: str, **overrides: Any) -> None:
        self.topic = topic
        self._producer = make_producer(settings, **overrides)
        self._failures: list[str] = []

    def _failed(self, exc: BaseException) -> None:
        self._failures.append(type(exc).__name__ + (f": {exc}" if str(exc) else ""))

    def send(self, partition: int, key: bytes, value: bytes, timestamp_ms: int) -> None:
        self._producer.send(
            self.topic, key=key, value=value, partition=partition, timestamp_ms=timestamp_ms
        ).add_errback(self._failed)

    def flush(self, timeout_s: float) -> None:
        self._producer.flush(timeout=timeout_s)

    def close(self) -> None:
        self._producer.close(timeout=5)

    def failures(self) -> list[str]:
        return self._failures


class LibrdkafkaSender:
    """confluent-kafka's producer (librdkafka in C): the same records for ~1/15 of the CPU."""

    name = "librdkafka"

    def __init__(self, settings: Settings, topic: str) -> None:
        from confluent_kafka import KafkaException, Producer

        self.topic = topic
        self._failures: list[str] = []
        self._producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "acks": "all",
                "linger.ms": 20,
                "enable.idempotence": False,
                "queue.buffering.max.messages": 1_000_000,
            }
        )
        self._since_poll = 0
        try:  # fail in seconds with the project's sentence, as kafka-python's bootstrap does
            self._producer.list_topics(timeout=10)
        except KafkaException:
            raise broker_unreachable(settings) from None

    def _report(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._failures.append(str(err))

    def send(self, partition: int, key: bytes, value: bytes, timestamp_ms: int) -> None:
        while True:
            try:
                self._producer.produce(
                    self.topic, value, key, partition, self._report, timestamp=timestamp_ms
                )
                break
            except BufferError:  # the local queue is full: let librdkafka deliver some first
                self._producer.poll(0.05)
        self._since_poll += 1
        if self._since_poll >= 1000:
            self._producer.poll(0)
            self._since_poll = 0

    def flush(self, timeout_s: float) -> None:
        left = self._producer.flush(timeout_s)
        if left:
            self._failures.append(f"{left} records still queued after {timeout_s:g} s")

    def close(self) -> None:
        self._producer.flush(5)

    def failures(self) -> list[str]:
        return self._failures


def librdkafka_available() -> bool:
    try:
        import confluent_kafka  # noqa: F401
    except ImportError:
        return False
    return True


def make_sender(settings: Settings, topic: str, kind: str = "auto", **overrides: Any) -> Sender:
    """``auto``: librdkafka when installed (and no kafka-python ``overrides`` are asked for)."""
    if kind not in ("auto", "librdkafka", "kafka-python"):
        raise ProduceError(f"--sender must be auto, librdkafka or kafka-python, not {kind!r}")
    plain = settings.kafka_security_protocol == "PLAINTEXT"
    if kind == "librdkafka" and not (plain and librdkafka_available()):
        raise ProduceError(
            "--sender librdkafka needs confluent-kafka (pip install -e '.[sim]') and a PLAINTEXT broker"
        )
    # TLS/SASL settings are mapped for kafka-python only (hexpulse.kafka), so those use it.
    if kind == "librdkafka" or (kind == "auto" and plain and not overrides and librdkafka_available()):
        return LibrdkafkaSender(settings, topic)
    try:
        return KafkaPythonSender(settings, topic, **overrides)
    except KafkaError as exc:
        raise ProduceError(f"cannot connect to {settings.kafka_bootstrap}: {exc}") from None
