"""The topic configs `hexpulse topics` owns, and the differences it refuses to fix itself."""

from __future__ import annotations

import pytest

from hexpulse.errors import ConfigError
from hexpulse.kafka import ConfigChange, layout_mismatches, topic_configs
from hexpulse.settings import load_settings


def test_production_defaults_broker_time_a_day_of_raw_pings() -> None:
    s = load_settings()
    assert topic_configs(s, s.topic_pings) == {
        "cleanup.policy": "delete",
        "message.timestamp.type": "LogAppendTime",
        "retention.ms": str(24 * 3_600_000),
    }
    # The DLQ keeps its producer's time; its retention is its own.
    assert topic_configs(s, s.topic_dlq) == {"cleanup.policy": "delete", "retention.ms": str(48 * 3_600_000)}


def test_settings_choose_timestamps_and_retention(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEXPULSE_TOPIC_TIMESTAMP_TYPE", "CreateTime")
    monkeypatch.setenv("HEXPULSE_TOPIC_PINGS_RETENTION_H", "12")
    monkeypatch.setenv("HEXPULSE_TOPIC_DLQ_RETENTION_H", "6")
    s = load_settings()
    other = topic_configs(s, "backfill-2026-11-30")  # any topic but the DLQ is an input topic
    assert other["message.timestamp.type"] == "CreateTime"
    assert other["retention.ms"] == str(12 * 3_600_000)
    assert topic_configs(s, s.topic_dlq)["retention.ms"] == str(6 * 3_600_000)


@pytest.mark.parametrize(
    ("var", "value"),
    [("HEXPULSE_TOPIC_TIMESTAMP_TYPE", "NoTimestampType"), ("HEXPULSE_TOPIC_PINGS_RETENTION_H", "0")],
)
def test_bad_topic_settings_are_one_sentence(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(ConfigError, match=var):
        load_settings()


def _described(name: str, partitions: int, replicas: int) -> dict[str, object]:
    parts = [{"partition_index": i, "replica_nodes": list(range(replicas))} for i in range(partitions)]
    return {"name": name, "partitions": parts}


def test_partition_and_replication_differences_are_named() -> None:
    s = load_settings(topic_partitions=6, topic_replication=3)
    assert layout_mismatches(s, _described(s.topic_pings, 6, 3)) == []
    got = layout_mismatches(s, _described(s.topic_pings, 3, 1))
    assert got == [
        "topic pings has 3 partitions but HEXPULSE_TOPIC_PARTITIONS is 6",
        "topic pings has replication factor 1 but HEXPULSE_TOPIC_REPLICATION is 3",
    ]
    # The DLQ's partition count does not matter (no keys, nobody counts its partitions).
    assert layout_mismatches(s, _described(s.topic_dlq, 1, 3)) == []


def test_a_change_reads_as_one_line() -> None:
    assert str(ConfigChange("pings", "retention.ms", "604800000", "86400000")) == (
        "pings: retention.ms 604800000 -> 86400000"
    )
