"""``hexpulse api`` (serve) and ``hexpulse keys`` (create, list, revoke API keys)."""

from __future__ import annotations

from typing import Annotated

import typer

from api.keys import SCOPES, KeyStore
from hexpulse.settings import get_settings
from hexpulse.store import ping_clickhouse
from hexpulse.store.pool import ClickHousePool

keys_app = typer.Typer(no_args_is_help=True, help="Manage API keys (stored hashed; shown once).")


def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default HEXPULSE_API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default HEXPULSE_API_PORT)")] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes")] = 1,
) -> None:
    """Serve the API and the dashboard."""
    import uvicorn

    settings = get_settings()
    ping_clickhouse(settings, role="api")
    bind_host, bind_port = host or settings.api_host, port or settings.api_port
    typer.echo(f"hexpulse API and dashboard on http://{bind_host}:{bind_port}/ (OpenAPI at /docs)")
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=bind_host,
        port=bind_port,
        workers=workers,
        log_level="warning",
        access_log=False,  # access logs would carry bbox coordinates and cell ids of requests
    )


def _store() -> KeyStore:
    settings = get_settings()
    ping_clickhouse(settings, role="api")
    return KeyStore(ClickHousePool(settings, size=1), cache_s=0.0)


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Option(help="who or what uses the key, e.g. 'tcc-wall-1'")],
    scope: Annotated[list[str], typer.Option(help=f"repeatable; one of {', '.join(SCOPES)}")],
    quiet: Annotated[bool, typer.Option("--quiet", help="print only the key (for scripts)")] = False,
) -> None:
    """Create a key and print it once on stdout (only its hash is stored)."""
    key, token = _store().create(name, scope)
    typer.echo(token)
    if not quiet:
        typer.echo(f"key id {key.key_id}, scopes {', '.join(sorted(key.scopes))}; store it now", err=True)


@keys_app.command("list")
def list_keys() -> None:
    """List keys (id, name, scopes, created, state); secrets are never shown."""
    for key in sorted(_store().snapshot(force=True).values(), key=lambda k: k.created_at):
        state = "revoked" if key.revoked else "active"
        typer.echo(
            f"{key.key_id}  {key.name}  {','.join(sorted(key.scopes))}  "
            f"{key.created_at:%Y-%m-%dT%H:%M:%SZ}  {state}"
        )


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="the key id shown by 'keys list'")]) -> None:
    """Revoke a key (API processes stop accepting it within HEXPULSE_API_KEY_CACHE_S)."""
    key = _store().revoke(key_id)
    typer.echo(f"revoked {key.key_id} ({key.name})")
