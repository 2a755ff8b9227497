"""`hexpulse topics` on the real broker: topics are created with the configs the guarantee needs,
re-running it sets configs that differ, a partition count it will not change is one sentence, and
who stamps the record time is what the topic says (LogAppendTime: the broker; CreateTime: the
producer, as a trusted gateway or a backfill)."""

from __future__ import annotations

import subprocess
import time

import pytest
from kafka import TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from aggregate.kafka.client import make_consumer
from hexpulse.errors import ConfigError
from hexpulse.kafka import ensure_topics, make_admin, make_producer, require_topics
from hexpulse.settings import Settings
from tests.support.aggregate import HEXPULSE

pytestmark = pytest.mark.integration

OLD_MS = 1_700_000_000_000  # 2023-11-14: a time no broker clock shows today
KEYS = ["cleanup.policy", "message.timestamp.type", "retention.ms"]


def _configs(s: Settings, topic: str) -> dict[str, str]:
    admin = make_admin(s)
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, KEYS)
        got = admin.describe_configs([resource], config_filter="all")
    finally:
        admin.close()
    return {k: v["value"] for k, v in got["topic"][topic].items()}


def _record_timestamp(s: Settings, topic: str, stamp_ms: int) -> tuple[int, int]:
    """Produce one record stamped ``stamp_ms``; return (timestamp type, timestamp) as read back."""
    producer = make_producer(s, linger_ms=0)
    meta = producer.send(topic, key=b"k", value=b"v", timestamp_ms=stamp_ms).get(timeout=30)
    producer.close()
    consumer = make_consumer(s, group_id=None, enable_auto_commit=False)
    tp = TopicPartition(topic, meta.partition)
    consumer.assign([tp])
    consumer.seek(tp, meta.offset)
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            for record in consumer.poll(timeout_ms=500).get(tp, []):
                return record.timestamp_type, record.timestamp
    finally:
        consumer.close()
    raise AssertionError("the record was not read back")


def test_topics_are_created_altered_and_checked(services: Settings, unique_name: str) -> None:
    s = services.model_copy(
        update={
            "topic_pings": f"topics-{unique_name}",
            "topic_dlq": f"topics-{unique_name}.dlq",
            "topic_timestamp_type": "LogAppendTime",  # the production default
        }
    )
    with pytest.raises(ConfigError, match=f"topic {s.topic_pings} does not exist"):
        require_topics(s, [s.topic_pings, s.topic_dlq])

    report = ensure_topics(s)
    assert report.created == [s.topic_pings, s.topic_dlq] and not report.changes
    require_topics(s, [s.topic_pings, s.topic_dlq])
    assert _configs(s, s.topic_pings) == {
        "cleanup.policy": "delete",
        "message.timestamp.type": "LogAppendTime",
        "retention.ms": "86400000",
    }
    assert _configs(s, s.topic_dlq)["retention.ms"] == "172800000"
    assert ensure_topics(s).in_order

    # The broker's clock, not the producer's stamp: a record stamped in 2023 reads back as now.
    before = int(time.time() * 1000)
    kind, stamp = _record_timestamp(s, s.topic_pings, OLD_MS)
    assert kind == 1 and stamp >= before - 5_000  # 1 = LOG_APPEND_TIME

    # Other settings: `--check` names the differences without changing them, a plain run sets them.
    backfill = s.model_copy(update={"topic_timestamp_type": "CreateTime", "topic_pings_retention_h": 12})
    env = {
        "HEXPULSE_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
        "HEXPULSE_TOPIC_PINGS": s.topic_pings,
        "HEXPULSE_TOPIC_DLQ": s.topic_dlq,
        "HEXPULSE_TOPIC_TIMESTAMP_TYPE": "CreateTime",
        "HEXPULSE_TOPIC_PINGS_RETENTION_H": "12",
        "HEXPULSE_STATE_DIR": str(s.state_dir),
        "PATH": "/usr/bin:/bin",
    }
    check = subprocess.run(
        [HEXPULSE, "topics", "--check"], env=env, capture_output=True, text=True, check=False
    )
    assert check.returncode == 1
    assert f"differs {s.topic_pings}: message.timestamp.type LogAppendTime -> CreateTime" in check.stdout
    assert f"differs {s.topic_pings}: retention.ms 86400000 -> 43200000" in check.stdout
    assert _configs(s, s.topic_pings)["message.timestamp.type"] == "LogAppendTime"
    run = subprocess.run([HEXPULSE, "topics"], env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert f"set {s.topic_pings}: retention.ms 86400000 -> 43200000" in run.stdout
    assert _configs(s, s.topic_pings)["message.timestamp.type"] == "CreateTime"
    assert ensure_topics(backfill).in_order

    # CreateTime: the producer's stamp is kept (the gateway's, or a backfill's acting as one).
    assert _record_timestamp(backfill, s.topic_pings, OLD_MS) == (0, OLD_MS)

    # A partition count hexpulse will not change is refused before anything is changed.
    wider = backfill.model_copy(
        update={"topic_partitions": s.topic_partitions + 3, "topic_pings_retention_h": 6}
    )
    with pytest.raises(ConfigError, match=f"topic {s.topic_pings} has {s.topic_partitions} partitions"):
        ensure_topics(wider)
    assert _configs(s, s.topic_pings)["retention.ms"] == "43200000"
