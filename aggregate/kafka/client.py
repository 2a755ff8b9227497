"""Kafka consumers configured from settings: a plain one, and the consume loop's group member."""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer
from kafka.errors import KafkaConnectionError, KafkaError

from aggregate.kafka.rebalance import RebalanceListener, RebalanceTarget
from aggregate.kafka.records import guard_corrupt_batches, use_fast_records
from hexpulse.errors import ConfigError
from hexpulse.kafka import broker_unreachable, common_config
from hexpulse.settings import Settings


def make_consumer(settings: Settings, *topics: str, **overrides: Any) -> KafkaConsumer:
    """A kafka-python consumer with the connection settings (TLS included) and ``overrides``."""
    config = common_config(settings) | overrides
    try:
        return KafkaConsumer(*topics, **config)
    except (KafkaConnectionError, KafkaError):
        raise broker_unreachable(settings) from None


def open_group_consumer(settings: Settings, topic: str, target: RebalanceTarget) -> KafkaConsumer:
    """A member of the aggregate consumer group subscribed to ``topic``; rebalances go to ``target``.

    Offsets are committed by hand (only up to the oldest unwritten window), so auto-commit is off.
    Refuses (ConfigError) a topic whose partition count is not ``settings.topic_partitions``: ingest
    maps keys onto that count, so any other would dead-letter most records as ``wrong_partition``.
    """
    consumer = make_consumer(
        settings,
        group_id=settings.consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.consumer_max_poll_records,
        max_partition_fetch_bytes=settings.consumer_fetch_bytes,
        fetch_max_bytes=max(settings.consumer_fetch_bytes, 52_428_800),
        session_timeout_ms=10_000,
        heartbeat_interval_ms=1_000,
    )
    try:
        found = len(consumer.partitions_for_topic(topic))
    except KafkaError:
        found = 0  # metadata unavailable: the broker check of the first poll reports it
    if found and found != settings.topic_partitions:
        consumer.close(autocommit=False)
        raise ConfigError(partition_count_mismatch(topic, found, settings.topic_partitions))
    if not (settings.consumer_fast_decode and use_fast_records(consumer)):
        guard_corrupt_batches(consumer)
    consumer.subscribe([topic], listener=RebalanceListener(target))
    return consumer


def partition_count_mismatch(topic: str, found: int, configured: int, *, at_least: bool = False) -> str:
    """The one sentence for a topic whose partition count differs from the configured one."""
    has = f"at least {found}" if at_least else str(found)
    return (
        f"topic {topic!r} has {has} partitions but HEXPULSE_TOPIC_PARTITIONS={configured}; a device "
        "must map to one partition, so change the partition count only as docs/DEPLOY.md describes "
        "and set the setting to match"
    )


def group_generation(consumer: KafkaConsumer) -> int:
    """The consumer group generation this member last joined in, 0 if unknown.

    It orders two owners of a partition whose claims raced (hexpulse/store/progress.py). Read from
    kafka-python 3.0's coordinator (pinned for aggregate/kafka/records.py as well).
    """
    generation = getattr(getattr(consumer, "_coordinator", None), "_generation", None)
    value = getattr(generation, "generation_id", 0)
    return value if isinstance(value, int) and value > 0 else 0


def hold_rejoin(consumer: KafkaConsumer | None) -> None:
    """Keep kafka-python driving the rebalance round it is starting until that round completes.

    Called from the revoke callback, which kafka-python 3.0.12 runs when a JoinGroup round begins.
    It drives a round only from polls for which its ``need_rejoin()`` holds, and a leader's round
    begun because its assignment snapshot went stale (a new group's usual second round: the first
    assignment came before the topic's metadata; or metadata changing around a broker restart)
    stops being needed halfway, since assigning refreshes the snapshot. When the SyncGroup answer
    then takes longer than one poll (under load), no later poll finishes the round: the assignment
    is never applied, ``on_partitions_assigned`` never runs, heartbeats stay off and the broker
    evicts the member, which polls on with nothing assigned (RELIABILITY.md, the rebalance stall).
    The coordinator clears this flag only when a round completes.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    request = getattr(coordinator, "request_rejoin", None)
    if callable(request):
        request()

