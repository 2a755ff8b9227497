"""The exported files of one day: CSV header and values, GeoParquet read back with pyarrow and
its ``geo`` metadata validated, the datapackage describing exactly the files written."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import h3
import jsonschema
import pyarrow.parquet as pq
import pytest
from shapely import wkb
from shapely.geometry import Point

from opendata import files
from opendata.columns import CELL_COLUMNS, GEOMETRY, ZONE_COLUMNS
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
