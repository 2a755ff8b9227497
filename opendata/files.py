"""Writers of one exported day: CSV, GeoParquet (cells with their H3 outline, tourism area-days
with their zone's polygon) and the
Frictionless ``datapackage.json`` describing them; every writer takes the rows of
:mod:`releases.days` and the column lists of :mod:`opendata.columns`."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import h3
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from shapely.geometry import Polygon, shape

from opendata.columns import CELL_COLUMNS, GEOMETRY, TOURISM_COLUMNS, ZONE_COLUMNS, ZONE_GEOMETRY, Column
from releases.tourism import TourismDay

GEOPARQUET_VERSION = "1.1.0"
Rows = Sequence[tuple[Any, ...]]


def iso(t: datetime) -> str:
    """A (naive UTC or aware) datetime as ISO 8601 UTC with a Z, whole seconds."""
    aware = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return aware.strftime("%Y-%m-%dT%H:%M:%SZ")


def _zone_values(row: tuple[Any, ...]) -> list[Any]:
    return [iso(row[0]), iso(row[1]), *row[2:]]


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 6))  # six decimals: far below any σ, stable across platforms
    return value


def write_csv(path: Path, columns: tuple[Column, ...], rows: list[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([c.name for c in columns])
        writer.writerows([_csv_value(v) for v in row] for row in rows)


def write_zones_csv(path: Path, rows: Rows) -> None:
    write_csv(path, ZONE_COLUMNS, [_zone_values(r) for r in rows])


def _tourism_rows(days: Sequence[TourismDay]) -> list[list[Any]]:
    """One row per released area-day and metric: (area, day, metric) order, native values."""
    return [
        [d.area_id, d.local_date, d.timezone, d.day_start, d.day_end, metric,
         v.estimate, v.sigma, v.lo, v.hi, v.display, d.k_areas]
        for d in days
        for metric, v in sorted(d.values.items())
    ]  # fmt: skip


def write_tourism_csv(path: Path, days: Sequence[TourismDay]) -> None:
    """``tourism.csv``: one row per released area-day and metric."""
    rows = [[r[0], r[1].isoformat(), r[2], iso(r[3]), iso(r[4]), *r[5:]] for r in _tourism_rows(days)]
    write_csv(path, TOURISM_COLUMNS, rows)


def write_tourism_parquet(
    path: Path, days: Sequence[TourismDay], geometries: dict[tuple[str, date], str | None]
) -> None:
    """``tourism.parquet`` (GeoParquet): ``tourism.csv``'s rows plus the polygon of the zone each
    area-day was measured on (``geometries``: GeoJSON text per (area, local date); a zone
    registered without a polygon gives a null geometry)."""
    wkb: dict[tuple[str, date], bytes | None] = {}
    for key, text in geometries.items():
        wkb[key] = shape(json.loads(text)).wkb if text else None
    schema = _geo_schema(TOURISM_COLUMNS, ZONE_GEOMETRY, ["Polygon", "MultiPolygon"])
    rows = _tourism_rows(days)
    columns: list[list[Any]] = [[r[i] for r in rows] for i in range(len(TOURISM_COLUMNS))]
    columns.append([wkb.get((r[0], r[1])) for r in rows])
    arrays = [pa.array(col, type=field.type) for col, field in zip(columns, schema, strict=True)]
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path, compression="zstd")


def _arrow_type(column: Column) -> pa.DataType:
    if column.kind == "datetime":
        return pa.timestamp("s", tz="UTC")
    if column.kind == "date":
        return pa.date32()
    if column.kind == "integer":
        return pa.int64()
    if column.kind == "number":
        return pa.float64()
    return pa.string()


def _outline_wkb(cell: int) -> bytes:
    ring = [(lng, lat) for lat, lng in h3.cell_to_boundary(h3.int_to_str(cell))]
    data: bytes = Polygon(ring).wkb
    return data


def _geo_schema(
    columns: tuple[Column, ...] = CELL_COLUMNS, geometry: Column = GEOMETRY, types: list[str] | None = None
) -> pa.Schema:
    """A Parquet schema (default ``cells.parquet``'s) with its GeoParquet ``geo`` metadata (CRS
    omitted = OGC:CRS84, lon/lat degrees; the optional bbox is omitted: ``cells.parquet`` is streamed)."""
    fields = [pa.field(c.name, _arrow_type(c), nullable=c.nullable) for c in columns]
    fields.append(pa.field(geometry.name, pa.binary(), nullable=geometry.nullable))
    geo = {
        "version": GEOPARQUET_VERSION,
        "primary_column": geometry.name,
        "columns": {geometry.name: {"encoding": "WKB", "geometry_types": types or ["Polygon"]}},
    }
    return pa.schema(fields, metadata={b"geo": json.dumps(geo).encode()})


class CellFiles:
    """``cells.csv`` and ``cells.parquet`` of one day, written slice by slice (a day at real density
    is millions of rows; a slice is a few windows). Both are written from one Arrow table per slice
    by Arrow's C++ writers: formatting values one by one in Python cost ~25 µs a row. Use as a
    context manager."""

    def __init__(self, folder: Path) -> None:
        self._csv = (folder / "cells.csv").open("wb")
        self._csv.write((",".join(c.name for c in CELL_COLUMNS) + "\n").encode())
        self._schema = _geo_schema()
        self._parquet = pq.ParquetWriter(folder / "cells.parquet", self._schema, compression="zstd")
        self._wkb: dict[int, bytes] = {}  # a cell's outline, computed once per day
        self._hex: dict[int, str] = {}

    def write(self, rows: Rows) -> None:
        """Append rows of :data:`releases.days.DAY_CELL_COLUMNS` (times in epoch seconds), in order."""
        if not rows:
            return
        columns: list[list[Any]] = [list(c) for c in zip(*rows, strict=True)]
        ids = [int(v) for v in columns[3]]
        for cell in set(ids) - self._wkb.keys():
            self._wkb[cell] = _outline_wkb(cell)
            self._hex[cell] = h3.int_to_str(cell)
        columns[3] = [self._hex[cell] for cell in ids]
        columns.append([self._wkb[cell] for cell in ids])
        arrays = [
            pa.array(col, pa.int64()).cast(field.type) if i < 2 else pa.array(col, type=field.type)
            for i, (col, field) in enumerate(zip(columns, self._schema, strict=True))
        ]  # the two times arrive as epoch seconds
        table = pa.Table.from_arrays(arrays, schema=self._schema)
        self._parquet.write_table(table)
        self._write_csv(table)

    def _write_csv(self, table: pa.Table) -> None:
        """The CSV form: times as ISO 8601 with a Z, floats to six decimals (far below any σ), nulls
        empty; no value of these columns contains a comma or a quote, so nothing is quoted."""
        out = table.drop_columns([GEOMETRY.name])
        for i, column in enumerate(CELL_COLUMNS):
            if column.kind == "datetime":
                out = out.set_column(i, column.name, pc.strftime(out.column(i), format="%Y-%m-%dT%H:%M:%SZ"))
            elif column.kind == "number":
                out = out.set_column(i, column.name, pc.round(out.column(i), 6))
        pa_csv.write_csv(out, self._csv, pa_csv.WriteOptions(include_header=False, quoting_style="none"))

    def close(self) -> None:
        self._csv.close()
        self._parquet.close()

    def __enter__(self) -> CellFiles:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _fields(columns: tuple[Column, ...]) -> list[dict[str, Any]]:
    fields = []
    for c in columns:
        field: dict[str, Any] = {"name": c.name, "type": c.kind, "description": c.description}
        if c.unit:
            field["unit"] = c.unit  # not a Table Schema keyword; kept as an extra property
        if not c.nullable:
            field["constraints"] = {"required": True}
        fields.append(field)
    return fields


def _file_facts(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    return {"path": path.name, "bytes": len(data), "hash": "sha256:" + hashlib.sha256(data).hexdigest()}


def write_datapackage(folder: Path, day: date, windows: int, tourism_date: date | None = None) -> None:
    """``datapackage.json`` (Frictionless Data Package) for the files already in ``folder``;
    ``tourism.csv`` is described when ``tourism_date`` (the local date it holds) is given."""
    csv_dialect = {"delimiter": ",", "header": True}
    resources: list[dict[str, Any]] = [
        {"name": "cells", **_file_facts(folder / "cells.csv"), "format": "csv", "mediatype": "text/csv",
         "encoding": "utf-8", "dialect": csv_dialect,
         "schema": {"fields": _fields(CELL_COLUMNS), "primaryKey": ["window_start", "res", "cell"]}},
        {"name": "cells-geoparquet", **_file_facts(folder / "cells.parquet"), "format": "parquet",
         "mediatype": "application/vnd.apache.parquet",
         "schema": {"fields": _fields((*CELL_COLUMNS, GEOMETRY))}},
        {"name": "zones", **_file_facts(folder / "zones.csv"), "format": "csv", "mediatype": "text/csv",
         "encoding": "utf-8", "dialect": csv_dialect,
         "schema": {"fields": _fields(ZONE_COLUMNS),
                    "primaryKey": ["window_start", "zone_set", "zone_id"]}},
    ]  # fmt: skip
    if tourism_date is not None:
        resources.append(
        {"name": "tourism", **_file_facts(folder / "tourism.csv"), "format": "csv", "mediatype": "text/csv",
         "encoding": "utf-8", "dialect": csv_dialect,
         "description": f"released tourism area-days of local date {tourism_date.isoformat()}",
         "schema": {"fields": _fields(TOURISM_COLUMNS),
                    "primaryKey": ["area_id", "local_date", "metric"]}})  # fmt: skip
        resources.append(
        {"name": "tourism-geoparquet", **_file_facts(folder / "tourism.parquet"), "format": "parquet",
         "mediatype": "application/vnd.apache.parquet",
         "description": f"tourism.csv's rows with each area's zone polygon ({tourism_date.isoformat()})",
         "schema": {"fields": _fields((*TOURISM_COLUMNS, ZONE_GEOMETRY))}})  # fmt: skip
    package = {
        "name": f"hexpulse-{day.isoformat()}",
        "title": f"hexpulse released crowd density, {day.isoformat()} (UTC)",
        "description": (f"Differentially private device counts per H3 cell and registered zone for "
                        f"every released window of {day.isoformat()} UTC ({windows} windows). "
                        "See README.md in this folder for what the numbers are and are not."),
        "version": "1.0.0",
        "created": iso(datetime.now(UTC)),
        "temporal": {"start": day.isoformat(), "end": day.isoformat()},
        "licenses": [{"name": "CC-BY-4.0", "title": "Creative Commons Attribution 4.0",
                      "path": "https://creativecommons.org/licenses/by/4.0/"}],
        "resources": resources,
    }  # fmt: skip
    (folder / "datapackage.json").write_text(json.dumps(package, indent=2) + "\n", encoding="utf-8")
