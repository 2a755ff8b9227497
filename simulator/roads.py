"""The simulated city's road network and its corridors (metres east/north of the center).

A small hand-made network for the default service area, traced roughly along the real roads
around Tianhe: three arterials and two expressways, each a polyline with a number of lanes per
direction and a free-flow speed (km/h, the speed unimpeded traffic keeps, near the limit).
Corridors are the zones a control room watches: each road cut into segments of 1–2 km, each a
buffer of the polyline. A road's corridors leave out where an earlier road's buffer lies (the
crossings belong to the road listed first), so no two corridors overlap and their H3 covers (cell
centres inside) are disjoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np
from shapely.geometry import LineString, Polygon, mapping
from shapely.ops import substring, unary_union

from simulator.geo import FloatArray, LocalFrame

CORRIDOR_HALF_WIDTH_M = 180.0
"""Half width of a corridor's buffer (m): a point on the road lies in an H3 res-9 cell whose
centre is at most one edge (~174 m) away, so every on-road ping's cell belongs to the corridor."""
SEGMENT_TARGET_M = 1500.0
"""Corridor segments are as near this length as a whole number of equal pieces allows (1–2 km)."""


@dataclass(frozen=True)
class Road:
    """A two-way road: polyline ``points`` (m), ``lanes`` per direction, free-flow speed (km/h)."""

    slug: str
    name: str
    points: tuple[tuple[float, float], ...]
    lanes: int
    free_flow_kmh: float
    kind: Literal["arterial", "expressway"]

    @property
    def line(self) -> LineString:
        return LineString(self.points)

    @property
    def length_m(self) -> float:
        return float(self.line.length)

    def _cum(self) -> FloatArray:
        pts = np.array(self.points)
        return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(pts, axis=0).T))])

    def position(self, s: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        """(x, y, ux, uy) at distances ``s`` (m) from the first point: position and unit direction."""
        pts = np.array(self.points)
        cum = self._cum()
        s = np.clip(s, 0.0, cum[-1])
        seg = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(cum) - 2)
        d = pts[seg + 1] - pts[seg]
        n = np.hypot(d[..., 0], d[..., 1])
        frac = (s - cum[seg]) / n
        x = pts[seg, 0] + frac * d[..., 0]
        y = pts[seg, 1] + frac * d[..., 1]
        return x, y, d[..., 0] / n, d[..., 1] / n


ROADS: tuple[Road, ...] = (
    Road(
        "guangyuan-expressway",
        "Guangyuan Expressway",
        ((-8000.0, 4500.0), (0.0, 4850.0), (8000.0, 5200.0)),
        3,
        90.0,
        "expressway",
    ),
    Road(
        "huanan-expressway",
        "Huanan Expressway",
        ((2900.0, -8500.0), (2700.0, 0.0), (2900.0, 8500.0)),
        3,
        90.0,
        "expressway",
    ),
    Road(
        "huangpu-avenue",
        "Huangpu Avenue",
        ((-9000.0, -550.0), (0.0, -600.0), (9000.0, -500.0)),
        4,
        60.0,
        "arterial",
    ),
    Road("tianhe-road", "Tianhe Road", ((-6000.0, 450.0), (4500.0, 450.0)), 3, 50.0, "arterial"),
    Road("guangzhou-avenue", "Guangzhou Avenue", ((-900.0, -9000.0), (-900.0, 8000.0)), 4, 60.0, "arterial"),
)
"""The network. Free-flow speeds: the posted limits (expressways 100 km/h, urban arterials 60)
less what traffic keeps below them when unimpeded; Tianhe Road, a shopping street, 50 km/h."""

INCIDENT_ROAD = 0
"""Index in ROADS of the road with the incident (the Guangyuan Expressway)."""


@dataclass(frozen=True)
class Corridor:
    """One watched road segment: a buffer of the polyline between ``s0`` and ``s1`` (m along)."""

    slug: str
    name: str
    road: Road
    s0: float
    s1: float
    ring_m: tuple[tuple[float, float], ...]

    def polygon(self, frame: LocalFrame) -> Polygon:
        """The outline in (lon, lat) degrees."""
        return Polygon([frame.point(x, y) for x, y in self.ring_m])

    def geometry(self, frame: LocalFrame) -> dict[str, Any]:
        """GeoJSON Polygon (6 decimals)."""
        ring = [[round(lon, 6), round(lat, 6)] for lon, lat in (frame.point(x, y) for x, y in self.ring_m)]
        return {"type": "Polygon", "coordinates": [ring]}

    def document(self, frame: LocalFrame) -> dict[str, Any]:
        """The ground-truth file's entry for this corridor."""
        return {
            "slug": self.slug,
            "name": self.name,
            "polygon": self.geometry(frame),
            "road": self.road.slug,
            "lanes": self.road.lanes,
            "free_flow_kmh": self.road.free_flow_kmh,
        }


def _pieces(line: LineString, keep: Any) -> list[tuple[float, float]]:
    """(s0, s1) of the parts of ``line`` inside ``keep``, in order along the line (m)."""
    part = line.intersection(keep)
    geoms = list(getattr(part, "geoms", [part]))
    out = []
    for g in geoms:
        if isinstance(g, LineString) and g.length > 1.0:
            a, b = line.project(g.interpolate(0.0)), line.project(g.interpolate(g.length))
            out.append((min(a, b), max(a, b)))
    return sorted(out)


@cache
def corridors() -> tuple[Corridor, ...]:
    """Every road's corridors, roads in ROADS order, segments in order along each road."""
    out: list[Corridor] = []
    taken: Any = Polygon()
    for road in ROADS:
        line = road.line
        band = line.buffer(CORRIDOR_HALF_WIDTH_M, cap_style="flat")
        free = band.difference(taken)
        k = 0
        for a, b in _pieces(line, free):
            if b - a < 500.0:
                continue
            n = max(1, math.ceil((b - a) / 2000.0), round((b - a) / SEGMENT_TARGET_M))
            edges = np.linspace(a, b, n + 1)
            for s0, s1 in zip(edges[:-1], edges[1:], strict=True):
                k += 1
                piece = substring(line, s0, s1).buffer(CORRIDOR_HALF_WIDTH_M, cap_style="flat")
                poly = piece.difference(taken)
                if poly.geom_type != "Polygon":  # a sliver cut off at a crossing: keep the main part
                    poly = max(poly.geoms, key=lambda g: g.area)
                ring = tuple((round(x, 1), round(y, 1)) for x, y in poly.exterior.coords)
                out.append(Corridor(f"{road.slug}-{k}", f"{road.name} {k}", road, float(s0), float(s1), ring))
        taken = unary_union([taken, band])
    return tuple(out)


def corridor_feature(c: Corridor, frame: LocalFrame) -> dict[str, Any]:
    """A GeoJSON Feature of the corridor (for the zones file)."""
    return {"type": "Feature", "properties": {"slug": c.slug, "name": c.name}, "geometry": c.geometry(frame)}


def corridor_lines(frame: LocalFrame) -> dict[str, Any]:
    """The roads as GeoJSON LineStrings in (lon, lat) (for maps)."""
    feats = [
        {
            "type": "Feature",
            "properties": {
                "slug": r.slug,
                "name": r.name,
                "lanes": r.lanes,
                "free_flow_kmh": r.free_flow_kmh,
            },
            "geometry": mapping(LineString([frame.point(x, y) for x, y in r.points])),
        }
        for r in ROADS
    ]
    return {"type": "FeatureCollection", "features": feats}
