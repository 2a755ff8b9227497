"""Shared Kafka plumbing (kafka-python): connection settings, producers, topic administration.

The aggregate consumer's own client wiring lives next to it, in ``aggregate/kafka/``.

``hexpulse topics`` (:func:`ensure_topics`) owns a few configs of the pings and DLQ topics (see
:func:`topic_configs`): it creates missing topics with them and sets them on existing topics that
differ. What it cannot change safely (partition count, replication) it reports in one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from hexpulse.errors import ConfigError, ServiceUnavailableError
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
    if settings.kafka_security_protocol.startswith("SASL_"):
        # kafka-python names the credentials "plain" for the SCRAM mechanisms too.
        config["sasl_mechanism"] = settings.kafka_sasl_mechanism
        config["sasl_plain_username"] = settings.kafka_sasl_username
        config["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    return config


def broker_unreachable(settings: Settings) -> ServiceUnavailableError:
    if settings.kafka_security_protocol.startswith("SASL_"):
        # kafka-python 3.0 reports refused credentials only as a bootstrap timeout.
        return ServiceUnavailableError(
            f"no Kafka broker at {settings.kafka_bootstrap} accepted a SASL "
            f"{settings.kafka_sasl_mechanism} login as {settings.kafka_sasl_username!r} within 10 s; "
            "check HEXPULSE_KAFKA_BOOTSTRAP and the SASL user and password."
        )
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


_MS_PER_H = 3_600_000


def topic_configs(settings: Settings, name: str) -> dict[str, str]:
    """Topic configs hexpulse sets: the DLQ's for ``settings.topic_dlq``, else an input topic's.

    ``cleanup.policy=delete`` because a compacted topic would keep each device's last ping (its
    raw id) forever. Retention keeps raw device ids only as long as a replay may need them.
    """
    if name == settings.topic_dlq:
        return {"cleanup.policy": "delete", "retention.ms": str(settings.topic_dlq_retention_h * _MS_PER_H)}
    return {
        "cleanup.policy": "delete",
        "message.timestamp.type": settings.topic_timestamp_type,
        "retention.ms": str(settings.topic_pings_retention_h * _MS_PER_H),
    }


@dataclass(frozen=True, slots=True)
class ConfigChange:
    """One topic config that differs from what the settings ask for."""

    topic: str
    key: str
    current: str | None
    wanted: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.key} {self.current} -> {self.wanted}"


@dataclass
class TopicReport:
    """What :func:`ensure_topics` found: topics created (or missing, when only checking), config
    changes made (or due), and differences it does not change itself."""

    created: list[str] = field(default_factory=list)
    changes: list[ConfigChange] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    @property
    def in_order(self) -> bool:
        return not (self.created or self.changes or self.mismatches)


def layout_mismatches(settings: Settings, described: dict[str, Any]) -> list[str]:
    """Partition count and replication are not changed by hexpulse: more partitions re-map device
    keys mid-window, and the releaser waits for exactly ``topic_partitions`` partitions."""
    out: list[str] = []
    name = described["name"]
    partitions = described["partitions"]
    # The DLQ has no keys and no reader that counts its partitions.
    if name != settings.topic_dlq and len(partitions) != settings.topic_partitions:
        out.append(
            f"topic {name} has {len(partitions)} partitions but HEXPULSE_TOPIC_PARTITIONS is "
            f"{settings.topic_partitions}"
        )
    replicas = min((len(p["replica_nodes"]) for p in partitions), default=0)
    if partitions and replicas != settings.topic_replication:
        out.append(
            f"topic {name} has replication factor {replicas} but HEXPULSE_TOPIC_REPLICATION is "
            f"{settings.topic_replication}"
        )
    return out


def _config_changes(admin: KafkaAdminClient, settings: Settings, names: list[str]) -> list[ConfigChange]:
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, name, list(topic_configs(settings, name))) for name in names
    ]
    current = admin.describe_configs(resources, config_filter="all").get("topic", {})
    changes: list[ConfigChange] = []
    for name in names:
        have = current.get(name, {})
        for key, wanted in topic_configs(settings, name).items():
            value = have.get(key, {}).get("value")
            if value != wanted:
                changes.append(ConfigChange(name, key, value, wanted))
    return changes


def _create(admin: KafkaAdminClient, settings: Settings, name: str) -> bool:
    spec = {
        "num_partitions": settings.topic_partitions,
        "replication_factor": settings.topic_replication,
        "configs": topic_configs(settings, name),
    }
    try:
        # Wait until every partition has a leader: a producer right after would otherwise fail its
        # first metadata look-up (the broker does not create topics on first use).
        admin.create_topics({name: spec}, wait_for_metadata=True)
    except TopicAlreadyExistsError:
        return False
    return True


def _alter(admin: KafkaAdminClient, changes: list[ConfigChange]) -> None:
    by_topic: dict[str, dict[str, str]] = {}
    for c in changes:
        by_topic.setdefault(c.topic, {})[c.key] = c.wanted
    resources = [ConfigResource(ConfigResourceType.TOPIC, t, cfg) for t, cfg in by_topic.items()]
    # Incremental (KIP-339): only these keys change; the others keep their values.
    result = admin.alter_configs(resources, incremental=True, raise_on_unknown=False).get("topic", {})
    failed = {t: r for t, r in result.items() if r != "OK"}
    if failed:
        topic, reason = next(iter(failed.items()))
        raise ConfigError(f"the broker refused to change the configs of topic {topic}: {reason}")


def ensure_topics(settings: Settings, names: list[str] | None = None, *, check: bool = False) -> TopicReport:
    """Make the pings and DLQ topics (or ``names``) match the settings; return what was done.

    Missing topics are created with :func:`topic_configs`; existing ones get those configs set
    where they differ. A partition count or replication factor other than the settings' raises
    :class:`ConfigError` (nothing is changed then). With ``check`` nothing is changed at all: the
    report lists what would be, and the mismatches.
    """
    wanted = names or [settings.topic_pings, settings.topic_dlq]
    admin = make_admin(settings)
    try:
        existing = set(admin.list_topics())
        present = [n for n in wanted if n in existing]
        report = TopicReport()
        for described in admin.describe_topics(present) if present else []:
            report.mismatches.extend(layout_mismatches(settings, described))
        report.changes = _config_changes(admin, settings, present) if present else []
        missing = [n for n in wanted if n not in existing]
        if check:
            report.created = missing
            return report
        if report.mismatches:
            raise ConfigError(
                "; ".join(report.mismatches)
                + "; hexpulse changes neither, see docs/DEPLOY.md (Scaling) for how to"
            )
        report.created = [n for n in missing if _create(admin, settings, n)]
        if report.changes:
            _alter(admin, report.changes)
        return report
    except KafkaError as exc:
        raise ServiceUnavailableError(
            f"topic administration failed on {settings.kafka_bootstrap}: {exc}"
        ) from None
    finally:
        admin.close()


def require_topics(settings: Settings, names: list[str]) -> None:
    """Raise :class:`ConfigError` naming the first of ``names`` the broker does not have.

    Brokers here and in production do not create topics on first use, and a producer waits a
    minute for a topic that does not exist: consumers check at start instead.
    """
    admin = make_admin(settings)
    try:
        existing = set(admin.list_topics())
    except KafkaError as exc:
        raise ServiceUnavailableError(f"listing topics on {settings.kafka_bootstrap} failed: {exc}") from None
    finally:
        admin.close()
    for name in names:
        if name not in existing:
            raise ConfigError(
                f"topic {name} does not exist on {settings.kafka_bootstrap}; create it with 'hexpulse topics'"
            )
