"""Tourism presence: which pseudonyms a closing puts in which tourism zone, per window.

The daily tourism products (issue #14) count distinct devices per area and local day and how long
each stayed. Their exact input is written here, with the partials of the same closing: one row per
(window, zone, pseudonym) for each device-window whose contributed cell (after the per-window
cell bound L, counting semantics 3 and 6) lies in a zone that a tourism area names. Bounding a
device-day to K areas happens when a day is read (privacy/release/tourism_daily.py), from the
device's own rows only.

Which zones count in a window must not change once the window has started, or a replay would write
other rows than the first run: a zone counts in window ``w`` if its version is in effect at ``w``
(zones never change in a started window, hexpulse/zones.py) and some revision of a tourism area
naming it was written before ``w`` (``tourism_areas`` only ever gains revisions; ``revision`` is
the write time in ns). A deleted area's zone therefore keeps counting (nothing is released for a
deleted area); an area counts from the first window after it was created.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hexpulse.pings import I64, U64

ZoneCells = dict[int, tuple[str, ...]]
"""Base cell → the tourism zones holding it (zones of different sets may overlap)."""

Loader = Callable[[int], ZoneCells]
"""Window start (epoch s) → its tourism zone cells."""


def tourism_cells_query(database: str, window_s: int) -> tuple[str, dict[str, int]]:
    """The zones that count at window start ``window_s`` (epoch s) and their cells."""
    return (
        f"SELECT zone_id, cells FROM {database}.zones FINAL "
        "WHERE valid_from <= toDateTime(%(t)s) AND valid_to > toDateTime(%(t)s) "
        f"AND zone_id IN (SELECT zone_id FROM {database}.tourism_areas WHERE revision < %(ns)s)",
        {"t": window_s, "ns": window_s * 1_000_000_000},
    )


def zone_cells(rows: list[tuple[str, list[int]]]) -> ZoneCells:
    """:func:`tourism_cells_query`'s rows as a cell → zones map (zones sorted, for stable rows)."""
    out: dict[int, list[str]] = {}
    for zone_id, cells in rows:
        for c in cells:
            out.setdefault(int(c), []).append(str(zone_id))
    return {c: tuple(sorted(set(z))) for c, z in out.items()}


@dataclass(frozen=True)
class Presence:
    """Presence rows of one closing: window start (ms), zone id and pseudonym, aligned."""

    window_start_ms: I64
    zone_id: list[str]
    device: U64

    def __len__(self) -> int:
        return len(self.zone_id)


class TourismZones:
    """The tourism zone cells per window start, loaded once per window (a few kept)."""

    def __init__(self, load: Loader, keep: int = 8) -> None:
        self._load = load
        self._keep = keep
        self._cache: OrderedDict[int, ZoneCells] = OrderedDict()

    def at(self, window_s: int) -> ZoneCells:
        got = self._cache.get(window_s)
        if got is None:
            got = self._load(window_s)
            self._cache[window_s] = got
            while len(self._cache) > self._keep:
                self._cache.popitem(last=False)
        return got

    def presence(self, window_ms: I64, cell: U64, device: U64) -> Presence:
        """Presence rows of contributions (window start ms, base cell, pseudonym), aligned arrays."""
        wins: list[int] = []
        zones: list[str] = []
        devs: list[int] = []
        for w in np.unique(window_ms).tolist():
            cells = self.at(int(w) // 1000)
            if not cells:
                continue
            mine = window_ms == w
            hit = mine & np.isin(cell, np.fromiter(cells, np.uint64, len(cells)))
            for c, d in zip(cell[hit].tolist(), device[hit].tolist(), strict=True):
                for z in cells[int(c)]:
                    wins.append(int(w))
                    zones.append(z)
                    devs.append(int(d))
        return Presence(np.array(wins, np.int64), zones, np.array(devs, np.uint64))


NO_TOURISM = TourismZones(lambda _w: {})
"""No tourism areas (unit tests of the sink, or a deployment without them)."""
