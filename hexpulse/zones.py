"""Registered zones (table ``zones``, migration 0010): the model and the statements that read it.

A zone is public and declared in advance: (id, version, set, name, GeoJSON geometry, its
base-resolution cells = the service area's cells whose centres lie in the polygon, valid_from,
valid_to). The API writes zones (``api/zones.py``); the releaser reads the zones in effect at a
window's start (``valid_from <= w < valid_to``) and measures each set directly
(``privacy/release/zones.py``). A change takes effect from the next window boundary after it is
made, so the zones in effect at a window that has started never change; the window's plan record
names the zones it measured (set, id, version, cells digest), so every releaser measures the same.

Rows are ReplacingMergeTree(revision) keyed by (zone_id, version): ending a version rewrites its row
with a later ``valid_to`` and a higher revision. Times are UTC whole seconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from hexpulse.times import epoch_s, utc

#: ``valid_to`` of a zone that has not been ended (DateTime's range ends in 2106).
OPEN_END = datetime(2100, 1, 1, tzinfo=UTC)
ZONE_COLUMNS = "zone_id, version, zone_set, name, geometry, cells, valid_from, valid_to, revision"
Query = tuple[str, dict[str, Any]]


def cells_digest(cells: tuple[int, ...]) -> str:
    """Hex digest (128 bits) of a zone's sorted base cells: what the plan record pins."""
    data = np.ascontiguousarray(np.array(sorted(cells), dtype=np.uint64), dtype="<u8").tobytes()
    return hashlib.blake2b(data, digest_size=16, person=b"hexpulse-zone").hexdigest()


@dataclass(frozen=True)
class ZoneRef:
    """What a window's plan record says about one zone it measured."""

    zone_set: str
    zone_id: str
    version: int
    digest: str

    def document(self) -> dict[str, Any]:
        return {"set": self.zone_set, "id": self.zone_id, "version": self.version, "digest": self.digest}

    @classmethod
    def of(cls, doc: dict[str, Any]) -> ZoneRef:
        return cls(str(doc["set"]), str(doc["id"]), int(doc["version"]), str(doc["digest"]))


@dataclass(frozen=True)
class Zone:
    """One version of a registered zone; ``cells`` are sorted base-resolution H3 cells (ints),
    ``valid_from``/``valid_to`` aware UTC datetimes (the version is in effect in [from, to))."""

    zone_id: str
    version: int
    zone_set: str
    name: str
    geometry: str  # the GeoJSON geometry as sent (canonical JSON text)
    cells: tuple[int, ...]
    valid_from: datetime
    valid_to: datetime
    revision: int = 0

    @property
    def digest(self) -> str:
        return cells_digest(self.cells)

    @property
    def ref(self) -> ZoneRef:
        return ZoneRef(self.zone_set, self.zone_id, self.version, self.digest)

    def in_effect(self, at: datetime) -> bool:
        return self.valid_from <= at < self.valid_to

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Zone:
        """From the columns of :data:`ZONE_COLUMNS`, in that order."""
        return cls(str(row[0]), int(row[1]), str(row[2]), str(row[3]), str(row[4]),
                   tuple(sorted(int(c) for c in row[5])), utc(row[6]), utc(row[7]), int(row[8]))  # fmt: skip

    def row(self) -> tuple[Any, ...]:
        """The row to insert (naive UTC datetimes, the driver's form)."""
        return (self.zone_id, self.version, self.zone_set, self.name, self.geometry, list(self.cells),
                _naive(self.valid_from), _naive(self.valid_to), self.revision)  # fmt: skip


def next_boundary(now: datetime, window_s: int) -> datetime:
    """The first window start strictly after ``now``: when a zone change takes effect."""
    s = epoch_s(now) // window_s * window_s + window_s
    return datetime.fromtimestamp(s, UTC)


def _naive(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(tzinfo=None)


def zones_in_effect(at: datetime) -> Query:
    """Every zone version in effect at ``at`` (a window start)."""
    return (
        f"SELECT {ZONE_COLUMNS} FROM zones FINAL WHERE valid_from <= toDateTime(%(t)s) "
        "AND valid_to > toDateTime(%(t)s) ORDER BY zone_set, zone_id",
        {"t": epoch_s(at)},
    )


def zone_versions(keys: list[tuple[str, int]]) -> Query:
    """The zone versions named by (zone_id, version) pairs (a stored plan's zones)."""
    return (
        f"SELECT {ZONE_COLUMNS} FROM zones FINAL WHERE (zone_id, version) IN %(keys)s",
        {"keys": tuple(keys) or (("", 0),)},
    )


def zone_history(zone_id: str) -> Query:
    """Every version of one zone, oldest first."""
    return f"SELECT {ZONE_COLUMNS} FROM zones FINAL WHERE zone_id = %(id)s ORDER BY version", {"id": zone_id}


def current_zones(at: datetime) -> Query:
    """The newest version of every zone not ended by ``at`` (in effect now or from the next window)."""
    return (
        f"SELECT {ZONE_COLUMNS} FROM zones FINAL WHERE valid_to > toDateTime(%(t)s) "
        "AND valid_from < valid_to ORDER BY zone_set, zone_id, version",
        {"t": epoch_s(at)},
    )
