"""Reads of the public release tables (``release_windows``, ``release_cells``, ``release_ledger``).

Only windows that have a ``release_windows`` row are ever read (only released data is served):
every cell query is keyed by a window start taken from that table. Released windows are
immutable, so their cells are cached in process (LRU) and fetched once even when many requests
arrive together (single flight).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from hexpulse.store.pool import ClickHousePool
from hexpulse.store.tables import RELEASE_CELL_VALUES, column_list
from hexpulse.times import S_PER_DAY, epoch_s
from releases import queries
from releases.cache import Lru
from releases.corridors import ZoneBins, ZoneKey, quiet_zone_bins, recent_zone_bins, window_zone_bins
from releases.models import CellRow, Window, WindowSum
from releases.smoothing import Smoothed, SmoothingParams, smooth
from releases.traffic import CellBins, quiet_bins, recent_bins, window_bins

_CELL_VALUES = column_list(RELEASE_CELL_VALUES)


class ReleaseReader:
    """Async reads of released data with in-process caches of immutable windows."""

    def __init__(self, pool: ClickHousePool, cache_entries: int, latest_ttl_s: float) -> None:
        self.pool = pool
        self._cells = Lru(cache_entries)
        self._freeflow = Lru(cache_entries)
        self._plans = Lru(64)  # plans never change; a window names its plan by hash
        self._smoothed = Lru(cache_entries)
        self._traffic = Lru(cache_entries)
        self._inflight: dict[Any, asyncio.Future[Any]] = {}
        self._latest: tuple[float, Window | None] = (float("-inf"), None)
        self._latest_ttl_s = latest_ttl_s
        self._latest_inflight: asyncio.Future[Window | None] | None = None
        self.cell_queries = 0  # ClickHouse reads of a window's cells (tests assert the fan-out)

    async def _once(self, cache: Lru, key: Any, load: Any) -> Any:
        hit = cache.get(key)
        if hit is not None:
            return hit
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await load()
            cache.put(key, value)
            future.set_result(value)
            return value
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._inflight[key]

    async def latest(self, fresh: bool = False) -> Window | None:
        """The newest released window (re-read at most every ``latest_ttl_s`` seconds).

        One read at a time (single flight): requests that arrive while a re-read is in flight get
        the value they would have got a moment earlier instead of queueing their own query behind
        it. Without this, every request in flight when the TTL expired queried ClickHouse at once,
        which was the p99 tail of ``GET /v1/density`` under load.
        """
        at, window = self._latest
        if not fresh and time.monotonic() - at < self._latest_ttl_s:
            return window
        inflight = self._latest_inflight
        if inflight is not None and not inflight.done():
            if not fresh and at > float("-inf"):
                return window
            return await asyncio.shield(inflight)
        task = asyncio.ensure_future(self._read_latest())
        self._latest_inflight = task
        return await asyncio.shield(task)

    async def _read_latest(self) -> Window | None:
        rows = await self.pool.aquery(*queries.latest_window())
        window = Window.from_row(rows[0]) if rows else None
        self._latest = (time.monotonic(), window)
        return window

    async def at(self, when: datetime) -> Window | None:
        """The released window containing ``when``."""
        rows = await self.pool.aquery(*queries.window_at(when))
        return Window.from_row(rows[0]) if rows else None

    async def recent(self, limit: int) -> list[Window]:
        """The ``limit`` newest released windows, newest first."""
        return [Window.from_row(r) for r in await self.pool.aquery(*queries.recent_windows(limit))]

    async def cells(self, window: Window, res: int) -> dict[int, CellRow]:
        """Every released cell of ``window`` at ``res`` (cached; released windows never change)."""

        async def load() -> dict[int, CellRow]:
            self.cell_queries += 1
            rows = await self.pool.aquery(
                f"SELECT cell, {_CELL_VALUES} FROM release_cells FINAL"
                " WHERE window_start = toDateTime(%(w)s) AND res = %(res)s",
                {"w": epoch_s(window.start), "res": res},
            )
            return {int(r[0]): CellRow(*r[1:]) for r in rows}

        result: dict[int, CellRow] = await self._once(self._cells, ("cells", window.start, res), load)
        return result

    async def history(self, window: Window, n: int) -> list[Window]:
        """``window`` and the released windows before it, at most ``n``, oldest first. Fixed once
        ``window`` is public: the releaser publishes a window only after every earlier one."""
        rows = await self.pool.aquery(*queries.windows_up_to(window.start, n))
        return [Window.from_row(r) for r in reversed(rows)]

    async def smoothed(
        self, window: Window, res: int, params: SmoothingParams
    ) -> tuple[Smoothed, list[Window]]:
        """Per cell of ``window`` at ``res``: (smoothed count, σ) in devices over the last
        ``params.windows`` released windows (:mod:`releases.smoothing`), and those windows (cached:
        what it reads never changes)."""

        async def load() -> tuple[Smoothed, list[Window]]:
            windows = await self.history(window, params.windows)
            cells = [await self.cells(w, res) for w in windows]
            return await asyncio.to_thread(smooth, cells, params), windows

        key = ("smoothed", window.start, res, params)
        result: tuple[Smoothed, list[Window]] = await self._once(self._smoothed, key, load)
        return result

    async def free_flow(
        self, window: Window, res: int, days: int, quantile: float
    ) -> dict[int, tuple[float, int]]:
        """Per cell: the ``quantile`` of its released speeds (km/h) over ``days`` up to ``window``,
        and how many windows had a speed."""

        async def load() -> dict[int, tuple[float, int]]:
            rows = await self.pool.aquery(
                "SELECT cell, quantileExact(%(q)s)(speed_kmh), count() FROM release_cells FINAL"
                " WHERE res = %(res)s AND speed_kmh IS NOT NULL"
                " AND window_start > toDateTime(%(w)s) - %(span)s AND window_start <= toDateTime(%(w)s)"
                " AND window_start IN (SELECT window_start FROM release_windows)"
                " GROUP BY cell",
                {"q": quantile, "res": res, "w": epoch_s(window.start), "span": days * S_PER_DAY},
            )
            return {int(r[0]): (float(r[1]), int(r[2])) for r in rows}

        result: dict[int, tuple[float, int]] = await self._once(
            self._freeflow, ("ff", window.start, res, days, quantile), load
        )
        return result

    async def traffic_bins(self, window: Window, res: int) -> dict[int, CellBins]:
        """The window's released speed bins per cell at ``res`` (cached; empty if none drawn)."""

        async def load() -> dict[int, CellBins]:
            return await window_bins(self.pool, window.start, res)

        result: dict[int, CellBins] = await self._once(self._traffic, ("bins", window.start, res), load)
        return result

    async def free_flow_bins(
        self, window: Window, res: int, days: int, hours: tuple[int, ...]
    ) -> dict[int, CellBins]:
        """Per cell: released bins pooled over the quiet windows (UTC ``hours``) of the ``days``
        before ``window`` (cached per window: the windows before a released one never change)."""

        async def load() -> dict[int, CellBins]:
            return await quiet_bins(self.pool, window.start, res, days, hours)

        key = ("quiet", window.start, res, days, hours)
        result: dict[int, CellBins] = await self._once(self._traffic, key, load)
        return result

    async def recent_traffic_bins(
        self, window: Window, res: int, windows: int, window_s: int
    ) -> dict[int, CellBins]:
        """Per cell: released bins summed over the last ``windows`` published windows up to
        ``window`` (cached per window: windows up to a released one never change)."""

        async def load() -> dict[int, CellBins]:
            return await recent_bins(self.pool, window.start, res, windows, window_s)

        key = ("recent", window.start, res, windows, window_s)
        result: dict[int, CellBins] = await self._once(self._traffic, key, load)
        return result

    async def recent_zone_traffic_bins(
        self, window: Window, windows: int, window_s: int
    ) -> dict[ZoneKey, CellBins]:
        """Per zone version: released bins summed over the last ``windows`` published windows up
        to ``window`` (cached per window, as :meth:`recent_traffic_bins`)."""

        async def load() -> dict[ZoneKey, CellBins]:
            return await recent_zone_bins(self.pool, window.start, windows, window_s)

        key = ("zone-recent", window.start, windows, window_s)
        result: dict[ZoneKey, CellBins] = await self._once(self._traffic, key, load)
        return result

    async def zone_bins(self, window: Window) -> list[ZoneBins]:
        """The window's released speed bins of zones measured directly (corridors), with their
        names and outlines (cached; empty if the window measured none)."""

        async def load() -> list[ZoneBins]:
            return await window_zone_bins(self.pool, window.start)

        result: list[ZoneBins] = await self._once(self._traffic, ("zone-bins", window.start), load)
        return result

    async def zone_free_flow_bins(
        self, window: Window, days: int, hours: tuple[int, ...]
    ) -> dict[ZoneKey, CellBins]:
        """Per zone version: released bins pooled over the quiet windows (UTC ``hours``) of the
        ``days`` before ``window`` (cached per window, as :meth:`free_flow_bins`)."""

        async def load() -> dict[ZoneKey, CellBins]:
            return await quiet_zone_bins(self.pool, window.start, days, hours)

        key = ("zone-quiet", window.start, days, hours)
        result: dict[ZoneKey, CellBins] = await self._once(self._traffic, key, load)
        return result

    async def estimate_sums(
        self, selection: Mapping[int, frozenset[int]], start: datetime, end: datetime
    ) -> list[WindowSum]:
        """Per released window in [start, end): Σ of the unbiased estimates ``count_est`` of the
        selected cells (``{res: cells}``; a cover may mix resolutions), the plan they were drawn
        under, cells released per resolution, and Σ σ² (the variance only if the cells' errors were
        independent, which reconciled ones are not: callers compute the variance from the plan)."""
        parts = [(res, cells) for res, cells in sorted(selection.items()) if cells]
        if not parts:
            return []
        params: dict[str, Any] = {"a": epoch_s(start), "b": epoch_s(end)}
        where = []
        for res, cells in parts:
            where.append(f"(res = %(r{res})s AND cell IN %(c{res})s)")
            params[f"r{res}"], params[f"c{res}"] = res, tuple(sorted(cells))
        rows = await self.pool.aquery(
            "SELECT window_start, window_end, released_at, lag_s, rho, mechanism, base_cells,"
            " res, total, var, n, one, plans FROM ("
            " SELECT window_start, res, sum(count_est) AS total, sum(count_sigma * count_sigma) AS var,"
            " count() AS n, any(plan) AS one, uniqExact(plan) AS plans"
            " FROM release_cells FINAL WHERE (" + " OR ".join(where) + ")"
            " AND window_start >= toDateTime(%(a)s) AND window_start < toDateTime(%(b)s)"
            " GROUP BY window_start, res) AS c"
            " ANY INNER JOIN (SELECT window_start, window_end, released_at, lag_s, rho, mechanism, base_cells"
            " FROM release_windows FINAL WHERE window_start >= toDateTime(%(a)s)"
            " AND window_start < toDateTime(%(b)s)) AS w USING window_start"
            " ORDER BY window_start, res",
            params,
        )
        out: list[WindowSum] = []
        for r in rows:
            window = Window.from_row(r[:7])
            if not out or out[-1].window.start != window.start:
                out.append(WindowSum(window, 0.0, 0.0, {}, int(r[11]), True))
            cur = out[-1]
            cur.estimate += float(r[8])
            cur.independent_var += float(r[9])
            cur.released[int(r[7])] = int(r[10])
            cur.one_plan = cur.one_plan and int(r[12]) == 1 and int(r[11]) == cur.plan
        return out

    async def plan_json(self, plan: int) -> str | None:
        """The JSON of release plan ``plan`` (from a releaser's intent; None if none is kept)."""

        async def load() -> tuple[str | None]:
            rows = await self.pool.aquery(
                "SELECT plan_json FROM release_intents WHERE plan = %(p)s LIMIT 1",
                {"p": plan},
            )
            return (str(rows[0][0]) if rows else None,)

        found: tuple[str | None] = await self._once(self._plans, ("plan", plan), load)
        return found[0]

    async def budget_on(self, day: date) -> tuple[float, int]:
        """Σ ρ (zCDP) charged to every device-day of ``day`` and the number of noise draws.

        The ledger is append-only and several releasers may record the same draw: each distinct
        (window, resolution, metric, fingerprint) counts once (privacy.release.ledger).
        """
        rows = await self.pool.aquery(
            "SELECT sum(r), countIf(m != 'derived') FROM ("
            " SELECT any(rho) AS r, any(mechanism) AS m FROM release_ledger"
            " WHERE day = toDate(%(d)s) GROUP BY window_start, res, metric, fingerprint)",
            {"d": day.isoformat()},
        )
        return (float(rows[0][0] or 0.0), int(rows[0][1])) if rows else (0.0, 0)
