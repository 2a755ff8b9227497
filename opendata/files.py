"""Writers of one exported day: CSV, GeoParquet (cells with their H3 outline) and the
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
import pyarrow.parquet as pq
from shapely.geometry import Polygon

from opendata.columns import CELL_COLUMNS, GEOMETRY, ZONE_COLUMNS, Column

GEOPARQUET_VERSION = "1.1.0"
Rows = Sequence[tuple[Any, ...]]


def iso(t: datetime) -> str:
    """A (naive UTC or aware) datetime as ISO 8601 UTC with a Z, whole seconds."""
    aware = t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)
    return aware.strftime("%Y-%m-%dT%H:%M:%SZ")


def _cell_values(row: tuple[Any, ...]) -> list[Any]:
    """A :data:`releases.days.DAY_CELL_COLUMNS` row in export form (times ISO, cell hex)."""
    return [iso(row[0]), iso(row[1]), int(row[2]), h3.int_to_str(int(row[3])), *row[4:]]


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


def write_cells_csv(path: Path, rows: Rows) -> None:
    write_csv(path, CELL_COLUMNS, [_cell_values(r) for r in rows])


def write_zones_csv(path: Path, rows: Rows) -> None:
    write_csv(path, ZONE_COLUMNS, [_zone_values(r) for r in rows])


def _arrow_type(column: Column) -> pa.DataType:
    if column.kind == "datetime":
        return pa.timestamp("s", tz="UTC")
    if column.kind == "integer":
        return pa.int64()
    if column.kind == "number":
        return pa.float64()
    return pa.string()


def _outline(cell: int) -> Polygon:
    ring = [(lng, lat) for lat, lng in h3.cell_to_boundary(h3.int_to_str(cell))]
    return Polygon(ring)


def write_cells_geoparquet(path: Path, rows: Rows) -> None:
    """``cells.parquet``: the CSV's columns plus ``geometry`` (the cell's outline as WKB) and the
    GeoParquet ``geo`` metadata (CRS omitted = OGC:CRS84, lon/lat degrees)."""
    arrays = []
    for i, column in enumerate(CELL_COLUMNS):
        values: list[Any] = [r[i] for r in rows]
        if column.name in ("window_start", "window_end"):
            values = [v.replace(tzinfo=UTC) if v.tzinfo is None else v for v in values]
        elif column.name == "cell":
            values = [h3.int_to_str(int(v)) for v in values]
        arrays.append(pa.array(values, type=_arrow_type(column)))
    outlines: dict[int, Polygon] = {}
    for r in rows:
        if int(r[3]) not in outlines:
            outlines[int(r[3])] = _outline(int(r[3]))
    wkb = {cell: poly.wkb for cell, poly in outlines.items()}
    arrays.append(pa.array([wkb[int(r[3])] for r in rows], type=pa.binary()))
    names = [c.name for c in CELL_COLUMNS] + [GEOMETRY.name]
    table = pa.Table.from_arrays(arrays, names=names)
    bounds = [p.bounds for p in outlines.values()]
    bbox = ([min(b[0] for b in bounds), min(b[1] for b in bounds), max(b[2] for b in bounds),
             max(b[3] for b in bounds)] if bounds else [])  # fmt: skip
    geo: dict[str, Any] = {
        "version": GEOPARQUET_VERSION,
        "primary_column": GEOMETRY.name,
        "columns": {GEOMETRY.name: {"encoding": "WKB", "geometry_types": ["Polygon"],
                                    **({"bbox": bbox} if bbox else {})}},
    }  # fmt: skip
    table = table.replace_schema_metadata({b"geo": json.dumps(geo).encode()})
    pq.write_table(table, path, compression="zstd")


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


def write_datapackage(folder: Path, day: date, windows: int) -> None:
    """``datapackage.json`` (Frictionless Data Package) for the files already in ``folder``."""
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
