"""``hexpulse keyring …``: create the development master key, inspect and rotate the key ring.

Nothing here prints key material: ``status`` shows day numbers only.
"""

from __future__ import annotations

import datetime as dt
import logging

import typer

from hexpulse.logs import log_event
from hexpulse.settings import get_settings
from privacy.keys.exceptions import MasterKeyError
from privacy.keys.keyring import KeyRing
from privacy.keys.master_key import create_master_key_file

keyring_app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Pseudonym and DLQ key ring (docs/KEYS.md)."
)
_log = logging.getLogger("hexpulse.keyring")


def _days(days: tuple[int, ...] | list[int]) -> str:
    if not days:
        return "none"
    return ", ".join(f"{d} ({dt.date(1970, 1, 1) + dt.timedelta(days=d)})" for d in days)


@keyring_app.command()
def init() -> None:
    """Development only: create the master key file if absent (mode 0600) and today's keys."""
    settings = get_settings()
    if settings.master_key is None:
        path = settings.resolved_master_key_file()
        if settings.environment != "development":
            if not path.exists():
                raise MasterKeyError(
                    f"'keyring init' creates master keys only in development; provision {path} "
                    "or HEXPULSE_MASTER_KEY yourself in production."
                )
        elif create_master_key_file(path):
            typer.echo(f"master key: created {path} (mode 0600)")
        else:
            typer.echo(f"master key: {path} already present")
    else:
        typer.echo("master key: from HEXPULSE_MASTER_KEY")
    ring = KeyRing.from_settings(settings)
    created = ring.ensure_current()
    typer.echo(f"key ring {ring.path}: created keys for days {_days(created)}")


@keyring_app.command()
def status() -> None:
    """Show the ring's path, the UTC days it holds keys for and the days destroyed (no secrets)."""
    settings = get_settings()
    st = KeyRing.from_settings(settings).status()
    typer.echo(f"key ring: {st.path} ({'present' if st.exists else 'absent'})")
    typer.echo(f"today (UTC day): {_days([st.today])}")
    typer.echo(f"key retention: {settings.key_retention_days} days")
    typer.echo(f"days held: {_days(st.days_held)}")
    typer.echo(f"days destroyed: {_days(st.days_destroyed)}")


@keyring_app.command()
def rotate() -> None:
    """Create today's and tomorrow's keys if missing and destroy keys past the retention."""
    ring = KeyRing.from_settings(get_settings())
    before = set(ring.status().days_held)
    created = ring.ensure_current()
    destroyed = sorted(before - set(ring.status().days_held))
    log_event(_log, "keyring_rotated", created=created, destroyed=destroyed)
    typer.echo(f"created keys for days {_days(created)}; destroyed {_days(destroyed)}")


@keyring_app.command("destroy-expired")
def destroy_expired() -> None:
    """Destroy every day key older than HEXPULSE_KEY_RETENTION_DAYS (irreversible)."""
    destroyed = KeyRing.from_settings(get_settings()).destroy_expired()
    log_event(_log, "keyring_destroyed_expired", destroyed=destroyed)
    typer.echo(f"destroyed keys of days {_days(destroyed)}")


@keyring_app.command()
def retention(
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be dropped, drop nothing."),
) -> None:
    """Drop exact partials past release + grace and release data past retention; destroy old keys."""
    from privacy.release.retention import enforce_retention

    settings = get_settings()
    report = enforce_retention(settings, dry_run=dry_run)
    verb = "would drop" if dry_run else "dropped"
    typer.echo(
        f"{verb} partials partitions {list(report.partials_dropped) or 'none'}; "
        f"release partitions {list(report.release_dropped) or 'none'}"
    )
    if report.partials_kept_unreleased:
        typer.echo(
            f"kept partials partitions with unreleased windows: {list(report.partials_kept_unreleased)}"
        )
    if not dry_run:
        destroyed = KeyRing.from_settings(settings).destroy_expired()
        typer.echo(f"destroyed keys of days {_days(destroyed)}")
