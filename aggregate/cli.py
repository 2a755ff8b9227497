"""``hexpulse consume``: run one member of the aggregate consumer group until SIGTERM/SIGINT."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from types import FrameType

import orjson
import typer

from aggregate.consumer import ConsumeLoop
from hexpulse.errors import ConfigError, HexpulseError
from hexpulse.kafka import require_topics
from hexpulse.settings import get_settings


def _build_loop(stop: threading.Event, idle_exit_s: float | None) -> ConsumeLoop:
    from hexpulse.service_area import load_service_area
    from ingest import Ingestor, KafkaDeadLetterSink
    from privacy.keys.pseudonyms import RotatingPseudonymizer
    from privacy.keys.sealing import PayloadSealer

    settings = get_settings()
    area = load_service_area(settings)
    dlq = KafkaDeadLetterSink(settings, PayloadSealer.from_settings(settings))
    ingestor = Ingestor(settings, area, RotatingPseudonymizer.from_settings(settings), dlq)
    ingestor.warm()

    def done(loop: ConsumeLoop) -> bool:
        last = loop.stats.last_record_s
        return (
            idle_exit_s is not None
            and last is not None
            and not loop.agg.pending
            and time.monotonic() - last >= idle_exit_s
        )

    loop = ConsumeLoop(settings, ingestor, stop=stop, stop_when=done, hard_exit=True)
    loop.closers.append(lambda: dlq.close(max(0.1, loop.remaining_s())))
    return loop


def consume(
    exit_when_idle_s: float = typer.Option(
        None, help="Exit once no record arrived for this many seconds (benchmarks, tests)."
    ),
    print_stats: bool = typer.Option(False, help="Print one JSON line of throughput counters at exit."),
) -> None:
    """Consume pings, aggregate exact partials per window and cell, write them to ClickHouse."""
    settings = get_settings()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if settings.metrics_port:
        from prometheus_client import start_http_server

        try:
            start_http_server(settings.metrics_port, addr=settings.metrics_host)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {settings.metrics_host}:{settings.metrics_port} ({exc.strerror}); "
                "give each consumer on a host its own HEXPULSE_METRICS_PORT, or 0 to disable"
            ) from None
    # A missing DLQ topic would stall every dead letter for a minute (no broker auto-creates here).
    require_topics(settings, [settings.topic_pings, settings.topic_dlq])
    loop = _build_loop(stop, exit_when_idle_s)
    try:
        stats = loop.run()
    finally:
        for close in loop.closers:
            with contextlib.suppress(HexpulseError):  # e.g. DLQ unreachable: records re-sent on replay
                close()
    if print_stats:
        span = (stats.last_record_s or 0.0) - (stats.first_record_s or 0.0)
        out = {
            "records": stats.records,
            "pings": stats.pings,
            "span_s": span,
            "first_record_s": stats.first_record_s,
            "last_record_s": stats.last_record_s,
            "last_flush_s": stats.last_flush_s,
            **vars(loop.agg.stats),
        }
        sys.stdout.write(orjson.dumps(out).decode() + "\n")
        sys.stdout.flush()
