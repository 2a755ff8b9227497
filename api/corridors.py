"""Corridors in the traffic answers: released bins of zones measured directly (``releases.corridors``)
as JSON, the zones a bbox shows, and the segments the congestion index weighs.

A corridor's fields are a cell's (:func:`api.congestion.bins_fields`, the same arithmetic); it also
carries its id, set, name, version, base-cell count and GeoJSON outline, so a map draws it without
another request. A bbox shows the corridors whose outline intersects it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import orjson
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from api.congestion import bins_fields
from api.geo import BBox
from releases.corridors import ZoneBins, ZoneKey, ZoneOutline
from releases.traffic import CellBins

INDEX_SET = "corridor"
"""The zone set the congestion index weighs by default (road corridors, disjoint by registration)."""


@lru_cache(maxsize=4096)
def _outline(geometry: str) -> tuple[dict[str, Any], BaseGeometry | None]:
    """(GeoJSON geometry, shapely shape) of a zone's stored geometry text; shape None if it is
    not a geometry shapely reads (the zone is then listed without a place)."""
    doc: dict[str, Any] = orjson.loads(geometry)
    try:
        return doc, shape(doc)
    except (ValueError, TypeError, KeyError, AttributeError):
        return doc, None


def in_bbox(outline: ZoneOutline | None, bbox: BBox) -> bool:
    """Whether the zone's outline intersects the bbox (False without an outline)."""
    if outline is None:
        return False
    geom = _outline(outline.geometry)[1]
    return geom is not None and geom.intersects(box(*bbox))


def corridor_json(zone: ZoneBins, quiet: CellBins | None, recent: CellBins | None = None) -> dict[str, Any]:
    """One corridor of one window: its identity and outline, then the traffic fields of its bins
    (speed from ``recent``, its trailing pool, when given)."""
    outline = zone.outline
    return {
        "zone_id": zone.zone_id,
        "zone_set": zone.zone_set,
        "name": zone.zone_id if outline is None else outline.name,
        "version": zone.version,
        "cells": zone.cells,
        **bins_fields(zone.bins, quiet, recent),
        "geometry": None if outline is None else _outline(outline.geometry)[0],
    }


def corridors_in(
    zones: Iterable[ZoneBins], quiet: Mapping[ZoneKey, CellBins], bbox: BBox, zone_set: str | None,
    recent: Mapping[ZoneKey, CellBins] | None = None,
) -> list[dict[str, Any]]:
    """The corridors of a window that the bbox shows (of ``zone_set`` only, unless None); speeds
    from their trailing pools ``recent`` when given."""
    return [corridor_json(z, quiet.get(z.key), None if recent is None else recent.get(z.key)) for z in zones
            if (zone_set is None or z.zone_set == zone_set) and in_bbox(z.outline, bbox)]  # fmt: skip


def index_keys(
    bins: Mapping[Any, CellBins], quiet: Mapping[Any, CellBins], chosen: frozenset[Any] | None
) -> list[Any]:
    """The segments (cells or zone keys) a window's congestion index weighs: those with a
    free-flow pool of the same bins holding at least one device, and in ``chosen`` unless None."""
    return [k for k in sorted(bins) if k in quiet and (chosen is None or k in chosen)
            and quiet[k].mids_kmh == bins[k].mids_kmh and sum(quiet[k].bins) >= 1.0]  # fmt: skip
