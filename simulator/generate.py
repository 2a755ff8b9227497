"""One simulation run without Kafka: the message stream and its ground truth."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from hexpulse.service_area import ServiceArea, load_service_area
from hexpulse.settings import Settings
from simulator.city import Pings, build_pings
from simulator.config import SimConfig
from simulator.ground_truth import GroundTruth, compute
from simulator.messages import (
    APPROX_PING_BYTES,
    Injection,
    MessagePlan,
    iter_messages,
    plan_malformed,
    plan_messages,
)


@dataclass(frozen=True)
class Simulation:
    """A generated run: iterate :meth:`messages` (any number of times) and read :attr:`truth`."""

    config: SimConfig
    start_ms: int
    pings: Pings
    plan: MessagePlan
    injections: list[Injection]
    truth: GroundTruth
    upload_delay_ms: int

    @property
    def end_ms(self) -> int:
        return self.start_ms + int(self.config.duration_s * 1000)

    def __len__(self) -> int:
        """Messages in the stream, malformed ones included."""
        return len(self.plan) + len(self.injections)

    def messages(self) -> Iterator[tuple[bytes, bytes]]:
        """(Kafka key = device string, value = UTF-8 JSON), in the order they must be produced."""
        return iter_messages(self.pings, self.plan, self.injections, self.config.mode == "batch")

    def last_ts_ms(self) -> Iterator[int]:
        """Event time (ms) that each message of :meth:`messages` may be sent at (its last ping;
        a malformed message takes the one before it), for pacing in real time."""
        last = self.plan.hi - 1
        good = self.pings.ts_ms[last].tolist() if len(last) else []
        inject = {i.index for i in self.injections}
        g = 0
        current = self.start_ms
        for index in range(len(self)):
            if index not in inject:
                current = good[g]
                g += 1
            yield current

    def record_ts_ms(self) -> Iterator[int]:
        """The record timestamp (ms) of each message of :meth:`messages`: when it reaches the
        gateway, its last ping's ``ts`` + the upload delay (a malformed one: the one before)."""
        delay = self.upload_delay_ms
        return (t + delay for t in self.last_ts_ms())


def generate(
    config: SimConfig, settings: Settings, *, area: ServiceArea | None = None, now_ms: int | None = None
) -> Simulation:
    """Generate a run deterministically from ``config.seed`` (and ``start_ms`` when it is given).

    Same config + same settings → byte-identical messages and ground truth.
    """
    config.validate(settings)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    start_ms = config.resolve_start_ms(now)
    rng = np.random.default_rng(config.seed)
    pings, traffic = build_pings(config, start_ms, rng)
    max_pings = max(1, min(settings.max_batch_pings, settings.max_message_bytes // APPROX_PING_BYTES))
    plan = plan_messages(pings, config.batch_span_ms(settings), max_pings)
    injections = plan_malformed(pings, plan, config.malformed_rate, settings, rng)
    area = area or load_service_area(settings)
    delay = config.upload_delay_ms(settings)
    truth = compute(pings, plan, injections, delay, config, start_ms, settings, area, traffic)
    return Simulation(config, start_ms, pings, plan, injections, truth, delay)
