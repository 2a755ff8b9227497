"""``hexpulse opendata``: run the export follower, or export one released day by hand."""

from __future__ import annotations

import signal
import threading
from datetime import date
from typing import Annotated, Any

import typer

from hexpulse.errors import ConfigError
from hexpulse.settings import get_settings
from hexpulse.store import ping_clickhouse
from hexpulse.store.pool import ClickHousePool
from opendata.dataset import export_day, opendata_root
from opendata.exporter import run
from releases.days import released_days

opendata_app = typer.Typer(no_args_is_help=True, help="Open data: released days as CSV and GeoParquet.")


@opendata_app.command("follow")
def follow() -> None:
    """Follow the release feed and export every complete day (until SIGTERM or Ctrl-C)."""
    settings = get_settings()
    ping_clickhouse(settings, role="api")
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    typer.echo(f"exporting released days to {opendata_root(settings)}")
    run(settings, ClickHousePool(settings, size=1), stop)


@opendata_app.command("export")
def export(day: Annotated[str, typer.Option(help="UTC day, YYYY-MM-DD (must be fully released)")]) -> None:
    """Export one released day now (no-op if its folder exists)."""
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise ConfigError(f"--day {day[:40]!r} is not a date: use YYYY-MM-DD") from None
    settings = get_settings()
    ping_clickhouse(settings, role="api")
    pool = ClickHousePool(settings, size=1)
    if not any(later > when for later in released_days(pool, when)):
        raise ConfigError(f"{when.isoformat()} is not fully released yet: no window of a later day is public")
    typer.echo(str(export_day(pool, opendata_root(settings), when)))
