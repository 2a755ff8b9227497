"""Released speed bins (``release_traffic``): one window's bins per cell, and bins pooled over
the trailing days' quiet windows (the free-flow reference).

Like every read here, only windows with a ``release_windows`` row are read. Bins are the
unbiased estimates (may be < 0): pools are *sums* of them, so they stay unbiased, and a mean
speed is divided only after pooling (:func:`bins_speed`, the one home of that arithmetic: the API's
congestion and the alerts' ``traffic_speed`` both use it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from hexpulse.store.pool import ClickHousePool
from hexpulse.times import S_PER_DAY, epoch_s, utc


@dataclass(frozen=True, slots=True)
class CellBins:
    """One cell's speed bins (devices per bin) and the standard error of one bin (devices);
    ``mids_kmh``: each bin's representative speed (km/h); ``windows``: how many released
    windows were summed (1 for one window)."""

    bins: tuple[float, ...]
    sigma: float
    mids_kmh: tuple[float, ...]
    windows: int


def _window_sql(window_start: datetime, res: int) -> tuple[str, dict[str, Any]]:
    return (
        "SELECT cell, bins_est, bins_sigma, mids_kmh FROM release_traffic FINAL"
        " WHERE window_start = toDateTime(%(w)s) AND res = %(res)s"
        " AND window_start IN"
        " (SELECT window_start FROM release_windows WHERE window_start = toDateTime(%(w)s))",
        {"w": epoch_s(window_start), "res": res},
    )


def _cells(rows: list[tuple[Any, ...]]) -> dict[int, CellBins]:
    return {int(r[0]): CellBins(tuple(r[1]), float(r[2]), tuple(r[3]), 1) for r in rows}


async def window_bins(pool: ClickHousePool, window_start: datetime, res: int) -> dict[int, CellBins]:
    """Every cell's released bins in the published window starting at ``window_start`` at
    ``res`` (empty when the window drew no bins at that resolution)."""
    return _cells(await pool.aquery(*_window_sql(window_start, res)))


def window_bins_blocking(pool: ClickHousePool, window_start: datetime, res: int) -> dict[int, CellBins]:
    """:func:`window_bins`, blocking (for feed followers, handed windows already published)."""
    return _cells(pool.query(*_window_sql(window_start, res)))


def _pooled_sql(res: int, a: int, b: int, hours: Sequence[int] | None) -> tuple[str, dict[str, Any]]:
    """Per cell and set of bins (mids): bins summed over the published windows starting in [a, b)
    (epoch s), of UTC ``hours`` only unless None; Σσ², mids, windows summed, the last window."""
    hour = " AND toHour(window_start) IN %(hours)s" if hours is not None else ""
    return (
        "SELECT cell, sumForEach(bins_est), sum(bins_sigma * bins_sigma), mids_kmh, count(),"
        " max(window_start) FROM release_traffic FINAL WHERE res = %(res)s"
        " AND window_start >= toDateTime(%(a)s) AND window_start < toDateTime(%(b)s)" + hour +
        " AND window_start IN (SELECT window_start FROM release_windows"
        " WHERE window_start >= toDateTime(%(a)s) AND window_start < toDateTime(%(b)s))"
        " GROUP BY cell, mids_kmh",
        {"res": res, "a": a, "b": b, "hours": tuple(hours or ())},
    )  # fmt: skip


PoolRow = tuple[Any, Any, Any, Any, Any]
"""(bins summed, Σσ², mids, windows, last window start) of one segment and set of bins, as the
pooled queries return them."""


def pooled(rows: Sequence[PoolRow]) -> CellBins | None:
    """The rows of one segment's pooled bins (one row per set of bins): the pool of the newest
    bins, σ of a pooled bin √Σσ² (independent draws); None without rows.

    Bins change only when the plan's edges do, and the window a pool serves comes after every
    window in it: so the pool whose last window is the latest has that window's bins. (The pool
    of the most windows would keep the old edges for days after a change, and no level would
    match.)"""
    best = max(rows, key=lambda r: (r[4], int(r[3])), default=None)
    if best is None:
        return None
    bins, var, mids, n = best[0], best[1], best[2], best[3]
    return CellBins(tuple(float(b) for b in bins), math.sqrt(float(var)), tuple(mids), int(n))


async def _pooled_bins(pool: ClickHousePool, sql: tuple[str, dict[str, Any]]) -> dict[int, CellBins]:
    by_cell: dict[int, list[PoolRow]] = {}
    for cell, bins, var, mids, n, last in await pool.aquery(*sql):
        by_cell.setdefault(int(cell), []).append((bins, var, mids, n, last))
    return {c: p for c, rows in by_cell.items() if (p := pooled(rows)) is not None}


async def quiet_bins(
    pool: ClickHousePool, window_start: datetime, res: int, days: int, hours: Sequence[int]
) -> dict[int, CellBins]:
    """Per cell: its released bins summed over the published windows of the ``days`` before
    ``window_start`` (that window excluded) whose UTC hour is in ``hours``. The σ of a pooled
    bin is √Σσ² over the windows summed (independent draws). A cell whose windows hold bins of
    two sets of edges (the plan changed) keeps the pool of the newest (:func:`pooled`)."""
    if not hours:
        return {}
    w = epoch_s(window_start)
    return await _pooled_bins(pool, _pooled_sql(res, w - days * S_PER_DAY, w, hours))


async def recent_bins(
    pool: ClickHousePool, window_start: datetime, res: int, windows: int, window_s: int
) -> dict[int, CellBins]:
    """Per cell: its released bins summed over the last ``windows`` published windows up to and
    including the one starting at ``window_start`` (a trailing pool: a speed from several minutes'
    devices, σ of a pooled bin √Σσ²)."""
    w = epoch_s(window_start)
    return await _pooled_bins(pool, _pooled_sql(res, w - (windows - 1) * window_s, w + 1, None))


async def series_bins(
    pool: ClickHousePool, start: datetime, end: datetime, res: int
) -> dict[datetime, dict[int, CellBins]]:
    """Every published window starting in [start, end) that drew bins at ``res``: its cells'
    bins, by window start (UTC), oldest first."""
    rows = await pool.aquery(
        "SELECT window_start, cell, bins_est, bins_sigma, mids_kmh FROM release_traffic FINAL"
        " WHERE res = %(res)s AND window_start >= toDateTime(%(a)s) AND window_start < toDateTime(%(b)s)"
        " AND window_start IN (SELECT window_start FROM release_windows"
        " WHERE window_start >= toDateTime(%(a)s) AND window_start < toDateTime(%(b)s))"
        " ORDER BY window_start, cell",
        {"res": res, "a": epoch_s(start), "b": epoch_s(end)},
    )
    out: dict[datetime, dict[int, CellBins]] = {}
    for w, cell, bins, sigma, mids in rows:
        out.setdefault(utc(w), {})[int(cell)] = CellBins(tuple(bins), float(sigma), tuple(mids), 1)
    return out


FloatArray = npt.NDArray[np.float64]


def bins_speed(
    bins: npt.ArrayLike, mids_kmh: npt.ArrayLike, sigma: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Mean speed (km/h) of released speed bins and its standard error (km/h).

    ``bins``: unbiased bin estimates, shape (..., k) (pool windows or cells by summing them
    *before* this division, e.g. a free-flow speed over quiet hours); ``mids_kmh``: each bin's
    representative speed (k); ``sigma``: the noise σ of each entry of ``bins`` (scalar or
    broadcastable; the sum of T windows has σ·√T). Where the bins hold less than one device the
    mean is NaN. Mean = Σ mid·b / Σ b; its gradient in b_i is (mid_i − mean) / Σ b, so with
    independent entries σ_mean² = Σ (mid_i − mean)² σ_i² / (Σ b)². Noisy bins below zero can put
    the ratio outside the bins' speeds, where no mean of devices in them can lie: it is cut to
    [lowest, highest] representative speed (post-processing, never further from the truth)."""
    b = np.asarray(bins, dtype=np.float64)
    mids = np.asarray(mids_kmh, dtype=np.float64)
    total = b.sum(axis=-1)
    ok = total >= 1.0
    safe = np.where(ok, total, 1.0)
    mean = (b @ mids) / safe
    if mids.size:
        mean = np.clip(mean, mids.min(), mids.max())
    sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), b.shape)
    var = (((mids - mean[..., None]) * sig) ** 2).sum(axis=-1) / safe**2
    return np.where(ok, mean, np.nan), np.where(ok, np.sqrt(var), np.nan)


def matching_pool(now: CellBins, quiet: CellBins | None) -> CellBins | None:
    """The free-flow pool ``quiet`` if its bins are those of ``now`` (same mids), else None (a
    pool of other edges is no reference)."""
    return quiet if quiet is not None and quiet.mids_kmh == now.mids_kmh else None


def pool_cells(cells: Sequence[CellBins]) -> CellBins | None:
    """The bins of several cells of one window summed (an area's moving devices per bin), σ of
    a summed bin √Σσ² (independent draws per cell). None when no cell is given; cells whose
    bins have another length than the first's (other edges) are left out."""
    if not cells:
        return None
    k, mids = len(cells[0].bins), cells[0].mids_kmh
    same = [c for c in cells if len(c.bins) == k]
    total = np.sum([c.bins for c in same], axis=0)
    sigma = math.sqrt(sum(c.sigma**2 for c in same))
    return CellBins(tuple(float(x) for x in total), sigma, mids, 1)
