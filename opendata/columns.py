"""The one description of the exported columns: names, types, units and meaning.

The CSV header, the Parquet schema and the Frictionless ``datapackage.json`` are all built from
these lists, so the three never disagree. ``kind`` is the Frictionless field type.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One exported column: ``kind`` a Frictionless type, ``unit`` a human unit ('' if none)."""

    name: str
    kind: str
    unit: str
    description: str
    nullable: bool = False


_WINDOW = (
    Column("window_start", "datetime", "UTC", "start of the release window (inclusive), ISO 8601 UTC"),
    Column("window_end", "datetime", "UTC", "end of the release window (exclusive), ISO 8601 UTC"),
)


def _estimate(metric: str, what: str) -> tuple[Column, ...]:
    return (
        Column(f"{metric}_est", "number", "devices",
               f"unbiased estimate of {what} (noisy; may be negative; add these for sums)"),
        Column(f"{metric}_sigma", "number", "devices", f"standard error of {metric}_est"),
        Column(f"{metric}_lo", "number", "devices", f"lower bound of the 95% interval of {what}"),
        Column(f"{metric}_hi", "number", "devices", f"upper bound of the 95% interval of {what}"),
        Column(metric, "integer", "devices",
               f"display value: {metric}_est rounded and clipped to >= 0 (biased upward near 0; "
               "never sum it)"),
    )  # fmt: skip


CELL_COLUMNS: tuple[Column, ...] = (
    *_WINDOW,
    Column("res", "integer", "", "H3 resolution of the cell (9 base, 8 and 7 coarser)"),
    Column("cell", "string", "", "H3 cell index (hexadecimal)"),
    *_estimate("count", "devices present in the cell during the window"),
    *_estimate("moving", "devices moving (speed above the moving threshold) in the cell"),
    Column("speed_kmh", "number", "km/h", "mean speed of the moving devices (noisy)", nullable=True),
    Column("speed_lo_kmh", "number", "km/h", "lower bound of the 95% interval of speed_kmh", nullable=True),
    Column("speed_hi_kmh", "number", "km/h", "upper bound of the 95% interval of speed_kmh", nullable=True),
)
"""Columns of ``cells.csv`` / ``cells.parquet`` (the Parquet file adds ``geometry``)."""

ZONE_COLUMNS: tuple[Column, ...] = (
    *_WINDOW,
    Column("zone_set", "string", "", "the set of disjoint registered zones the zone belongs to"),
    Column("zone_id", "string", "", "registered zone id"),
    Column("version", "integer", "", "version of the zone's polygon that was measured"),
    *_estimate("count", "devices present in the zone during the window"),
    Column("cells", "integer", "cells", "number of H3 base cells the zone covers"),
)
"""Columns of ``zones.csv`` (each registered zone measured directly, one value per window)."""

GEOMETRY = Column("geometry", "geojson", "WGS 84 (OGC:CRS84)",
                  "outline of the H3 cell, WKB-encoded polygon (GeoParquet 1.1)")  # fmt: skip
"""The geometry column of ``cells.parquet``."""

ZONE_GEOMETRY = Column("geometry", "geojson", "WGS 84 (OGC:CRS84)",
                       "polygon of the area's registered zone, WKB-encoded (GeoParquet 1.1); null when "
                       "the zone has none", nullable=True)  # fmt: skip
"""The geometry column of ``tourism.parquet`` (the zone's polygon: the cells counted are the base
cells whose centre lies inside it)."""

TOURISM_COLUMNS: tuple[Column, ...] = (
    Column("area_id", "string", "", "tourism area id (/v1/tourism/areas)"),
    Column("local_date", "date", "", "the area's local calendar day (in its time zone)"),
    Column("timezone", "string", "", "IANA time zone of the area's local day"),
    Column("day_start", "datetime", "UTC", "start of the local day, ISO 8601 UTC"),
    Column("day_end", "datetime", "UTC", "end of the local day (local midnight), ISO 8601 UTC"),
    Column("metric", "string", "",
           "visitors (distinct devices present that day) or a dwell bin of them: dwell_lt_15m, "
           "dwell_15_60m, dwell_1_3h, dwell_ge_3h (minutes present)"),
    Column("estimate", "number", "devices", "unbiased estimate (noisy; may be negative; add these for sums)"),
    Column("sigma", "number", "devices", "standard error of estimate"),
    Column("lo", "number", "devices", "lower bound of the 95% interval"),
    Column("hi", "number", "devices", "upper bound of the 95% interval"),
    Column("display", "integer", "devices", "estimate rounded and clipped to >= 0 (never sum it)"),
    Column("k_areas", "integer", "areas", "a device-day counts in at most this many areas"),
)  # fmt: skip
"""Columns of ``tourism.csv`` (released tourism area-days; one row per area, day and metric)."""
