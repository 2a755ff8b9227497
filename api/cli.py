"""``hexpulse api`` (serve), ``hexpulse keys`` (create, list, revoke API keys) and ``hexpulse zones``
(load, list registered zones)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer

from api.exceptions import ApiError
from api.keys import SCOPES, KeyStore
from api.zones import ZoneStore
from hexpulse.settings import get_settings
from hexpulse.store import ping_clickhouse
from hexpulse.store.pool import ClickHousePool
from hexpulse.times import naive_utc_now
from privacy.release.shares import funded_sets

keys_app = typer.Typer(no_args_is_help=True, help="Manage API keys (stored hashed; shown once).")
zones_app = typer.Typer(no_args_is_help=True, help="Registered zones (measured from the next window).")


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
    expires_days: Annotated[
        float | None, typer.Option(min=0.0001, help="days until the key is refused (default: never)")
    ] = None,
) -> None:
    """Create a key and print it once on stdout (only its hash is stored)."""
    expires = None if expires_days is None else naive_utc_now() + timedelta(days=expires_days)
    key, token = _store().create(name, scope, expires)
    typer.echo(token)
    if not quiet:
        until = f", expires {expires:%Y-%m-%dT%H:%M:%SZ}" if expires else ""
        typer.echo(f"key id {key.key_id}, scopes {', '.join(sorted(key.scopes))}{until}; store it now",
                   err=True)  # fmt: skip


@keys_app.command("list")
def list_keys() -> None:
    """List keys (id, name, scopes, created, state); secrets are never shown."""
    for key in sorted(_store().snapshot(force=True).values(), key=lambda k: k.created_at):
        now = naive_utc_now()
        state = "revoked" if key.revoked else "expired" if key.expired(now) else "active"
        if key.expires_at and state == "active":
            state += f" until {key.expires_at:%Y-%m-%dT%H:%M:%SZ}"
        typer.echo(
            f"{key.key_id}  {key.name}  {','.join(sorted(key.scopes))}  "
            f"{key.created_at:%Y-%m-%dT%H:%M:%SZ}  {state}"
        )


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="the key id shown by 'keys list'")]) -> None:
    """Revoke a key (API processes stop accepting it within HEXPULSE_API_KEY_CACHE_S)."""
    key = _store().revoke(key_id)
    typer.echo(f"revoked {key.key_id} ({key.name})")


def _zones() -> ZoneStore:
    settings = get_settings()
    ping_clickhouse(settings, role="api")
    return ZoneStore(ClickHousePool(settings, size=1), settings)


@zones_app.command("load")
def load_zones(
    path: Annotated[Path, typer.Argument(help="GeoJSON FeatureCollection; properties id, set, name")],
) -> None:
    """Register every zone of a file (as POST /v1/zones would); zones whose id exists are left alone,
    and zones of a set the budget plan does not fund are skipped with a line (fund the set with
    HEXPULSE_BUDGET_PLAN, then load again)."""
    try:
        doc: Any = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        typer.echo(f"cannot read {path}: {exc}", err=True)
        raise typer.Exit(2) from None
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list):
        typer.echo(f"{path} is not a GeoJSON FeatureCollection", err=True)
        raise typer.Exit(2)
    store = _zones()
    existing = {z.zone_id for z in store.current()}
    funded = funded_sets(tuple(get_settings().budget_plan))
    failed = 0
    unfunded: dict[str, int] = {}
    for feature in features:
        props = feature.get("properties") or {} if isinstance(feature, dict) else {}
        zone_id = props.get("id")
        if zone_id in existing:
            typer.echo(f"zone {zone_id}: exists, left alone")
            continue
        zone_set = str(props.get("set", ""))
        if zone_set and zone_set not in funded:
            unfunded[zone_set] = unfunded.get(zone_set, 0) + 1
            continue
        try:
            zone = store.create(zone_set, str(props.get("name", "")), feature, zone_id)
        except ApiError as exc:
            failed += 1
            typer.echo(f"zone {zone_id}: refused: {exc}", err=True)
            continue
        typer.echo(f"zone {zone.zone_id} ({zone.zone_set}, {len(zone.cells)} cells) from "
                   f"{zone.valid_from:%Y-%m-%dT%H:%M:%SZ}")  # fmt: skip
    for zone_set, n in sorted(unfunded.items()):
        typer.echo(f"{n} zone(s) of set {zone_set!r} skipped: the budget plan funds only {list(funded)} "
                   f"(add 'zones.{zone_set}:<share>' to HEXPULSE_BUDGET_PLAN to measure them)")  # fmt: skip
    if failed:
        raise typer.Exit(1)


@zones_app.command("list")
def list_zones() -> None:
    """List the zones in effect now or from the next window."""
    for z in _zones().current():
        typer.echo(f"{z.zone_id}  {z.zone_set}  v{z.version}  {len(z.cells)} cells  "
                   f"from {z.valid_from:%Y-%m-%dT%H:%M:%SZ}  {z.name}")  # fmt: skip
