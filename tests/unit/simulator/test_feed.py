"""The feed's send loop without a broker: every message in order, to its device's partition,
stamped like a gateway; a feed that falls behind real time says so in one sentence, once."""

from __future__ import annotations

import time
from typing import Any

import pytest

import simulator.producer as producer
from hexpulse.settings import Settings, load_settings
from simulator import SimConfig, generate
from simulator.ground_truth import partition_of


class FakeSender:
    name = "fake"

    def __init__(self, delay_s: float = 0.0, stop_after: int | None = None) -> None:
        self.records: list[tuple[int, bytes, bytes, int]] = []
        self.delay_s, self.stop_after = delay_s, stop_after

    def send(self, partition: int, key: bytes, value: bytes, timestamp_ms: int) -> None:
        if self.stop_after is not None and len(self.records) >= self.stop_after:
            raise KeyboardInterrupt  # ends the run from inside the loop, as Ctrl-C would
        time.sleep(self.delay_s)
        self.records.append((partition, key, value, timestamp_ms))

    def flush(self, timeout_s: float) -> None:
        pass

    def close(self) -> None:
        pass

    def failures(self) -> list[str]:
        return []


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings()


def _use(monkeypatch: pytest.MonkeyPatch, sender: FakeSender) -> None:
    def make(*_: Any, **__: Any) -> FakeSender:
        return sender

    monkeypatch.setattr(producer, "make_sender", make)


def test_every_message_in_order_to_its_devices_partition(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = generate(SimConfig(devices=200, duration_s=120, interval_s=5, malformed_rate=0.02), settings)
    fake = FakeSender()
    _use(monkeypatch, fake)
    report = producer.produce(settings, sim, progress=None)
    assert [(k, v) for _, k, v, _ in fake.records] == list(sim.messages())
    assert [t for *_, t in fake.records] == list(sim.record_ts_ms())
    parts = partition_of(sim.pings.device_ids, settings.topic_partitions).tolist()
    home = dict(zip(sim.pings.device_ids, parts, strict=True))
    bad = {m["index"] for m in sim.truth.malformed}
    good = [r for i, r in enumerate(fake.records) if i not in bad]
    assert all(p == home[k.decode()] for p, k, _, _ in good)
    assert report.messages == len(sim) and report.pings == sim.truth.counts["pings"]


def test_a_feed_behind_real_time_warns_once(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Started 20 s ago in real time, sending 20 messages/s of a city that needs more: behind and
    # not catching up.
    start = (int(time.time()) - 20) * 1000
    cfg = SimConfig(devices=300, duration_s=60, interval_s=2, start_ms=start, speed=1.0, mode="single")
    sim = generate(cfg, settings)
    assert sim.truth.counts["pings"] / 60 > 30  # pings/s the city needs, against 20 sent
    fake = FakeSender(delay_s=0.05, stop_after=120)
    _use(monkeypatch, fake)
    monkeypatch.setattr(producer, "PROGRESS_EVERY_S", 0.0)
    monkeypatch.setattr(producer, "BLOCK_MESSAGES", 20)
    lines: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        producer.produce(settings, sim, progress=lines.append)
    warnings = [x for x in lines if "WARNING" in x]
    assert len(warnings) == 1, lines
    assert "behind real time" in warnings[0] and warnings[0].endswith(".")
    assert any(" s behind" in x for x in lines)
