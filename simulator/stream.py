"""The simulated city as a stream: event time generated a span of whole windows at a time.

State carried from span to span: the devices and their paths, the road traffic (computed once for
the whole run at set-up: one float per car and 5 s step, the part of memory that still grows with
the run), the AR(1) position noise, the partition clocks of the ground truth. Per-slot and
per-window draws are keyed (run key, group, slot / window), so the same seed gives the same
messages and ground truth whatever the span length, and the pings and messages in memory are the
span's, not the run's (docs/SIMULATOR.md, "Streaming").
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hexpulse.service_area import ServiceArea, load_service_area
from hexpulse.settings import Settings
from simulator.city import City
from simulator.config import SimConfig
from simulator.ground_truth import GroundTruth, TruthBuilder, partition_of
from simulator.messages import APPROX_PING_BYTES, Span, plan_malformed_by_window, plan_messages


class CityStream:
    """Spans of ``span_windows`` windows (None: the whole run in one span), in event-time order.

    Iterate :meth:`spans` once; then :meth:`finish` gives the ground truth of what was iterated.
    With ``truth_sink`` the per-window truth rows go to that JSON-lines file as spans are made
    (``keep_rows`` False: only there, so memory stays bounded by the span). ``truth`` False skips
    the ground truth (a feed nobody scores: less CPU); the messages are the same. ``keep_moving``
    keeps the moving devices on corridors, per device (``truth.corridor_moving``).
    """

    def __init__(
        self,
        config: SimConfig,
        settings: Settings,
        *,
        span_windows: int | None = 1,
        area: ServiceArea | None = None,
        now_ms: int | None = None,
        truth_sink: Path | None = None,
        keep_rows: bool = True,
        truth: bool = True,
        keep_moving: bool = False,
    ) -> None:
        config.validate(settings)
        if span_windows is not None and span_windows < 1:
            raise ValueError(f"span_windows must be at least 1, not {span_windows}")
        self.config, self.settings, self.span_windows = config, settings, span_windows
        now = int(time.time() * 1000) if now_ms is None else now_ms
        self.start_ms = config.resolve_start_ms(now)
        self.end_ms = self.start_ms + int(config.duration_s * 1000)
        rng = np.random.default_rng(config.seed)
        self.city = City(config, self.start_ms, rng)
        self._malformed_key = int(rng.integers(0, 2**63))
        by_size = settings.max_message_bytes // APPROX_PING_BYTES
        self.max_pings = max(1, min(settings.max_batch_pings, by_size))
        self.span_ms = config.batch_span_ms(settings)
        self.delay = config.upload_delay_ms(settings)
        self._made_to_ms = self.start_ms
        self._pings = 0
        self.home = partition_of(self.city.device_ids, settings.topic_partitions)
        self.truth = None if not truth else TruthBuilder(
            config,
            self.start_ms,
            settings,
            area or load_service_area(settings),
            self.city.traffic,
            self.city.device_ids,
            self.city.device_free_kmh,
            self.delay,
            truth_sink,
            keep_rows,
            self.home,
            keep_moving,
        )

    @property
    def devices(self) -> int:
        return len(self.city.device_ids)

    def bounds_ms(self) -> list[int]:
        """Event-time cut points (epoch ms): the start, window boundaries every ``span_windows``, the end."""
        w = self.settings.window_ms
        if self.span_windows is None:
            return [self.start_ms, self.end_ms]
        first = self.start_ms // w * w
        step = self.span_windows * w
        cuts = list(range(first + step, self.end_ms, step))
        return [self.start_ms, *cuts, self.end_ms]

    def spans(self) -> Iterator[Span]:
        """Generate each span (its ground truth is recorded as it is made)."""
        first_window = self.start_ms // self.settings.window_ms
        cuts = self.bounds_ms()
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            pings = self.city.pings((a - self.start_ms) / 1000.0, (b - self.start_ms) / 1000.0)
            plan = plan_messages(pings, self.span_ms, self.max_pings, self.settings.window_ms)
            injections = plan_malformed_by_window(
                pings, plan, self.config.malformed_rate, self.settings, self._malformed_key, first_window
            )
            if self.truth is not None:
                self.truth.add(pings, plan, injections, a, b)
            self._made_to_ms = b
            self._pings += len(pings.ts_ms)
            yield Span(a, pings, plan, injections, self.delay, self.config.mode == "batch")

    def pings_per_s(self) -> float:
        """Well-formed pings per second of event time in the spans made so far (0 before any)."""
        covered_s = (self._made_to_ms - self.start_ms) / 1000.0
        return self._pings / covered_s if covered_s > 0 else 0.0

    def finish(self) -> GroundTruth:
        if self.truth is None:
            raise ValueError("this stream was made without its ground truth (truth=False)")
        return self.truth.finish()
