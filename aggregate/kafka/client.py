"""Kafka consumers configured from settings: a plain one, and the consume loop's group member."""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer
from kafka.errors import KafkaConnectionError, KafkaError

from aggregate.kafka.rebalance import RebalanceListener, RebalanceTarget
from aggregate.kafka.records import guard_corrupt_batches, use_fast_records
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
    if not (settings.consumer_fast_decode and use_fast_records(consumer)):
        guard_corrupt_batches(consumer)
    consumer.subscribe([topic], listener=RebalanceListener(target))
    return consumer
