"""Released speed bins of registered zones measured directly (``release_zone_traffic``): road
corridors, one row per (window, zone set, zone) with the zone version measured.

A corridor holds the bins of all its base cells under one draw's σ, so it is the unit that stays
informative at real density where a res-8 cell per minute drowns in noise. The arithmetic is the
cells' (:mod:`releases.traffic`): bins are unbiased estimates (may be < 0), a free-flow pool is a
*sum* over quiet windows divided only afterwards (:func:`releases.traffic.bins_speed`), and each
zone's bins come back as a :class:`releases.traffic.CellBins`, so every consumer of cell bins takes
a corridor's as they are.

Like every read here, only windows with a ``release_windows`` row are read. A zone's name and
outline are those of the version the window measured (table ``zones``, public).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from hexpulse.store.pool import ClickHousePool
from hexpulse.times import S_PER_DAY, epoch_s, utc
from releases.traffic import CellBins, PoolRow, pooled

ZoneKey = tuple[str, str, int]
"""(zone_set, zone_id, version) of a measured zone."""


@dataclass(frozen=True, slots=True)
class ZoneOutline:
    """A zone version's public description: its name and its GeoJSON geometry (text as stored)."""

    name: str
    geometry: str


@dataclass(frozen=True, slots=True)
class ZoneBins:
    """One zone's released speed bins in one window: ``cells`` base cells were summed into
    ``bins`` (devices per bin, σ of one bin, mids in km/h); ``outline`` None when the zone version
    is no longer in ``zones`` (its bins are still served, under its id)."""

    zone_set: str
    zone_id: str
    version: int
    cells: int
    bins: CellBins
    outline: ZoneOutline | None

    @property
    def key(self) -> ZoneKey:
        return (self.zone_set, self.zone_id, self.version)


def _published(a: str, b: str) -> str:
    """The SQL condition 'window_start is a published window in [a, b)' (a, b: parameters)."""
    return (
        f" AND window_start IN (SELECT window_start FROM release_windows"
        f" WHERE window_start >= toDateTime(%({a})s) AND window_start < toDateTime(%({b})s))"
    )


async def zone_outlines(
    pool: ClickHousePool, keys: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], ZoneOutline]:
    """Name and geometry of each (zone_id, version) asked for that ``zones`` still holds."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    rows = await pool.aquery(
        "SELECT zone_id, version, name, geometry FROM zones FINAL WHERE (zone_id, version) IN %(keys)s",
        {"keys": tuple(wanted)},
    )
    return {(str(r[0]), int(r[1])): ZoneOutline(str(r[2]), str(r[3])) for r in rows}


async def window_zone_bins(pool: ClickHousePool, window_start: datetime) -> list[ZoneBins]:
    """Every zone's released bins in the published window starting at ``window_start``, sorted by
    (set, id); empty when the window measured no zone traffic."""
    w = epoch_s(window_start)
    rows = await pool.aquery(
        "SELECT zone_set, zone_id, version, cells, bins_est, bins_sigma, mids_kmh"
        " FROM release_zone_traffic FINAL WHERE window_start = toDateTime(%(a)s)"
        + _published("a", "b") + " ORDER BY zone_set, zone_id",
        {"a": w, "b": w + 1},
    )
    outlines = await zone_outlines(pool, ((str(r[1]), int(r[2])) for r in rows))
    return [
        ZoneBins(str(s), str(z), int(v), int(n), CellBins(tuple(b), float(sig), tuple(m), 1),
                 outlines.get((str(z), int(v))))  # fmt: skip
        for s, z, v, n, b, sig, m in rows
    ]


async def _pooled_zone_bins(
    pool: ClickHousePool, a: int, b: int, hours: Sequence[int] | None
) -> dict[ZoneKey, CellBins]:
    """Per zone version: bins summed over the published windows starting in [a, b) (epoch s), of
    UTC ``hours`` only unless None (:func:`releases.traffic.pooled`)."""
    hour = " AND toHour(window_start) IN %(hours)s" if hours is not None else ""
    rows = await pool.aquery(
        "SELECT zone_set, zone_id, version, sumForEach(bins_est), sum(bins_sigma * bins_sigma),"
        " mids_kmh, count(), max(window_start) FROM release_zone_traffic FINAL"
        " WHERE window_start >= toDateTime(%(a)s) AND window_start < toDateTime(%(b)s)" + hour +
        _published("a", "b") + " GROUP BY zone_set, zone_id, version, mids_kmh",
        {"a": a, "b": b, "hours": tuple(hours or ())},
    )  # fmt: skip
    by_zone: dict[ZoneKey, list[PoolRow]] = {}
    for s, z, v, bins, var, mids, n, last in rows:
        by_zone.setdefault((str(s), str(z), int(v)), []).append((bins, var, mids, n, last))
    return {k: p for k, rows_ in by_zone.items() if (p := pooled(rows_)) is not None}


async def quiet_zone_bins(
    pool: ClickHousePool, window_start: datetime, days: int, hours: Sequence[int]
) -> dict[ZoneKey, CellBins]:
    """Per zone version: its released bins summed over the published windows of the ``days``
    before ``window_start`` (that window excluded) whose UTC hour is in ``hours`` (the free-flow
    reference, the cells' rule: :func:`releases.traffic.quiet_bins`). σ of a pooled bin √Σσ²
    (independent draws). Pools are per version, since another outline holds other roads; a zone
    whose windows hold bins of two sets of edges (the plan changed) keeps the pool of the newest."""
    if not hours:
        return {}
    w = epoch_s(window_start)
    return await _pooled_zone_bins(pool, w - days * S_PER_DAY, w, hours)


async def recent_zone_bins(
    pool: ClickHousePool, window_start: datetime, windows: int, window_s: int
) -> dict[ZoneKey, CellBins]:
    """Per zone version: its released bins summed over the last ``windows`` published windows up
    to and including the one starting at ``window_start`` (:func:`releases.traffic.recent_bins`)."""
    w = epoch_s(window_start)
    return await _pooled_zone_bins(pool, w - (windows - 1) * window_s, w + 1, None)


async def series_zone_bins(
    pool: ClickHousePool, start: datetime, end: datetime
) -> dict[datetime, dict[ZoneKey, CellBins]]:
    """Every published window starting in [start, end) that measured zone traffic: its zones'
    bins by (set, id, version), by window start (UTC), oldest first."""
    rows = await pool.aquery(
        "SELECT window_start, zone_set, zone_id, version, bins_est, bins_sigma, mids_kmh"
        " FROM release_zone_traffic FINAL WHERE window_start >= toDateTime(%(a)s)"
        " AND window_start < toDateTime(%(b)s)" + _published("a", "b") +
        " ORDER BY window_start, zone_set, zone_id",
        {"a": epoch_s(start), "b": epoch_s(end)},
    )  # fmt: skip
    out: dict[datetime, dict[ZoneKey, CellBins]] = {}
    for w, s, z, v, bins, sigma, mids in rows:
        key = (str(s), str(z), int(v))
        out.setdefault(utc(w), {})[key] = CellBins(tuple(bins), float(sigma), tuple(mids), 1)
    return out


def outline_keys(zones: Iterable[ZoneKey]) -> list[tuple[str, int]]:
    """(zone_id, version) of each zone key, for :func:`zone_outlines`."""
    return sorted({(z, v) for _, z, v in zones})
