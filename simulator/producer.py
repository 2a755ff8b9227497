"""Send a simulation to Kafka: key = device string, paced to the run's time compression."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka.errors import KafkaError

from hexpulse.kafka import make_producer
from hexpulse.logs import log_event
from hexpulse.settings import Settings
from hexpulse.times import utc_from_ms
from simulator.exceptions import ProduceError, SimulatorConfigError
from simulator.generate import Simulation

logger = logging.getLogger(__name__)
PROGRESS_EVERY_S = 5.0
ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class ProduceReport:
    topic: str
    messages: int
    seconds: float


def stderr_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _iso(ms: int) -> str:
    return utc_from_ms(ms).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_times(settings: Settings, sim: Simulation, now_ms: int) -> None:
    """Refuse a run whose pings ingest would reject as stale or future when sent now."""
    age_s = (now_ms - sim.start_ms) / 1000
    if age_s > settings.max_ping_age_s:
        raise SimulatorConfigError(
            f"the run starts {age_s:.0f} s ago, beyond HEXPULSE_MAX_PING_AGE_S={settings.max_ping_age_s}: "
            "ingest would reject its pings as stale_ts; choose a later --start"
        )
    paced_end = sim.start_ms if not math.isinf(sim.config.speed) else sim.end_ms
    ahead_s = (paced_end - now_ms) / 1000
    if ahead_s > settings.max_clock_skew_s:
        raise SimulatorConfigError(
            f"the run's pings would be sent up to {ahead_s:.0f} s before their time, beyond "
            f"HEXPULSE_MAX_CLOCK_SKEW_S={settings.max_clock_skew_s}: "
            "choose an earlier --start or a finite --speed"
        )


def produce(
    settings: Settings,
    sim: Simulation,
    *,
    topic: str | None = None,
    progress: ProgressFn | None = stderr_progress,
    **producer_overrides: Any,
) -> ProduceReport:
    """Produce every message of ``sim`` in order, then flush; raise ProduceError if any failed.

    With ``sim.config.speed`` finite, a message waits until ``(last ts − start) / speed`` seconds
    of wall time have passed since the first send, so event time never runs ahead of the clock.
    Records carry the timestamp a gateway would give them (:meth:`Simulation.record_ts_ms`): on a
    topic with ``message.timestamp.type=LogAppendTime`` the broker's time replaces it, which is right
    only for a real-time run (docs/SIMULATOR.md).
    """
    _check_times(settings, sim, int(time.time() * 1000))
    name = topic or settings.topic_pings
    speed = sim.config.speed
    total = len(sim)
    failures: list[str] = []

    def failed(exc: BaseException) -> None:
        failures.append(type(exc).__name__ + (f": {exc}" if str(exc) else ""))

    producer = make_producer(settings, **producer_overrides)
    t0 = time.monotonic()
    next_report = t0 + PROGRESS_EVERY_S
    sent = 0
    try:
        stamps = zip(sim.last_ts_ms(), sim.record_ts_ms(), strict=True)
        for (key, value), (event_ms, record_ms) in zip(sim.messages(), stamps, strict=True):
            if not math.isinf(speed):
                wait = (event_ms - sim.start_ms) / 1000.0 / speed - (time.monotonic() - t0)
                if wait > 0:
                    time.sleep(wait)
            producer.send(name, key=key, value=value, timestamp_ms=record_ms).add_errback(failed)
            sent += 1
            if progress is not None and time.monotonic() >= next_report:
                elapsed = time.monotonic() - t0
                progress(
                    f"simulate: {sent:,}/{total:,} messages ({100 * sent // max(total, 1)}%), "
                    f"{sent / elapsed:,.0f} msg/s, event time {_iso(event_ms)}"
                )
                next_report += PROGRESS_EVERY_S
        producer.flush(timeout=60)
    except KafkaError as exc:
        raise ProduceError(
            f"producing to topic {name!r} on {settings.kafka_bootstrap} failed: {exc}"
        ) from None
    finally:
        producer.close(timeout=5)
    seconds = time.monotonic() - t0
    if failures:
        raise ProduceError(
            f"{len(failures)} of {total} messages to topic {name!r} were not delivered; "
            f"first error: {failures[0]}"
        )
    log_event(logger, "simulation produced", topic=name, messages=total, seconds=round(seconds, 2))
    return ProduceReport(name, total, seconds)
