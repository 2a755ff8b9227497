"""The open-data exporter against the real ClickHouse: a follower of the release feed exports each
UTC day once a later day's window is public, only published windows, once (a redelivered window
after a crash rewrites nothing), resumes after a restart, drops days beyond retention; the API
serves the index and the files without a key and refuses bad names with the reason."""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import h3
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import drop_database
from opendata import dataset
from opendata.dataset import FILES, day_folder
from opendata.exporter import Exporter
from releases.follower import Follower
from releases.models import Window
from tests.support.api import CELLS, cell_row, naive, private_settings, publish

pytestmark = pytest.mark.integration

TODAY = datetime.now(UTC).date()
DAY_A, DAY_B = TODAY - timedelta(days=2), TODAY - timedelta(days=1)
RETENTION_DAYS = 5


def _at(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC)


WINDOWS_A = [_at(DAY_A, 23, 57), _at(DAY_A, 23, 58)]
UNPUBLISHED_A = _at(DAY_A, 23, 59)  # cells written, no release_windows row: never exported
WINDOWS_B = [_at(DAY_B, 0, 0), _at(DAY_B, 12, 0)]
WINDOW_TODAY = _at(TODAY, 0, 0)


def _insert(client: Any, window: datetime) -> None:
    rows = []
    for res, cells in CELLS.items():
        for i, cell in enumerate(cells[:5]):
            row = cell_row(window, res, cell, 100 + i)
            rows.append((*row, 100.25 + i - (120 if i == 0 else 0), 0.5))  # count_est, moving_est
    client.execute(
        "INSERT INTO release_cells (window_start, res, cell, count, count_sigma, count_lo, count_hi, moving,"
        " moving_sigma, moving_lo, moving_hi, speed_kmh, speed_lo_kmh, speed_hi_kmh, count_est, moving_est)"
        " VALUES",
        rows,
    )
    client.execute(
        "INSERT INTO release_zones (window_start, zone_set, zone_id, version, count, count_est, count_sigma,"
        " count_lo, count_hi, cells, plan) VALUES",
        [(naive(window), "crowd", "park", 1, 50, 49.5, 9.0, 31.9, 67.1, 12, 7)],
    )


