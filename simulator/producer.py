"""Send the simulated city to Kafka, paced to its time compression, keeping real time at density.

Spans are generated and serialized in a background thread up to ``LOOKAHEAD_MESSAGES`` ahead of
the send loop, so generating the next minute of the city overlaps sending this one and memory
stays bounded by the look-ahead. The send loop only waits and hands records to a
:mod:`.sender` (librdkafka when installed: ~5.6 µs of CPU per record against kafka-python's ~53).
In real time (speed 1) a message is due at its own event time (wall clock), so "behind real time"
is how late the feed sends; at other speeds it is due at its offset from the start ÷ speed after
the first send.
"""

from __future__ import annotations

import logging
import math
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from kafka.errors import KafkaError

from hexpulse.logs import log_event
from hexpulse.settings import Settings
from hexpulse.times import utc_from_ms
from simulator.exceptions import ProduceError, SimulatorConfigError
from simulator.generate import Simulation
from simulator.ground_truth import partition_of
from simulator.messages import Span
from simulator.sender import make_sender
from simulator.stream import CityStream

logger = logging.getLogger(__name__)
PROGRESS_EVERY_S = 5.0
BLOCK_MESSAGES = 5_000
LOOKAHEAD_MESSAGES = 300_000
"""Messages generated ahead of the send loop (~30 s of the city at real density, ~80 MB)."""
BEHIND_WARN_S = 5.0
"""The feed warns (one sentence) when it sends this far (s) behind real time."""
ProgressFn = Callable[[str], None]


@dataclass(frozen=True)
class ProduceReport:
    """What a run sent. ``seconds``: from the first send to the last delivery; ``behind_s_p95`` /
    ``behind_s_max``: how late messages left against their due time (s; sampled every 1,000
    messages); ``pings_per_s``: good pings sent per wall second."""

    topic: str
    messages: int
    seconds: float
    pings: int = 0
    devices: int = 0
    sender: str = ""
    behind_s_p95: float = 0.0
    behind_s_max: float = 0.0

    @property
    def pings_per_s(self) -> float:
        return self.pings / self.seconds if self.seconds > 0 else 0.0


def stderr_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _iso(ms: int) -> str:
    return utc_from_ms(ms).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_times(settings: Settings, start_ms: int, end_ms: int, speed: float, now_ms: int) -> None:
    """Refuse a run whose pings ingest would reject as stale or future when sent now."""
    age_s = (now_ms - start_ms) / 1000
    if age_s > settings.max_ping_age_s:
        raise SimulatorConfigError(
            f"the run starts {age_s:.0f} s ago, beyond HEXPULSE_MAX_PING_AGE_S={settings.max_ping_age_s}: "
            "ingest would reject its pings as stale_ts; choose a later --start"
        )
    if speed == 1.0:
        return  # sent at its own event time, never early
    paced_end = start_ms if not math.isinf(speed) else end_ms
    ahead_s = (paced_end - now_ms) / 1000
    if ahead_s > settings.max_clock_skew_s:
        raise SimulatorConfigError(
            f"the run's pings would be sent up to {ahead_s:.0f} s before their time, beyond "
            f"HEXPULSE_MAX_CLOCK_SKEW_S={settings.max_clock_skew_s}: "
            "choose an earlier --start or a finite --speed"
        )


_Block = list[tuple[int, bytes, bytes, int, int, int]]  # partition, key, value, event ms, record ms, pings


def _blocks(spans: Iterable[Span], home: npt.NDArray[np.int64], partitions: int) -> Iterator[_Block]:
    block: _Block = []
    for span in spans:
        where = span.partitions(home, partitions)
        rows = zip(span.messages(), span.last_ts_ms(), span.record_ts_ms(), where, strict=True)
        for (key, value), event_ms, record_ms, (partition, pings) in rows:
            block.append((partition, key, value, event_ms, record_ms, pings))
            if len(block) >= BLOCK_MESSAGES:
                yield block
                block = []
    if block:
        yield block


