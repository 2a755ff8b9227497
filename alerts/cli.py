"""``hexpulse alerts``: run the evaluator and the webhook delivery worker (docs/ALERTS.md)."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import typer

from hexpulse.settings import get_settings


def alerts() -> None:
    """Evaluate alert subscriptions on every released window and deliver their webhooks."""
    from prometheus_client import start_http_server

    from alerts.service import AlertsService

    settings = get_settings()
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if settings.alerts_metrics_port:
        try:
            start_http_server(settings.alerts_metrics_port, addr=settings.metrics_host)
        except OSError as exc:
            typer.echo(f"hexpulse: cannot serve metrics on {settings.metrics_host}:"
                       f"{settings.alerts_metrics_port} ({exc.strerror}); set HEXPULSE_ALERTS_METRICS_PORT",
                       err=True)  # fmt: skip
            raise typer.Exit(2) from None
    AlertsService(settings).run(stop)
