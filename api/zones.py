"""Registered zones, the API's side: validation and the writes of ``zones`` (hexpulse/zones.py).

A zone is checked before it is stored: a valid GeoJSON (Multi)Polygon within the vertex cap
(``HEXPULSE_API_MAX_POLYGON_VERTICES``) and the area cap (``HEXPULSE_ZONE_MAX_AREA_KM2``), a set
the budget plan funds, at least one base cell of the service area whose centre lies inside, and no
base cell shared with another zone of its set (409 naming that zone). A change takes effect from
the next window boundary after now: creating, replacing (a new version) and ending a zone never
touch a window that has started, so released numbers never change and nobody restarts.

Two admins registering overlapping zones at the same instant could both pass the overlap check;
the releaser then measures only the first of them (privacy/release/zones.py), so the sensitivity
the draw assumes still holds.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import orjson
from shapely.geometry.base import BaseGeometry

from api.exceptions import BadRequestError, ConflictError, NotFoundError
from api.geo import area_km2, check_area, cover, parse_polygon
from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings
from hexpulse.store.pool import ClickHousePool
from hexpulse.zones import OPEN_END, ZONE_COLUMNS, Zone, current_zones, next_boundary, zone_history
from privacy.release.shares import funded_sets

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


def zone_cells(geom: BaseGeometry, base_resolution: int, area_cells: frozenset[int]) -> tuple[int, ...]:
    """A zone's measured cells: the service area's base cells whose centres lie in ``geom``, sorted."""
    return tuple(sorted(cover(geom, base_resolution) & area_cells))


class ZoneStore:
    """Reads and writes of ``zones`` through the API's pool (blocking: call from a thread)."""

    def __init__(
        self, pool: ClickHousePool, settings: Settings, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._pool = pool
        self._settings = settings
        self._clock = clock or (lambda: datetime.now(UTC))  # tests replay registrations in the past

    @cached_property
    def _area_cells(self) -> frozenset[int]:
        return load_service_area(self._settings).cell_set

    # -- validation ------------------------------------------------------------------------

    def validate(self, zone_set: str, name: str, geometry: Any) -> tuple[str, tuple[int, ...]]:
        """(canonical GeoJSON text, sorted base cells) of a zone, or a 400 saying what is wrong."""
        sets = funded_sets(tuple(self._settings.budget_plan))
        if zone_set not in sets:
            raise BadRequestError(f"unknown zone set {zone_set!r}; the budget plan funds {list(sets)}")
        if not name.strip() or len(name) > 200:
            raise BadRequestError("a zone needs a name of 1 to 200 characters")
        geom = parse_polygon(geometry, self._settings.api_max_polygon_vertices)
        check_area(geom, self._settings.zone_max_area_km2, "zone")
        inside = zone_cells(geom, self._settings.base_resolution, self._area_cells)
        if not inside:
            raise BadRequestError(
                f"no base cell (H3 resolution {self._settings.base_resolution}) of the service area has its "
                f"centre inside the zone (about {area_km2(geom):.3f} km²); draw it larger or inside the area"
            )
        doc = geometry.get("geometry") if geometry.get("type") == "Feature" else geometry
        return orjson.dumps(doc).decode(), inside

    def _check_disjoint(self, zone_id: str, zone_set: str, cells: tuple[int, ...], start: datetime) -> None:
        mine = set(cells)
        for other in self.current(start):
            if other.zone_id == zone_id or other.zone_set != zone_set:
                continue
            shared = mine.intersection(other.cells)
            if shared:
                raise ConflictError(
                    f"the zone overlaps zone {other.zone_id} ({other.name!r}) of set {zone_set!r} in "
                    f"{len(shared)} base cell(s); zones of one set must be disjoint"
                )

    # -- reads -----------------------------------------------------------------------------

    def current(self, at: datetime | None = None) -> list[Zone]:
        """The newest version of every zone not ended by ``at`` (default now), by (set, id)."""
        rows = self._pool.query(*current_zones(at or self._clock()))
        newest: dict[str, Zone] = {}
        for z in (Zone.from_row(r) for r in rows):
            if z.zone_id not in newest or z.version > newest[z.zone_id].version:
                newest[z.zone_id] = z
        return sorted(newest.values(), key=lambda z: (z.zone_set, z.zone_id))

    def history(self, zone_id: str) -> list[Zone]:
        """Every version of a zone, oldest first; 404 if there is none."""
        versions = [Zone.from_row(r) for r in self._pool.query(*zone_history(zone_id))]
        if not versions:
            raise NotFoundError(f"no zone with id {zone_id!r}")
        return versions

    def matching(self, cells: frozenset[int], at: datetime) -> Zone | None:
        """The registered zone in effect at ``at`` whose base cells are exactly ``cells`` (the area
        endpoint answers such a polygon from the zone's own measurement), or None. ``cells`` may be a
        polygon's raw cover: cells outside the service area are never a zone's, so they are ignored.
        Its values per window: :func:`releases.zones.zone_series`."""
        cells = cells & self._area_cells
        rows = self._pool.query(
            f"SELECT {ZONE_COLUMNS} FROM zones FINAL WHERE valid_from <= toDateTime(%(t)s) "
            "AND valid_to > toDateTime(%(t)s) AND length(cells) = %(n)s",
            {"t": int(at.timestamp()), "n": len(cells)},
        )
        for zone in (Zone.from_row(r) for r in rows):
            if frozenset(zone.cells) == cells:
                return zone
        return None

    # -- writes ----------------------------------------------------------------------------

    def create(self, zone_set: str, name: str, geometry: Any, zone_id: str | None = None) -> Zone:
        geo, cells = self.validate(zone_set, name, geometry)
        if zone_id is None:
            zone_id = f"z{secrets.token_hex(6)}"
        elif not _ID.match(zone_id):
            raise BadRequestError("a zone id is 1 to 64 lower case letters, digits or '-', starting with one")
        if self._pool.query("SELECT count() FROM zones WHERE zone_id = %(id)s", {"id": zone_id})[0][0]:
            raise ConflictError(f"a zone with id {zone_id!r} exists; change it with PUT /v1/zones/{zone_id}")
        start = next_boundary(self._clock(), self._settings.window_s)
        self._check_disjoint(zone_id, zone_set, cells, start)
        zone = Zone(zone_id, 1, zone_set, name.strip(), geo, cells, start, OPEN_END, time.time_ns())
        self._pool.insert(f"INSERT INTO zones ({ZONE_COLUMNS}) VALUES", [zone.row()])
        return zone

    def replace(self, zone_id: str, zone_set: str, name: str, geometry: Any) -> Zone:
        """A new version from the next window boundary; the current one ends there."""
        geo, cells = self.validate(zone_set, name, geometry)
        old = self._live(zone_id)
        start = next_boundary(self._clock(), self._settings.window_s)
        self._check_disjoint(zone_id, zone_set, cells, start)
        new = Zone(zone_id, old.version + 1, zone_set, name.strip(), geo, cells, start, OPEN_END,
                   time.time_ns())  # fmt: skip
        rows = [self._ended(old, start).row(), new.row()]
        self._pool.insert(f"INSERT INTO zones ({ZONE_COLUMNS}) VALUES", rows)
        return new

    def end(self, zone_id: str) -> Zone:
        """End the current version at the next window boundary (released windows keep it)."""
        old = self._live(zone_id)
        ended = self._ended(old, next_boundary(self._clock(), self._settings.window_s))
        self._pool.insert(f"INSERT INTO zones ({ZONE_COLUMNS}) VALUES", [ended.row()])
        return ended

    def _live(self, zone_id: str) -> Zone:
        versions = self.history(zone_id)
        last = versions[-1]
        if last.valid_to <= next_boundary(self._clock(), self._settings.window_s):
            raise NotFoundError(f"zone {zone_id!r} has been ended")
        return last

    @staticmethod
    def _ended(zone: Zone, at: datetime) -> Zone:
        end = max(at, zone.valid_from)  # a version not yet in effect ends before it starts: never measured
        return Zone(zone.zone_id, zone.version, zone.zone_set, zone.name, zone.geometry, zone.cells,
                    zone.valid_from, end, time.time_ns())  # fmt: skip
