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

import pyarrow.parquet as pq
import pytest
from shapely import wkb
from shapely.geometry import Point

from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import drop_database
from hexpulse.times import naive_utc
from hexpulse.zones import OPEN_END, ZONE_COLUMNS, Zone
from opendata.columns import TOURISM_COLUMNS
from opendata.dataset import FILES, export_day, tourism_date_of
from releases.tourism import DWELL_BINS
from tests.support.api import CELLS, cell_row, insert_cells, private_settings, publish
from tests.support.tourism import release_days

pytestmark = pytest.mark.integration

DAY = datetime.now(UTC).date() - timedelta(days=1)  # the exported UTC day
LOCAL = DAY - timedelta(days=1)  # the local date its tourism.csv holds
SINCE = datetime(2020, 1, 1, tzinfo=UTC)
SQUARE = {"type": "Polygon", "coordinates": [[[113.3, 23.1], [113.31, 23.1], [113.31, 23.11], [113.3, 23.11],
                                              [113.3, 23.1]]]}  # fmt: skip


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
    # baiyun names a zone with a polygon since 2020; lakeside has no area row (geometry null)
    zone = Zone("baiyun-zone", 1, "crowd", "Baiyun", json.dumps(SQUARE), tuple(CELLS[9][:2]), SINCE, OPEN_END)
    client.execute(f"INSERT INTO zones ({ZONE_COLUMNS}) VALUES", [zone.row()])
    area = ("baiyun", "Baiyun", "baiyun-zone", 0, "Asia/Shanghai", naive_utc(SINCE.timestamp()), 0,
            int(SINCE.timestamp()) * 10**9)  # fmt: skip
    client.execute(
        "INSERT INTO tourism_areas (area_id, name, zone_id, capacity, timezone, created_at, deleted,"
        " revision) VALUES", [area])
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


def test_tourism_parquet_holds_the_same_rows_with_each_areas_zone_polygon(data: dict[str, Any]) -> None:
    folder = export_day(data["pool"], data["root"], DAY)
    table = pq.read_table(folder / "tourism.parquet")
    assert table.column_names == [c.name for c in TOURISM_COLUMNS] + ["geometry"]
    assert json.loads(table.schema.metadata[b"geo"])["primary_column"] == "geometry"
    rows = table.to_pylist()
    with (folder / "tourism.csv").open() as f:
        in_csv = [(r["area_id"], r["metric"]) for r in csv.DictReader(f)]
    assert in_csv == [(r["area_id"], r["metric"]) for r in rows]
    baiyun = [r for r in rows if r["area_id"] == "baiyun"]
    assert baiyun and all(wkb.loads(r["geometry"]).contains(Point(113.305, 23.105)) for r in baiyun)
    assert all(r["geometry"] is None for r in rows if r["area_id"] == "lakeside")
    package = json.loads((folder / "datapackage.json").read_text())
    assert "tourism-geoparquet" in {r["name"] for r in package["resources"]}
