"""Tourism areas (table ``tourism_areas``, migration 0013): the model, its checks, and the store.

An area is a registered zone (its polygon and cells live in ``zones``; the API registers it) plus
what scenic-area rules ask to publish: a capacity (instantaneous maximum of visitors; ``None`` when
not stated) and the IANA time zone whose calendar day the daily products count in (default
Asia/Shanghai). Rows are ReplacingMergeTree(revision): a change or a deletion rewrites the row.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hexpulse.errors import HexpulseError
from hexpulse.store.pool import ClickHousePool
from hexpulse.times import naive_utc, utc

DEFAULT_TIMEZONE = "Asia/Shanghai"
#: Largest capacity accepted (visitors at once); the largest scenic areas state tens of thousands.
MAX_CAPACITY = 10_000_000
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_COLUMNS = "area_id, name, zone_id, capacity, timezone, created_at, deleted, revision"


class AreaError(HexpulseError, ValueError):
    """An area's fields are invalid; the message says which and why (HTTP 400)."""


class UnknownAreaError(HexpulseError, LookupError):
    """No area with that id (HTTP 404)."""


class AreaExistsError(HexpulseError):
    """The id is taken (HTTP 409)."""


@dataclass(frozen=True)
class Area:
    """One tourism area; ``capacity`` in visitors at once (None: not stated)."""

    area_id: str
    name: str
    zone_id: str
    capacity: int | None
    timezone: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Area:
        return cls(row[0], row[1], row[2], int(row[3]) or None, row[4], utc(row[5]))

    def row(self, deleted: bool = False) -> tuple[Any, ...]:
        return (self.area_id, self.name, self.zone_id, self.capacity or 0, self.timezone,
                naive_utc(self.created_at.timestamp()), int(deleted), time.time_ns())  # fmt: skip


def check_fields(name: str, capacity: int | None, timezone: str) -> tuple[str, int | None, str]:
    """(name, capacity, time zone) normalized, or :class:`AreaError` with the reason."""
    name = name.strip()
    if not name or len(name) > 200:
        raise AreaError("an area needs a name of 1 to 200 characters")
    if capacity is not None and not 1 <= capacity <= MAX_CAPACITY:
        raise AreaError(f"capacity must be between 1 and {MAX_CAPACITY:,} visitors (or absent)")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise AreaError(
            f"unknown time zone {timezone[:64]!r}: use an IANA name such as Asia/Shanghai"
        ) from None
    return name, capacity, timezone


def check_id(area_id: str | None) -> str:
    if area_id is None:
        return f"a{secrets.token_hex(6)}"
    if not _ID.match(area_id):
        raise AreaError("an area id is 1 to 64 lower case letters, digits or '-', starting with one")
    return area_id


class AreaStore:
    """Reads and writes of ``tourism_areas`` (blocking: call from a thread)."""

    def __init__(self, pool: ClickHousePool) -> None:
        self._pool = pool

    def all(self) -> list[Area]:
        rows = self._pool.query(
            f"SELECT {_COLUMNS} FROM tourism_areas FINAL WHERE deleted = 0 ORDER BY area_id"
        )
        return [Area.from_row(r) for r in rows]

    def get(self, area_id: str) -> Area:
        rows = self._pool.query(
            f"SELECT {_COLUMNS} FROM tourism_areas FINAL WHERE area_id = %(id)s AND deleted = 0",
            {"id": area_id},
        )
        if not rows:
            raise UnknownAreaError(f"no tourism area with id {area_id[:64]!r}")
        return Area.from_row(rows[0])

    def taken(self, area_id: str) -> bool:
        """Whether ``area_id`` was ever used (a deleted area's id is not reused: old reports name it)."""
        return bool(
            self._pool.query("SELECT count() FROM tourism_areas WHERE area_id = %(id)s", {"id": area_id})[0][
                0
            ]
        )

    def create(self, area_id: str, name: str, zone_id: str, capacity: int | None, timezone: str) -> Area:
        if self.taken(area_id):
            raise AreaExistsError(f"a tourism area with id {area_id!r} exists or existed; choose another id")
        area = Area(area_id, name, zone_id, capacity, timezone, datetime.now(UTC).replace(microsecond=0))
        self._pool.insert(f"INSERT INTO tourism_areas ({_COLUMNS}) VALUES", [area.row()])
        return area

    def update(self, area: Area) -> Area:
        self.get(area.area_id)
        self._pool.insert(f"INSERT INTO tourism_areas ({_COLUMNS}) VALUES", [area.row()])
        return area

    def delete(self, area_id: str) -> Area:
        area = self.get(area_id)
        self._pool.insert(f"INSERT INTO tourism_areas ({_COLUMNS}) VALUES", [area.row(deleted=True)])
        return area
