"""The simulated city's places, as offsets in metres from its center.

Offsets are measured from the real places around the default center (Guangzhou Tianhe,
23.13 N 113.32 E), so with the default center the polygons sit on Canton Tower, Haixinsha island,
Huacheng Square and the Tianhe Sports Center; with another center the same layout moves along.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from shapely.geometry import Polygon

from simulator.geo import LocalFrame
from simulator.roads import Corridor, corridor_feature, corridors

DEFAULT_CENTER = (23.13, 113.32)
"""(lat, lon) in degrees: Guangzhou, Tianhe district."""


@dataclass(frozen=True)
class NamedArea:
    """A named place: a rectangle (half extents in m) or a circle (``half_w`` = radius in m)."""

    slug: str
    name: str
    x: float
    y: float
    half_w: float
    half_h: float
    shape: Literal["rect", "circle"] = "rect"

    def ring_m(self) -> list[tuple[float, float]]:
        """Closed outline in metres (x east, y north), counter-clockwise."""
        if self.shape == "circle":
            n = 48
            pts = [
                (
                    self.x + self.half_w * math.cos(2 * math.pi * k / n),
                    self.y + self.half_w * math.sin(2 * math.pi * k / n),
                )
                for k in range(n)
            ]
        else:
            x0, x1, y0, y1 = (
                self.x - self.half_w,
                self.x + self.half_w,
                self.y - self.half_h,
                self.y + self.half_h,
            )
            pts = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
        return [*pts, pts[0]]

    def polygon(self, frame: LocalFrame) -> Polygon:
        """The outline in (lon, lat) degrees."""
        return Polygon([frame.point(x, y) for x, y in self.ring_m()])

    def feature(self, frame: LocalFrame) -> dict[str, Any]:
        """A GeoJSON Feature (coordinates rounded to 6 decimals, ~0.1 m)."""
        ring = [[round(lon, 6), round(lat, 6)] for lon, lat in (frame.point(x, y) for x, y in self.ring_m())]
        return {
            "type": "Feature",
            "properties": {"slug": self.slug, "name": self.name},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }


SCENIC_AREAS: tuple[NamedArea, ...] = (
    NamedArea("canton-tower", "Canton Tower", 460.0, -2660.0, 350.0, 300.0),
    NamedArea("haixinsha", "Haixinsha", 360.0, -1810.0, 230.0, 400.0),
    NamedArea("huacheng-square", "Huacheng Square", 410.0, -790.0, 220.0, 520.0),
)
"""Tourist destinations; the tourism report's areas: 0.42 / 0.37 / 0.46 km² (the tower and its
plaza, the island, the square), each several res-9 cells, 100 m or more apart."""

STADIUM = NamedArea("tianhe-stadium", "Tianhe Sports Center", 460.0, 940.0, 250.0, 250.0, "circle")
"""The event venue: a 500 m wide disc where the crowd builds up and disperses."""

STADIUM_SEAT_RADIUS_M = 170.0
"""Attendees sit within this radius of the venue center, far enough inside the 250 m disc that
GNSS/Wi-Fi noise keeps their pings inside it."""


# (x, y, spread in m) of residential and office clusters.
HOME_CLUSTERS: tuple[tuple[float, float, float], ...] = (
    (-4500.0, 2500.0, 700.0),
    (3500.0, 3500.0, 800.0),
    (-2500.0, -4500.0, 700.0),
    (5500.0, -2500.0, 800.0),
    (-7000.0, -1000.0, 900.0),
)
WORK_CLUSTERS: tuple[tuple[float, float, float], ...] = (
    (600.0, -1500.0, 400.0),  # Zhujiang New Town
    (800.0, 2500.0, 500.0),  # Tianhe North
    (6000.0, 1500.0, 500.0),  # Tianhe Software Park
)

SERVICE_HALF_SIZE_M = 11_500.0
"""Half the side of the bundled square service area; regional devices live beyond it."""


DISTRICTS: tuple[NamedArea, ...] = tuple(
    NamedArea(f"district-{tag}", f"District {tag.upper()}", sx * 2500.0, sy * 2500.0, 2450.0, 2450.0)
    for tag, sx, sy in (("nw", -1, 1), ("ne", 1, 1), ("sw", -1, -1), ("se", 1, -1))
)
"""Four 4.9 km squares around the center, 100 m apart (disjoint at any H3 resolution used here):
the demo's ``district`` zone set."""

ZONE_SETS: dict[str, tuple[NamedArea, ...]] = {"crowd": (STADIUM, *SCENIC_AREAS), "district": DISTRICTS}
"""The simulated city's registered zones per zone set (crowd-safety and tourism areas; districts);
plus set ``corridor``: CORRIDORS."""

CORRIDORS: tuple[Corridor, ...] = corridors()
"""The road segments a control room watches (:mod:`.roads`): zone set ``corridor``, disjoint."""


def zones_geojson(frame: LocalFrame) -> dict[str, Any]:
    """The registered zones as a GeoJSON FeatureCollection (properties ``id``, ``set``, ``name``),
    the file ``hexpulse zones load`` reads."""
    features = []
    for zone_set, areas in ZONE_SETS.items():
        for area in areas:
            feature = area.feature(frame)
            feature["properties"] = {"id": area.slug, "set": zone_set, "name": area.name}
            features.append(feature)
    for c in CORRIDORS:
        feature = corridor_feature(c, frame)
        feature["properties"] = {"id": c.slug, "set": "corridor", "name": c.name}
        features.append(feature)
    return {"type": "FeatureCollection", "features": features}


def areas_geojson(frame: LocalFrame) -> dict[str, Any]:
    """The scenic areas and the stadium as a GeoJSON FeatureCollection (for the API/tourism)."""
    return {"type": "FeatureCollection", "features": [a.feature(frame) for a in (*SCENIC_AREAS, STADIUM)]}