def _ahead(blocks: Iterator[_Block]) -> Iterator[_Block]:
    """Run ``blocks`` in a thread, at most LOOKAHEAD_MESSAGES ahead of the consumer."""
    q: queue.Queue[_Block | BaseException | None] = queue.Queue(max(1, LOOKAHEAD_MESSAGES // BLOCK_MESSAGES))
    stop = threading.Event()

    def fill() -> None:
        try:
            for b in blocks:
                while not stop.is_set():
                    try:
                        q.put(b, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(None)
        except BaseException as exc:  # handed to the send loop, which re-raises it
            q.put(exc)

    thread = threading.Thread(target=fill, name="simulator-generate", daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def produce_spans(
    settings: Settings,
    spans: Iterable[Span],
    *,
    start_ms: int,
    end_ms: int,
    speed: float,
    home: npt.NDArray[np.int64],
    devices: int,
    topic: str | None = None,
    progress: ProgressFn | None = stderr_progress,
    needed_pings_per_s: Callable[[], float] | None = None,
    sender: str = "auto",
    **producer_overrides: Any,
) -> ProduceReport:
    """Produce every message of ``spans`` in order, then flush; raise ProduceError if any failed.

    Records carry the timestamp a gateway would give them (:meth:`Span.record_ts_ms`): on a topic
    with ``message.timestamp.type=LogAppendTime`` the broker's time replaces it, which is right
    only for a real-time run (docs/SIMULATOR.md).
    """
    check_times(settings, start_ms, end_ms, speed, int(time.time() * 1000))
    name = topic or settings.topic_pings
    out = make_sender(settings, name, sender, **producer_overrides)
    t0 = time.monotonic()
    wall0_ms = time.time() * 1000.0
    next_report = t0 + PROGRESS_EVERY_S
    sent = pings = 0
    last_pings, last_t = 0, t0
    behind_samples: list[float] = []
    first_send = t0
    behind = 0.0
    warned = False
    event_ms = start_ms
    try:
        for block in _ahead(_blocks(spans, home, settings.topic_partitions)):
            for partition, key, value, event_ms, record_ms, n in block:
                if speed == 1.0:
                    wait = (event_ms - wall0_ms) / 1000.0 - (time.monotonic() - t0)
                elif not math.isinf(speed):
                    wait = (event_ms - start_ms) / 1000.0 / speed - (time.monotonic() - t0)
                else:
                    wait = 0.0
                if wait > 0.005:
                    time.sleep(wait)
                out.send(partition, key, value, record_ms)
                if sent == 0:
                    first_send = time.monotonic()
                sent += 1
                pings += n
                behind = max(0.0, -wait)
                if sent % 1000 == 0 and not math.isinf(speed):
                    behind_samples.append(behind)
            now = time.monotonic()
            if progress is None or now < next_report:
                continue
            rate = (pings - last_pings) / (now - last_t)
            progress(
                f"simulate: {sent:,} messages, {pings:,} pings, {rate:,.0f} pings/s, "
                f"event time {_iso(event_ms)}, {behind:.1f} s behind"
            )
            needed = needed_pings_per_s() if needed_pings_per_s is not None else 0.0
            if behind > BEHIND_WARN_S and not warned and rate < needed:
                progress(
                    f"simulate: WARNING: the feed is {behind:.0f} s behind real time and sends "
                    f"{rate:,.0f} of the {needed:,.0f} pings/s the city needs: this machine cannot "
                    "generate and send the city this fast (scale it down with --devices)."
                )
                warned = True
            elif behind < 1.0:
                warned = False
            next_report = now + PROGRESS_EVERY_S
            last_pings, last_t = pings, now
        out.flush(60)
    except KafkaError as exc:
        where = settings.kafka_bootstrap
        raise ProduceError(f"producing to topic {name!r} on {where} failed: {exc}") from None
    finally:
        out.close()
    seconds = time.monotonic() - first_send  # a real-time run may wait for its start first
    failures = out.failures()
    if failures:
        raise ProduceError(
            f"{len(failures)} of {sent} messages to topic {name!r} were not delivered; "
            f"first error: {failures[0]}"
        )
    samples = np.array(behind_samples or [0.0])
    report = ProduceReport(
        name, sent, seconds, pings, devices, out.name,
        round(float(np.percentile(samples, 95)), 2), round(float(samples.max()), 2),
    )  # fmt: skip
    log_event(logger, "simulation produced", topic=name, messages=sent, seconds=round(seconds, 2))
    return report


def produce(
    settings: Settings,
    sim: Simulation,
    *,
    topic: str | None = None,
    progress: ProgressFn | None = stderr_progress,
    **producer_overrides: Any,
) -> ProduceReport:
    """Produce a whole generated run (see :func:`produce_spans`)."""
    return produce_spans(
        settings,
        [sim],
        start_ms=sim.start_ms,
        end_ms=sim.end_ms,
        speed=sim.config.speed,
        home=partition_of(sim.pings.device_ids, settings.topic_partitions),
        devices=len(sim.pings.device_ids),
        topic=topic,
        progress=progress,
        needed_pings_per_s=lambda: len(sim.pings.ts_ms) / sim.config.duration_s,
        **producer_overrides,
    )


def produce_stream(
    settings: Settings,
    stream: CityStream,
    *,
    topic: str | None = None,
    progress: ProgressFn | None = stderr_progress,
    sender: str = "auto",
) -> ProduceReport:
    """Generate and produce a streamed run span by span (see :func:`produce_spans`)."""
    cfg = stream.config
    return produce_spans(
        settings,
        stream.spans(),
        start_ms=stream.start_ms,
        end_ms=stream.end_ms,
        speed=cfg.speed,
        home=stream.home,
        devices=stream.devices,
        topic=topic,
        progress=progress,
        needed_pings_per_s=stream.pings_per_s,
        sender=sender,
    )
