"""The ``hexpulse`` command line: one entry point, one sub-command per job.

Each stage owns its commands (``aggregate``: consume; ``privacy``: release, keys of the pseudonym
ring; ``api``: api, api keys, zones; ``simulator``: simulate). This module only names them in
:data:`STAGE_COMMANDS` and imports one when it runs (or when help lists it), so the ground floor
never imports a stage; it also turns every HexpulseError into one sentence and a non-zero exit code.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
from typer.core import TyperGroup

from hexpulse.errors import HexpulseError
from hexpulse.logs import configure_logging
from hexpulse.settings import get_settings

#: Sub-command name → ``"module:attribute"`` of a command function or a ``typer.Typer`` group,
#: in the order ``hexpulse --help`` lists them (after the ground floor's own commands).
STAGE_COMMANDS: dict[str, str] = {
    "simulate": "simulator.cli:simulate",
    "consume": "aggregate.cli:consume",
    "release": "privacy.release.cli:release",
    "api": "api.cli:serve",
    "keyring": "privacy.keys.cli:keyring_app",
    "keys": "api.cli:keys_app",
    "zones": "api.cli:zones_app",
    "alerts": "alerts.cli:alerts",
    "opendata": "opendata.cli:opendata_app",
    "report": "tourism.report_cli:report",
}


def load_stage_command(name: str) -> Any:
    """The click command of stage command ``name`` (imports its module)."""
    module, _, attribute = STAGE_COMMANDS[name].partition(":")
    target = getattr(importlib.import_module(module), attribute)
    command: Any
    if isinstance(target, typer.Typer):
        command = typer.main.get_group(target)  # a sub-group: no completion options of its own
    else:
        single = typer.Typer(add_completion=False)
        single.command(name=name)(target)
        command = typer.main.get_command(single)
    command.name = name
    return command


class _StageCommands(MutableMapping[str, Any]):
    """The root group's command table: its own commands, then the stage commands, each imported
    the first time it is looked up (click and typer read a group's commands only through it)."""

    def __init__(self, own: MutableMapping[str, Any]) -> None:
        self._own = own
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name in self._own:
            return self._own[name]
        if name not in STAGE_COMMANDS:
            raise KeyError(name)
        if name not in self._loaded:
            self._loaded[name] = load_stage_command(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._own[name] = command

    def __delitem__(self, name: str) -> None:
        del self._own[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._own
        yield from (name for name in STAGE_COMMANDS if name not in self._own)

    def __len__(self) -> int:
        return len(self._own) + sum(name not in self._own for name in STAGE_COMMANDS)

    def __contains__(self, name: object) -> bool:
        return name in self._own or name in STAGE_COMMANDS


class _StageGroup(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _StageCommands(self.commands)


app = typer.Typer(cls=_StageGroup, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.command()
def migrate() -> None:
    """Create the database and apply pending ClickHouse migrations."""
    from hexpulse.store import apply_migrations, connect, ping_clickhouse

    settings = get_settings()
    ping_clickhouse(settings)
    client = connect(settings, use_db=False)
    applied = apply_migrations(client, settings.clickhouse_database, settings.exact_database)
    typer.echo(
        f"databases {settings.clickhouse_database}, {settings.exact_database}: "
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


def _usage_errors() -> type[Any]:
    """The usage-error class of the click that typer runs (recent typer bundles its own copy)."""
    try:
        from typer._click.exceptions import ClickException
    except ImportError:  # typer on the click package
        from click.exceptions import ClickException  # type: ignore[assignment]
    return ClickException


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
        # 2 unless the error names its own status (a stalled consumer: 75, restart me).
        sys.exit(getattr(exc, "exit_code", 2))
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except _usage_errors() as exc:  # click usage errors arrive here in non-standalone mode
        exc.show()
        sys.exit(exc.exit_code)
