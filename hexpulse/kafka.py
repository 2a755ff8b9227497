"""Shared Kafka plumbing (kafka-python): connection settings, producers, topic administration.

The aggregate consumer's own client wiring lives next to it, in ``aggregate/kafka/``.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from hexpulse.errors import ServiceUnavailableError
from hexpulse.settings import Settings


def common_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap.split(","),
        "security_protocol": settings.kafka_security_protocol,
        # Fail start-up within seconds (one sentence) instead of kafka-python's 30 s default.
        "bootstrap_timeout_ms": 10_000,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        if settings.kafka_ssl_cafile:
            config["ssl_cafile"] = str(settings.kafka_ssl_cafile)
        if settings.kafka_ssl_certfile:
            config["ssl_certfile"] = str(settings.kafka_ssl_certfile)
        if settings.kafka_ssl_keyfile:
            config["ssl_keyfile"] = str(settings.kafka_ssl_keyfile)
    if settings.kafka_security_protocol == "SASL_SSL":
        # kafka-python names the credentials "plain" for the SCRAM mechanisms too.
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        config["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return config


def broker_unreachable(settings: Settings) -> ServiceUnavailableError:
    return ServiceUnavailableError(
        f"the Kafka broker is not reachable at {settings.kafka_bootstrap}; start it with "
        "'make services' or set HEXPULSE_KAFKA_BOOTSTRAP."
    )


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    config = common_config(settings) | {"linger_ms": 20, "acks": "all"} | overrides
    try:
        return KafkaProducer(**config)
    except (KafkaConnectionError, KafkaError):
        raise broker_unreachable(settings) from None


def make_admin(settings: Settings) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(**common_config(settings), request_timeout_ms=15000)
    except (KafkaConnectionError, KafkaError):
        raise broker_unreachable(settings) from None


def ensure_topics(settings: Settings, names: list[str] | None = None) -> list[str]:
    """Create the pings and DLQ topics (or ``names``) if missing; return the ones created."""
    wanted = names or [settings.topic_pings, settings.topic_dlq]
    admin = make_admin(settings)
    try:
        existing = set(admin.list_topics())
        created: list[str] = []
        for name in wanted:
            if name in existing:
                continue
            topic = NewTopic(name, settings.topic_partitions, settings.topic_replication)
            try:
                admin.create_topics([topic])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        return created
    except KafkaError as exc:
        raise ServiceUnavailableError(
            f"topic administration failed on {settings.kafka_bootstrap}: {exc}"
        ) from None
    finally:
        admin.close()
