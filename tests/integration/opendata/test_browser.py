"""The open-data index in headless Chromium: renders with no console error and no script, lists the
exported day, and every file it links downloads (status 200, its media type); screenshot in
artifacts/opendata.png.

Needs /usr/bin/chromium (or $CHROMIUM), node and `npm ci` in frontend/ (playwright-core); skips
with that reason otherwise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api.app import create_app
from hexpulse.settings import Settings
from hexpulse.store.scratch import drop_database
from opendata import files
from opendata.dataset import FILES, README
from tests.support.api import private_settings
from tests.support.api_server import serving
from tests.support.opendata import day_cell_rows, day_zone_rows
from tests.support.paths import REPO

pytestmark = pytest.mark.integration

FRONTEND = REPO / "frontend"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
DAY = datetime.now(UTC).date() - timedelta(days=1)


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    if shutil.which("node") is None:
        return "node is not installed"
    if not (FRONTEND / "node_modules" / "playwright-core").exists():
        return "playwright-core is not installed (run 'npm ci' in frontend/)"
    return None


@pytest.fixture(scope="module")
def settings(migrated: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("opendata-browser")
    folder = root / DAY.isoformat()
    folder.mkdir()
    start = datetime(DAY.year, DAY.month, DAY.day)
    with files.CellFiles(folder) as cells:
        cells.write(day_cell_rows(start))
    files.write_zones_csv(folder / "zones.csv", day_zone_rows(start))
    tourism_date = DAY - timedelta(days=1)
    files.write_tourism_csv(folder / "tourism.csv", [])
    files.write_tourism_parquet(folder / "tourism.parquet", [], {})
    (folder / "README.md").write_text(README.format(day=DAY.isoformat(), windows=3,
                                                    tourism_date=tourism_date.isoformat()))  # fmt: skip
    files.write_datapackage(folder, DAY, windows=3, tourism_date=tourism_date)
    s = private_settings(migrated, "odb" + uuid.uuid4().hex[:4], opendata_dir=root)
    yield s
    drop_database(s)


def test_open_data_index_in_chromium(settings: Settings) -> None:
    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "opendata.png"
    with serving(create_app(settings)) as base:
        out = subprocess.run(
            ["node", str(FRONTEND / "e2e" / "opendata.mjs"), base, str(shot)],
            capture_output=True, text=True, cwd=FRONTEND, timeout=120,
        )  # fmt: skip
    assert out.returncode == 0, out.stderr
    msg = json.loads(out.stdout.splitlines()[-1])
    assert msg["step"] == "opendata", msg
    assert msg["status"] == 200 and msg["errors"] == [], msg["errors"]
    assert msg["scripts"] == 0 and msg["rows"] == len(FILES)
    assert sorted(link.rsplit("/", 1)[1] for link in msg["links"]) == sorted(FILES)
    assert [f["status"] for f in msg["fetched"]] == [200] * len(FILES), msg["fetched"]
    types = {f["href"].rsplit("/", 1)[1]: f["type"] for f in msg["fetched"]}
    assert types["cells.parquet"] == "application/vnd.apache.parquet"
    assert types["cells.csv"].startswith("text/csv")
    assert shot.exists()
