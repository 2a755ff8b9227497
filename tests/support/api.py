"""Helpers for the API tests: a private database and release rows written the releaser's way."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
from clickhouse_driver import Client
from fastapi.testclient import TestClient

from api.app import create_app
from api.keys import KeyStore
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import create_database, drop_database
from tests.support.clickhouse_users import allow_api

CENTER = (23.13, 113.32)  # lat, lon inside the demo service area


def private_settings(migrated: Settings, suffix: str, **update: Any) -> Settings:
    """A migrated database of the API tests' own, so other layers' rows never mix in; the suite's
    API user may read it (and nothing of the exact database)."""
    settings = migrated.model_copy(
        update={"clickhouse_database": f"{migrated.clickhouse_database}_{suffix}", **update}
    )
    create_database(settings)
    allow_api(settings)
    return settings


def api_settings(migrated: Settings, suffix: str, **update: Any) -> Settings:
    """``private_settings`` for tests that call the API many times: keys are not cached (a revoked
    key is refused at once) and the rate limit does not get in the way."""
    defaults: dict[str, Any] = {"api_key_cache_s": 0.0, "rate_limit_per_min": 10_000}
    return private_settings(migrated, suffix, **(defaults | update))


def seeded(migrated: Settings, suffix: str, **update: Any) -> Iterator[dict[str, Any]]:
    """The body of a module fixture: ``seed`` a private database, yield it, drop it afterwards."""
    settings = api_settings(migrated, suffix, **update)
    yield seed(settings)
    drop_database(settings)


def app_client(data: dict[str, Any]) -> Iterator[TestClient]:
    """The body of an ``api`` fixture: a TestClient of the app over ``data["settings"]``."""
    with TestClient(create_app(data["settings"])) as client:
        yield client


def bearer(data: dict[str, Any], name: str) -> dict[str, str]:
    """The Authorization header of the seeded key ``name``."""
    return {"Authorization": f"Bearer {data['tokens'][name]}"}


def base_cells(k: int = 3, res: int = 9) -> list[int]:
    """The res-9 disk of radius k around CENTER (k=3: 37 cells), as ints."""
    origin = h3.latlng_to_cell(CENTER[0], CENTER[1], res)
    return sorted(h3.str_to_int(c) for c in h3.grid_disk(origin, k))


def naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


def cell_row(window: datetime, res: int, cell: int, count: int, sigma: float = 10.0,
             moving: int = 0, speed: float | None = None) -> tuple[Any, ...]:  # fmt: skip
    lo, hi = max(0.0, count - 1.96 * sigma), count + 1.96 * sigma
    mlo, mhi = max(0.0, moving - 1.96 * sigma), moving + 1.96 * sigma
    slo = None if speed is None else speed - 5.0
    shi = None if speed is None else speed + 5.0
    return (naive(window), res, cell, count, sigma, lo, hi, moving, sigma, mlo, mhi, speed, slo, shi)


def insert_cells(client: Client, rows: Iterable[tuple[Any, ...]]) -> None:
    client.execute(
        "INSERT INTO release_cells (window_start, res, cell, count, count_sigma, count_lo, count_hi, moving,"
        " moving_sigma, moving_lo, moving_hi, speed_kmh, speed_lo_kmh, speed_hi_kmh) VALUES",
        list(rows),
    )


def publish(client: Client, window: datetime, window_s: int = 60, released_at: datetime | None = None,
            rho: float = 0.001) -> None:  # fmt: skip
    end = window + timedelta(seconds=window_s)
    client.execute(
        "INSERT INTO release_windows (window_start, window_end, released_at, base_cells, rho, mechanism,"
        " lag_s) VALUES",
        [(naive(window), naive(end), naive(released_at or end), 0, rho, "gaussian", 1.5)],
    )


def floor_window(t: datetime, window_s: int = 60) -> datetime:
    epoch = int(t.timestamp()) // window_s * window_s
    return datetime.fromtimestamp(epoch, UTC)


N_WINDOWS = 12
CELLS9 = base_cells(3)


def parents(cells: list[int], res: int) -> list[int]:
    return sorted({h3.str_to_int(h3.cell_to_parent(h3.int_to_str(c), res)) for c in cells})


CELLS = {9: CELLS9, 8: parents(CELLS9, 8), 7: parents(CELLS9, 7)}


def speed_at(k: int) -> float:
    """Released res-8 speed k windows ago: slow now, free flow (41..51 km/h) before."""
    return 20.0 if k == 0 else 40.0 + k


def seed(settings: Settings) -> dict[str, Any]:
    """Twelve released windows (newest 2 min ago) over CELLS at 9/8/7, one unreleased window, ledger
    rows for today and four API keys."""
    client = connect(settings)
    latest = floor_window(datetime.now(UTC)) - timedelta(seconds=120)
    windows = [latest - timedelta(seconds=60 * k) for k in range(N_WINDOWS)]
    rows = []
    for k, w in enumerate(windows):
        for res, cells in CELLS.items():
            for i, cell in enumerate(cells):
                speed = speed_at(k) if res == 8 else (None if i % 2 else 30.0)
                rows.append(cell_row(w, res, cell, 100 + i + k, sigma=10.0 + i, moving=10 + i, speed=speed))
    unreleased = latest + timedelta(seconds=60)
    rows += [cell_row(unreleased, res, c, 999, speed=25.0) for res, cells in CELLS.items() for c in cells]
    insert_cells(client, rows)
    for w in windows:
        publish(client, w)
    # Two releasers recorded the same draws (same fingerprints): the spend counts each once.
    client.execute(
        "INSERT INTO release_ledger (day, window_start, res, metric, plan, fingerprint, mechanism,"
        " sensitivity, scale, rho, releaser, recorded_at) VALUES",
        [
            (datetime.now(UTC).date(), naive(w), 9, m, 1, 1000 * k + i, "gaussian", 1.0, 10.0, 0.002,
             releaser, naive(w))
            for k, w in enumerate(windows[:3])
            for i, m in enumerate(("count", "moving"))
            for releaser in ("a", "b")
        ],
    )  # fmt: skip
    store = KeyStore(ClickHousePool(settings, size=1), cache_s=0.0)
    tokens = {
        name: store.create(name, scopes)[1]
        for name, scopes in {
            "density": ["density:read"],
            "traffic": ["traffic:read"],
            "admin": ["admin"],
            "doomed": ["density:read"],
        }.items()
    }
    client.disconnect()
    return {
        "settings": settings,
        "windows": windows,
        "unreleased": unreleased,
        "tokens": tokens,
        "store": store,
    }


def bbox_of(cells: list[int], margin: float = 0.0) -> str:
    pts = [h3.cell_to_latlng(h3.int_to_str(c)) for c in cells]
    lats, lons = [p[0] for p in pts], [p[1] for p in pts]
    return f"{min(lons) - margin},{min(lats) - margin},{max(lons) + margin},{max(lats) + margin}"
