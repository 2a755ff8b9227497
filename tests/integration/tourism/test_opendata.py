"""Released tourism days in the open data: the folder of UTC day D holds ``tourism.csv`` with every
released area-day of local date D−1 (complete in every time zone when D's folder is written), one
row per area and metric, described in ``datapackage.json`` with units; unpublished days are not
exported."""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import drop_database
from opendata.columns import TOURISM_COLUMNS
from opendata.dataset import FILES, export_day, tourism_date_of
from releases.tourism import DWELL_BINS
from tests.support.api import CELLS, cell_row, insert_cells, private_settings, publish
from tests.support.tourism import release_days

pytestmark = pytest.mark.integration

DAY = datetime.now(UTC).date() - timedelta(days=1)  # the exported UTC day
LOCAL = DAY - timedelta(days=1)  # the local date its tourism.csv holds


@pytest.fixture(scope="module")
def data(migrated: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("opendata-tourism")
    settings = private_settings(migrated, "otour" + uuid.uuid4().hex[:4], opendata_dir=root)
    client = connect(settings)
    window = datetime(DAY.year, DAY.month, DAY.day, 12, tzinfo=UTC)
    insert_cells(client, [cell_row(window, 9, c, 50) for c in CELLS[9][:3]])
    publish(client, window)
    release_days(client, "baiyun", "Asia/Shanghai", [(LOCAL, 6000.0), (DAY, 7000.0)])
    release_days(client, "lakeside", "America/Los_Angeles", [(LOCAL, 800.0)])
    release_days(client, "unpublished", "UTC", [(LOCAL, 5.0)], publish_day=False)
    client.disconnect()
    yield {"settings": settings, "root": root, "pool": ClickHousePool(settings, size=1)}
    drop_database(settings)


def test_a_day_folder_holds_the_tourism_days_of_the_local_date_before(data: dict[str, Any]) -> None:
    assert tourism_date_of(DAY) == LOCAL
    folder = export_day(data["pool"], data["root"], DAY)
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    with (folder / "tourism.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [c.name for c in TOURISM_COLUMNS]
    assert {(r["area_id"], r["local_date"]) for r in rows} == {("baiyun", LOCAL.isoformat()),
                                                              ("lakeside", LOCAL.isoformat())}  # fmt: skip
    baiyun = {r["metric"]: r for r in rows if r["area_id"] == "baiyun"}
    assert set(baiyun) == {"visitors", *DWELL_BINS}
    assert float(baiyun["visitors"]["estimate"]) == 6000.0 and float(baiyun["visitors"]["sigma"]) == 25.0
    assert baiyun["visitors"]["day_start"].endswith("T16:00:00Z") and baiyun["visitors"]["k_areas"] == "3"
    lake = next(r for r in rows if r["area_id"] == "lakeside")
    assert lake["timezone"] == "America/Los_Angeles" and lake["day_end"].endswith("T08:00:00Z")
    package = json.loads((folder / "datapackage.json").read_text())
    resource = next(r for r in package["resources"] if r["name"] == "tourism")
    assert LOCAL.isoformat() in resource["description"]
    fields = {f["name"]: f for f in resource["schema"]["fields"]}
    assert list(fields) == [c.name for c in TOURISM_COLUMNS]
    assert fields["estimate"]["unit"] == "devices" and fields["local_date"]["type"] == "date"
    assert resource["schema"]["primaryKey"] == ["area_id", "local_date", "metric"]
    readme = (folder / "README.md").read_text()
    assert f"tourism area-days of local date {LOCAL.isoformat()}" in readme
