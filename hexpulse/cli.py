"""The ``hexpulse`` command line: one entry point, one sub-command per job.

Each stage owns its commands (``ingest``/``aggregate``: consume; ``privacy``: release, keys of the
pseudonym ring; ``api``: api, api keys; ``hexpulse.simulator``: simulate). This module only wires
them together and turns every HexpulseError into one sentence and a non-zero exit code.
"""

from __future__ import annotations

import sys

import typer

from hexpulse.errors import HexpulseError
from hexpulse.logs import configure_logging
from hexpulse.settings import get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.command()
def migrate() -> None:
    """Create the database and apply pending ClickHouse migrations."""
    from hexpulse.store import apply_migrations, connect, ping_clickhouse

    settings = get_settings()
    ping_clickhouse(settings)
    client = connect(settings, use_db=False)
    applied = apply_migrations(client, settings.clickhouse_database)
    typer.echo(
        f"database {settings.clickhouse_database}: "
        + (f"applied migrations {applied}" if applied else "up to date")
    )


@app.command()
def topics(
    check: bool = typer.Option(
        False, "--check", help="Change nothing; exit 1 if the topics differ from the settings."
    ),
) -> None:
    """Create the pings and dead-letter topics, or set their configs where they differ."""
    from hexpulse.kafka import ensure_topics

    settings = get_settings()
    report = ensure_topics(settings, check=check)
    where = f"topics on {settings.kafka_bootstrap}"
    if check:
        for name in report.created:
            typer.echo(f"{where}: {name} is missing")
        for change in report.changes:
            typer.echo(f"{where}: differs {change}")
        for mismatch in report.mismatches:
            typer.echo(f"{where}: {mismatch}")
        if not report.in_order:
            raise typer.Exit(1)
        typer.echo(f"{where}: match the settings")
        return
    for change in report.changes:
        typer.echo(f"{where}: set {change}")
    typer.echo(
        f"{where}: "
        + (f"created {report.created}" if report.created else "already present")
        + f" ({settings.topic_partitions} partitions, timestamps {settings.topic_timestamp_type})"
    )


def _mount() -> None:
    """Mount every stage's commands (imported here so this module stays the only wiring)."""
    from aggregate.cli import consume
    from api.cli import keys_app, serve
    from hexpulse.simulator.cli import simulate
    from privacy.cli import release
    from privacy.keyring_cli import keyring_app

    app.command(name="simulate")(simulate)
    app.command(name="consume")(consume)
    app.command(name="release")(release)
    app.add_typer(keyring_app, name="keyring")
    app.command(name="api")(serve)
    app.add_typer(keys_app, name="keys")


_mount()


def main() -> None:
    """Console entry point: run the app, turning hexpulse errors into one sentence."""
    try:
        configure_logging(get_settings().log_level)
        code = app(standalone_mode=False)
        # Without standalone mode click returns a command's typer.Exit code instead of exiting.
        if isinstance(code, int) and code:
            sys.exit(code)
    except HexpulseError as exc:
        typer.echo(f"hexpulse: {exc}", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        from click.exceptions import ClickException

        if isinstance(exc, ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
