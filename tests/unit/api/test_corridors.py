"""Corridor JSON, bbox selection and the index's segments (api/corridors.py), without services."""

from __future__ import annotations

import orjson

from api.corridors import corridor_json, corridors_in, in_bbox, index_keys
from releases.corridors import ZoneBins, ZoneOutline
from releases.traffic import CellBins

MIDS = (13.6, 30.0, 55.0, 85.0)
SQUARE = orjson.dumps({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}).decode()


def zone(zone_id: str, outline: ZoneOutline | None, zone_set: str = "corridor") -> ZoneBins:
    return ZoneBins(zone_set, zone_id, 2, 9, CellBins((0.0, 10.0, 30.0, 60.0), 3.0, MIDS, 1), outline)


def test_bbox_selects_by_outline() -> None:
    outline = ZoneOutline("Ring", SQUARE)
    assert in_bbox(outline, (0.5, 0.5, 2.0, 2.0)) and not in_bbox(outline, (1.5, 1.5, 2.0, 2.0))
    assert not in_bbox(None, (0.0, 0.0, 1.0, 1.0))
    assert not in_bbox(ZoneOutline("odd", '{"type": "Point"}'), (0.0, 0.0, 1.0, 1.0))  # unreadable: no place


def test_corridor_json_names_the_zone_and_reuses_the_cell_fields() -> None:
    doc = corridor_json(zone("ring-1", ZoneOutline("Ring", SQUARE)), None)
    ident = (doc["zone_id"], doc["zone_set"], doc["name"], doc["version"], doc["cells"])
    assert ident == ("ring-1", "corridor", "Ring", 2, 9)
    assert doc["geometry"]["type"] == "Polygon" and doc["moving"] == 100
    assert doc["free_flow_kmh"] is None and doc["level"] is None  # no quiet pool: no free flow, no level
    bare = corridor_json(zone("gone", None), None)
    assert bare["name"] == "gone" and bare["geometry"] is None


def test_corridors_in_filters_set_and_bbox() -> None:
    zones = [zone("a", ZoneOutline("A", SQUARE)), zone("b", ZoneOutline("B", SQUARE), "district"),
             zone("c", None)]  # fmt: skip
    quiet = {zones[0].key: CellBins((0.0, 10.0, 30.0, 60.0), 6.0, MIDS, 4)}
    got = corridors_in(zones, quiet, (0.0, 0.0, 1.0, 1.0), None)
    assert [c["zone_id"] for c in got] == ["a", "b"]
    assert got[0]["level"] == "free" and got[0]["free_flow_windows"] == 4
    assert [c["zone_id"] for c in corridors_in(zones, quiet, (0.0, 0.0, 1.0, 1.0), "district")] == ["b"]


def test_index_keys_need_a_matching_pool_with_a_device() -> None:
    now = {k: CellBins((1.0, 1.0, 1.0, 1.0), 1.0, MIDS, 1) for k in "abcde"}
    quiet = {
        "a": CellBins((5.0, 5.0, 5.0, 5.0), 2.0, MIDS, 4),
        "b": CellBins((0.2, 0.2, 0.2, 0.2), 2.0, MIDS, 4),  # less than one device pooled
        "c": CellBins((5.0, 5.0, 5.0), 2.0, (10.0, 30.0, 60.0), 4),  # other edges
        "e": CellBins((5.0, 5.0, 5.0, 5.0), 2.0, MIDS, 4),
    }
    assert index_keys(now, quiet, None) == ["a", "e"]
    assert index_keys(now, quiet, frozenset({"e"})) == ["e"]
