"""One simulation run without Kafka, in one piece: the message stream and its ground truth."""

from __future__ import annotations

from dataclasses import dataclass

from hexpulse.service_area import ServiceArea
from hexpulse.settings import Settings
from simulator.config import SimConfig
from simulator.ground_truth import GroundTruth
from simulator.messages import Span
from simulator.stream import CityStream


@dataclass(frozen=True)
class Simulation(Span):
    """A generated run: iterate :meth:`messages` (any number of times) and read :attr:`truth`."""

    config: SimConfig
    truth: GroundTruth

    @property
    def end_ms(self) -> int:
        return self.start_ms + int(self.config.duration_s * 1000)


def generate(
    config: SimConfig, settings: Settings, *, area: ServiceArea | None = None, now_ms: int | None = None
) -> Simulation:
    """Generate a run deterministically from ``config.seed`` (and ``start_ms`` when it is given).

    Same config + same settings → byte-identical messages and ground truth, the same as
    :class:`~simulator.stream.CityStream` gives span by span. Memory holds the whole run: for the
    city at real density and long runs, stream it instead.
    """
    stream = CityStream(config, settings, span_windows=None, area=area, now_ms=now_ms)
    (span,) = list(stream.spans())
    return Simulation(
        span.start_ms,
        span.pings,
        span.plan,
        span.injections,
        span.upload_delay_ms,
        span.batched,
        config=config,
        truth=stream.finish(),
    )
