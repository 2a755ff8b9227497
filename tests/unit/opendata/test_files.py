"""The exported files of one day: CSV header and values, GeoParquet read back with pyarrow and
its ``geo`` metadata validated, the datapackage describing exactly the files written."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import h3
import jsonschema
import pyarrow.parquet as pq
import pytest
from shapely import wkb
from shapely.geometry import Point

from opendata import files
from opendata.columns import CELL_COLUMNS, GEOMETRY, TOURISM_COLUMNS, ZONE_COLUMNS
from releases.tourism import METRICS, DailyValue, TourismDay
from tests.support.opendata import day_cell_rows, day_zone_rows

DAY = date(2026, 11, 30)
START = datetime(2026, 11, 30, 0, 0, 0)

# The GeoParquet 1.1 file-metadata rules this export relies on, written from the specification's
# prose (required keys, WKB encoding, a bbox of four numbers, CRS omitted = OGC:CRS84).
GEO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["version", "primary_column", "columns"],
    "properties": {
        "version": {"type": "string", "pattern": r"^1\.\d+\.\d+$"},
        "primary_column": {"type": "string", "minLength": 1},
        "columns": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "required": ["encoding", "geometry_types"],
                "properties": {
                    "encoding": {"enum": ["WKB"]},
                    "geometry_types": {"type": "array", "items": {"enum": ["Polygon", "MultiPolygon"]}},
                    "bbox": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
                },
            },
        },
    },
}


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    cells, zones = day_cell_rows(START), day_zone_rows(START)
    with files.CellFiles(tmp_path) as out:  # in two slices, as a day is written
        out.write(cells[:10])
        out.write(cells[10:])
    files.write_zones_csv(tmp_path / "zones.csv", zones)
    files.write_datapackage(tmp_path, DAY, windows=3)
    return tmp_path


def test_cells_csv_has_the_columns_and_export_forms(folder: Path) -> None:
    with (folder / "cells.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [c.name for c in CELL_COLUMNS]
    assert len(rows) == len(day_cell_rows(START))
    first = rows[0]
    assert first["window_start"] == "2026-11-30T00:00:00Z" and first["window_end"] == "2026-11-30T00:01:00Z"
    assert h3.is_valid_cell(first["cell"]) and h3.get_resolution(first["cell"]) == 9
    assert float(first["count_est"]) == -3.25 and first["count"] == "0"  # estimate kept, display clipped
    assert first["speed_kmh"] == ""  # no speed: empty, not zero


def test_zones_csv(folder: Path) -> None:
    with (folder / "zones.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [c.name for c in ZONE_COLUMNS]
    assert {r["zone_id"] for r in rows} == {"z0", "z1"} and len(rows) == 6


def test_geoparquet_reads_back_with_valid_metadata(folder: Path) -> None:
    table = pq.read_table(folder / "cells.parquet")
    assert table.column_names == [c.name for c in CELL_COLUMNS] + [GEOMETRY.name]
    assert table.num_rows == len(day_cell_rows(START))
    assert table.schema.field("window_start").type.tz == "UTC"  # Parquet keeps seconds as ms
    assert table.column("window_start")[0].as_py().isoformat() == "2026-11-30T00:00:00+00:00"
    geo = json.loads(table.schema.metadata[b"geo"])
    jsonschema.validate(geo, GEO_SCHEMA)
    assert geo["primary_column"] == "geometry"
    for cell, blob in zip(
        table.column("cell").to_pylist(), table.column("geometry").to_pylist(), strict=True
    ):
        poly = wkb.loads(blob)
        lat, lng = h3.cell_to_latlng(cell)
        assert poly.geom_type == "Polygon" and poly.contains(Point(lng, lat))  # lon/lat order
    assert pq.ParquetFile(folder / "cells.parquet").metadata.num_row_groups == 2
    speeds = table.column("speed_kmh").to_pylist()
    assert speeds[0] is None and speeds[1] == 31.0


def test_datapackage_describes_every_file(folder: Path) -> None:
    package = json.loads((folder / "datapackage.json").read_text())
    assert package["name"] == "hexpulse-2026-11-30"
    by_name = {r["name"]: r for r in package["resources"]}
    assert set(by_name) == {"cells", "cells-geoparquet", "zones"}
    for resource in package["resources"]:
        data = (folder / resource["path"]).read_bytes()
        assert resource["bytes"] == len(data)
        assert resource["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
        for field in resource["schema"]["fields"]:
            assert field["type"] in {"string", "number", "integer", "datetime", "geojson"}
            assert field["description"]
    with (folder / "cells.csv").open() as f:
        header = next(csv.reader(f))
    assert [f["name"] for f in by_name["cells"]["schema"]["fields"]] == header
    units = {f["name"]: f.get("unit") for f in by_name["cells"]["schema"]["fields"]}
    assert units["count_est"] == "devices" and units["speed_kmh"] == "km/h" and units["window_start"] == "UTC"
    assert set(by_name["cells"]["schema"]["primaryKey"]) <= set(header)


def _tourism_day(area: str) -> TourismDay:
    values = {m: DailyValue(100.0 + i, 7.07, 86.1 + i, 113.9 + i, 100 + i) for i, m in enumerate(METRICS)}
    start = datetime(2026, 11, 28, 16, tzinfo=UTC)
    return TourismDay(area, date(2026, 11, 29), "Asia/Shanghai", start, start + timedelta(days=1), 3, 7,
                      start + timedelta(days=1, minutes=2), values)  # fmt: skip


SQUARE = {"type": "Polygon", "coordinates": [[[113.3, 23.1], [113.31, 23.1], [113.31, 23.11], [113.3, 23.11],
                                              [113.3, 23.1]]]}  # fmt: skip


def test_tourism_geoparquet_reads_back_with_the_zone_polygon_and_valid_metadata(tmp_path: Path) -> None:
    days = [_tourism_day("tower"), _tourism_day("unmapped")]
    geometries = {("tower", date(2026, 11, 29)): json.dumps(SQUARE), ("unmapped", date(2026, 11, 29)): None}
    files.write_tourism_csv(tmp_path / "tourism.csv", days)
    files.write_tourism_parquet(tmp_path / "tourism.parquet", days, geometries)
    table = pq.read_table(tmp_path / "tourism.parquet")
    assert table.column_names == [c.name for c in TOURISM_COLUMNS] + ["geometry"]
    assert table.num_rows == 2 * len(METRICS)
    geo = json.loads(table.schema.metadata[b"geo"])
    jsonschema.validate(geo, GEO_SCHEMA)
    assert geo["primary_column"] == "geometry" and geo["columns"]["geometry"]["encoding"] == "WKB"
    rows = table.to_pylist()
    tower = [r for r in rows if r["area_id"] == "tower"]
    assert {r["metric"] for r in tower} == set(METRICS)
    assert tower[0]["local_date"] == date(2026, 11, 29)
    assert tower[0]["day_end"].isoformat() == "2026-11-29T16:00:00+00:00"
    poly = wkb.loads(tower[0]["geometry"])
    assert poly.geom_type in geo["columns"]["geometry"]["geometry_types"]
    assert poly.contains(Point(113.305, 23.105))  # lon/lat order
    assert all(r["geometry"] is None for r in rows if r["area_id"] == "unmapped")
    with (tmp_path / "tourism.csv").open() as f:  # the same rows as the CSV, in the same order
        csv_rows = list(csv.DictReader(f))
    assert [(r["area_id"], r["metric"], float(r["estimate"])) for r in csv_rows] == [
        (r["area_id"], r["metric"], r["estimate"]) for r in rows
    ]


def test_datapackage_describes_the_tourism_files(folder: Path) -> None:
    days = [_tourism_day("tower")]
    files.write_tourism_csv(folder / "tourism.csv", days)
    shapes = {("tower", date(2026, 11, 29)): json.dumps(SQUARE)}
    files.write_tourism_parquet(folder / "tourism.parquet", days, shapes)
    files.write_datapackage(folder, DAY, windows=3, tourism_date=date(2026, 11, 29))
    by_name = {r["name"]: r for r in json.loads((folder / "datapackage.json").read_text())["resources"]}
    parquet = by_name["tourism-geoparquet"]
    assert parquet["path"] == "tourism.parquet" and parquet["format"] == "parquet"
    data = (folder / "tourism.parquet").read_bytes()
    assert parquet["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
    names = [f["name"] for f in parquet["schema"]["fields"]]
    assert names == [c.name for c in TOURISM_COLUMNS] + ["geometry"]
    assert parquet["schema"]["fields"][-1]["type"] == "geojson"