@pytest.fixture(scope="module")
def data(migrated: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("opendata")
    settings = private_settings(migrated, "od" + uuid.uuid4().hex[:4], opendata_dir=root,
                                release_retention_days=RETENTION_DAYS, api_key_cache_s=0.0)  # fmt: skip
    client = connect(settings)
    for w in [*WINDOWS_A, UNPUBLISHED_A, *WINDOWS_B, WINDOW_TODAY]:
        _insert(client, w)
    for w in [*WINDOWS_A, *WINDOWS_B]:
        publish(client, w)
    client.disconnect()
    stale = root / (TODAY - timedelta(days=RETENTION_DAYS + 3)).isoformat()
    stale.mkdir()
    (stale / "cells.csv").write_text("old\n")
    yield {"settings": settings, "root": root, "pool": ClickHousePool(settings, size=1), "stale": stale}
    drop_database(settings)


def _follower(data: dict[str, Any]) -> tuple[Follower, Exporter]:
    s: Settings = data["settings"]
    return Follower(data["pool"], s.opendata_follower), Exporter(data["pool"], data["root"], RETENTION_DAYS)


def test_a_day_is_exported_once_a_later_day_is_released(
    data: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dataset, "SLICE_WINDOWS", 1)  # one window per slice: slicing loses no row
    root: Path = data["root"]
    follower, exporter = _follower(data)
    assert follower.poll_once(exporter.handle) == len(WINDOWS_A) + len(WINDOWS_B)
    assert sorted(p.name for p in day_folder(root, DAY_A).iterdir()) == sorted(FILES)
    assert not day_folder(root, DAY_B).exists()  # the feed may still bring windows of B
    assert not data["stale"].exists()  # beyond retention
    with (day_folder(root, DAY_A) / "cells.csv").open() as f:
        rows = list(csv.DictReader(f))
    starts = {r["window_start"] for r in rows}
    assert starts == {w.strftime("%Y-%m-%dT%H:%M:%SZ") for w in WINDOWS_A}  # not the unpublished one
    assert len(rows) == len(WINDOWS_A) * sum(min(5, len(c)) for c in CELLS.values())
    first = next(r for r in rows if r["cell"] == h3.int_to_str(CELLS[9][0]))
    assert float(first["count_est"]) == pytest.approx(-19.75) and first["count"] == "100"
    table = pq.read_table(day_folder(root, DAY_A) / "cells.parquet")
    assert table.num_rows == len(rows) and b"geo" in table.schema.metadata
    with (day_folder(root, DAY_A) / "zones.csv").open() as f:
        zones = list(csv.DictReader(f))
    assert [z["zone_id"] for z in zones] == ["park", "park"] and zones[0]["count_est"] == "49.5"
    package = json.loads((day_folder(root, DAY_A) / "datapackage.json").read_text())
    assert "2 windows" in package["description"]


def test_redelivery_rewrites_nothing_and_a_restart_resumes(data: dict[str, Any]) -> None:
    root: Path = data["root"]
    folder = day_folder(root, DAY_A)
    before = {f: (folder / f).stat().st_mtime_ns for f in FILES}
    follower, exporter = _follower(data)  # a restarted process: cursor from feed_cursors
    assert follower.poll_once(exporter.handle) == 0
    # A crash after the export but before the cursor commit delivers the window again.
    window = follower.feed.cursor.load()
    assert window is not None and window.window_start == WINDOWS_B[-1]
    again = Window(WINDOWS_B[0], WINDOWS_B[0] + timedelta(minutes=1), WINDOWS_B[0], 1.0, 0.001, "gaussian", 0)
    exporter.handle(again)
    assert {f: (folder / f).stat().st_mtime_ns for f in FILES} == before
    client = connect(data["settings"])
    publish(client, WINDOW_TODAY)
    client.disconnect()
    assert follower.poll_once(exporter.handle) == 1
    assert day_folder(root, DAY_B).is_dir()
    with (day_folder(root, DAY_B) / "cells.csv").open() as f:
        assert {r["window_start"][:10] for r in csv.DictReader(f)} == {DAY_B.isoformat()}


def test_the_api_serves_open_data_without_a_key(data: dict[str, Any]) -> None:
    with TestClient(create_app(data["settings"])) as api:
        index = api.get("/open-data/")
        assert index.status_code == 200 and f'href="{DAY_A.isoformat()}/cells.csv"' in index.text
        got = api.get(f"/open-data/{DAY_A.isoformat()}/cells.csv")
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
        assert got.text.startswith("window_start,window_end,res,cell,count_est")
        pkg = api.get(f"/open-data/{DAY_A.isoformat()}/datapackage.json")
        assert pkg.status_code == 200 and pkg.json()["resources"][0]["name"] == "cells"
        bad = {
            "/open-data/2026-13-01/cells.csv": (400, "not a calendar day"),
            "/open-data/yesterday/cells.csv": (400, "not a day"),
            f"/open-data/{DAY_A.isoformat()}/keyring.bin": (404, "holds only"),
            f"/open-data/{(TODAY - timedelta(days=RETENTION_DAYS + 1)).isoformat()}/cells.csv":
                (404, "beyond the release retention"),
            f"/open-data/{TODAY.isoformat()}/cells.csv": (404, "has not been exported"),
            "/open-data/..%2F..%2Fetc/passwd": (404, ""),
        }  # fmt: skip
        for path, (status, reason) in bad.items():
            resp = api.get(path)
            assert resp.status_code == status, (path, resp.text)
            assert reason in resp.text, (path, resp.text)
