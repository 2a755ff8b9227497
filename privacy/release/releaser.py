"""The releaser: every complete window → one plan → noise once → release tables + budget ledger.

A window is *complete* when every partition 0..P−1 of the pings topic has a counted closing
for it in ``progress`` (hexpulse/store/progress.py: a closing no later owner's claim cut short;
a partition with none blocks). For each complete window not yet in ``release_windows``, in time
order, the releaser

1. claims it for one plan (:mod:`privacy.release.claims`): its own, or the plan the window was
   begun with by an earlier or concurrent releaser;
2. checks that the day's ledger plus that plan's charge fits the configured daily budget;
3. reads its exact partials (``FINAL``) — per partition only the rows of that partition's one
   counted closing, so orphan rows and a fenced-off consumer's rows never count —, sums
   partitions per base cell, lays them on the public partitions (every cell of the service area,
   zeros included), noises each (metric, measured resolution) vector once with keys derived
   from the day's secret release-noise key, the plan and the exact input
   (:mod:`privacy.release.seeds`), and reconciles the resolutions (:mod:`privacy.release.consistency`);
4. measures the registered zones in effect at the window's start (the ones its plan record names:
   one keyed draw per zone set, :mod:`privacy.release.zones`), if the plan funds ``traffic``,
   the moving devices per speed bin at the traffic resolution (:mod:`privacy.release.traffic`)
   and, per ``traffic.<set>``, the set's moving devices per speed bin and zone
   (:mod:`privacy.release.zone_traffic`), both over the devices within their day's first W_t
   moving windows (:mod:`privacy.release.traffic_bound`); a window whose partials predate the
   speed bins or the moving rows draws no bins and is not charged for them;
5. records the draws in the append-only ``release_ledger``; if the ledger then holds no other draw
   of the window, writes ``release_cells`` (one INSERT, one part: atomic), ``release_zones``,
   ``release_traffic`` and ``release_zone_traffic``,
   then the ``release_windows`` row that makes it public.

Crash safety and concurrency: every step may run again, in this process or another. The same
window, plan and input give the same keys, hence the same noise and identical rows (cells and
windows are ReplacingMergeTree; the append-only ledger counts each distinct draw once), so a
releaser killed at any instruction, or any number of releasers of one plan, publish one value
per (window, resolution, cell, metric). Nothing is deleted and nothing is drawn anew.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
from clickhouse_driver import Client
from clickhouse_driver.errors import Error as DriverError

from hexpulse.logs import log_event
from hexpulse.service_area import ServiceArea, load_service_area
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.progress import CLAIM, COLUMNS, Coverage, ProgressRow
from hexpulse.zones import Zone
from privacy.keys.exceptions import KeyDestroyedError, KeyUnavailableError
from privacy.keys.keyring import KeyRing
from privacy.release.budget import fits_day, plan_from_settings, speed_bound_kmh
from privacy.release.claims import claim_window
from privacy.release.consistency import Hierarchy, build_hierarchy
from privacy.release.exceptions import BudgetError, DoubleDrawError, PlanConflictError, ReleaseError
from privacy.release.ledger import check_one_draw, ledger_rows, spent_on, window_prints, write_ledger
from privacy.release.mechanisms import IntVector
from privacy.release.plans import PlanRecord, area_digest
from privacy.release.seeds import input_digest, window_keys
from privacy.release.shares import TRAFFIC
from privacy.release.traffic import (
    BINS_STATE_SQL,
    MOVING_STATE_SQL,
    TRAFFIC_COLUMNS,
    bins_tree,
    has_bins,
    has_moving_rows,
    measure_traffic,
    traffic_rows,
)
from privacy.release.traffic_bound import TrafficBound, bins_of_rows
from privacy.release.values import CELL_COLUMNS, cell_rows, exact_totals, release_values
from privacy.release.zone_traffic import (
    ZONE_TRAFFIC_COLUMNS,
    measure_zone_traffic,
    zone_traffic_prints,
    zone_traffic_rows,
)
from privacy.release.zones import (
    ZONE_COLUMNS,
    measure_zones,
    zone_prints,
    zone_rows,
    zones_in_effect_at,
    zones_of_record,
)

log = logging.getLogger("hexpulse.privacy.releaser")


def _ts(epoch_s: int) -> datetime:
    """Naive UTC datetime, the form clickhouse-driver writes into DateTime('UTC') columns."""
    return datetime.fromtimestamp(epoch_s, UTC).replace(tzinfo=None)


class Releaser:
    """Releases complete windows of one deployment; see the module docstring for the protocol."""

    def __init__(
        self,
        settings: Settings,
        *,
        area: ServiceArea | None = None,
        client: Client | None = None,
        ring: KeyRing | None = None,
    ) -> None:
        self.settings = settings
        self.plan = plan_from_settings(settings)
        self.area = area or load_service_area(settings)
        self.tree = build_hierarchy(self.area, self.plan.resolutions)
        self.record = PlanRecord(self.plan, speed_bound_kmh(settings.speed_clamp_mps), area_digest(self.tree))
        self.ring = ring or KeyRing.from_settings(settings)  # the day's release-noise keys
        self.db = settings.clickhouse_database
        self.exact = settings.exact_database  # partials and progress: the pipeline user's only
        self.client = client or connect(settings)
        self.window_s = settings.window_s
        self.releaser_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._reported: set[tuple[int, str]] = set()  # (window, reason) already logged
        self._bins_trees: dict[int, Hierarchy] = {}
        self._bound = TrafficBound(self.client, self.exact, self.window_s)

    # -- reading ---------------------------------------------------------------------------

    def coverage(self, after_s: int | None = None) -> Coverage:
        """The counted closings of every partition, for windows starting at or after ``after_s``
        (epoch s; None: all). Claims are few (one per takeover) and all are read."""
        rows = self.client.execute(
            f"SELECT {COLUMNS} FROM {self.exact}.progress FINAL WHERE topic = %(topic)s "
            "AND (closed_by = %(claim)s OR horizon > %(after)s)",
            {"topic": self.settings.topic_pings, "claim": CLAIM, "after": _ts(max(after_s or 0, 0))},
        )
        return Coverage([ProgressRow.of(r) for r in rows])

    def complete_before(self, coverage: Coverage | None = None) -> int | None:
        """Epoch s: every window starting before it is complete (None while a partition has no
        counted closing)."""
        cov = coverage or self.coverage()
        horizons = [cov.horizon(p) for p in range(self.settings.topic_partitions)]
        if any(h is None for h in horizons):
            return None
        return min(h for h in horizons if h is not None) // 1000

    def pending_windows(self) -> list[int]:
        """Window starts (epoch s) that are complete and not yet public, oldest first."""
        ((last, n_released),) = self.client.execute(
            f"SELECT toUInt32(max(window_start)), count() FROM {self.db}.release_windows FINAL"
        )
        horizon = self.complete_before(self.coverage(int(last) if n_released else None))
        if horizon is None:
            return []
        if n_released:
            start = int(last) + self.window_s
        else:
            ((first, n_partials),) = self.client.execute(
                f"SELECT toUInt32(min(window_start)), count() FROM {self.exact}.partials "
                "WHERE window_start < %(h)s",
                {"h": _ts(horizon)},
            )
            if not n_partials:
                return []
            start = int(first)
        floor = self.ring.oldest_allowed() * 86_400  # the first day that still has a noise key
        if start < min(floor, horizon):
            skipped = len(range(start, min(floor, horizon), self.window_s))
            self._report(start, f"{skipped} window(s) past the key retention skipped, never published",
                         logging.WARNING)  # fmt: skip
            start = floor
        return list(range(start, horizon, self.window_s))

    def _counted(self, w: int) -> tuple[tuple[int, int], ...]:
        """(partition, closing) of each partition's counted closing of window ``w`` (epoch s)."""
        cov = self.coverage(w)
        counted = ((p, cov.counted(p, w * 1000)) for p in range(self.settings.topic_partitions))
        return tuple((p, c.closing) for p, c in counted if c is not None)

    def read_exact(self, w: int) -> dict[str, IntVector]:
        """The window's exact totals per base cell of the area (zeros for quiet cells), summed over
        partitions from each partition's counted closing only (a partition that has not closed the
        window yet adds nothing: only a complete window gives its whole total)."""
        pairs = self._counted(w)
        if not pairs:
            return exact_totals(self.tree.cells[0], [])[0]
        rows = self.client.execute(
            f"SELECT cell, sum(devices), sum(moving), sum(speed_sum) FROM {self.exact}.partials FINAL "
            "WHERE window_start = %(w)s AND (partition, closing) IN %(pairs)s GROUP BY cell ORDER BY cell",
            {"w": _ts(w), "pairs": pairs},
        )
        out, outside = exact_totals(self.tree.cells[0], rows)
        if outside:
            log_event(log, "partials outside the service area ignored", logging.WARNING,
                      window_start=w, cells=outside)  # fmt: skip
        return out

    def has_bins(self, w: int) -> bool:
        """Whether window ``w``'s counted partials all hold speed bins (none predates migration
        0011) and their moving contributions all have ``traffic_moving`` rows (none predates 0019)."""
        pairs = self._counted(w)
        if not pairs:
            return True
        params = {"w": _ts(w), "pairs": pairs}
        ((with_bins, without),) = self.client.execute(BINS_STATE_SQL.format(exact=self.exact), params)
        ((moving, rows),) = self.client.execute(MOVING_STATE_SQL.format(exact=self.exact), params)
        if rows and not has_moving_rows(int(moving), int(rows)):
            self._report(w, f"{rows} moving rows for {moving} moving contributions: no traffic released "
                         "for this window", logging.ERROR)  # fmt: skip
        return has_bins(int(with_bins), int(without)) and has_moving_rows(int(moving or 0), int(rows))

    def read_bins(self, w: int, k: int, limit: int) -> npt.NDArray[np.int64]:
        """(base cells × ``k`` bins) moving devices per speed bin of window ``w``, from the counted
        closings like :meth:`read_exact`, of the devices within their day's first ``limit`` (W_t)
        moving windows (:mod:`privacy.release.traffic_bound`)."""
        rows = self._bound.bound(w, self._counted(w), self._day_triples, limit)
        return bins_of_rows(self.tree.cells[0], rows, k)

    def _day_triples(self, start: int, end: int) -> list[tuple[int, int, int]]:
        """(window, partition, closing) of every counted closing of the windows in [start, end)."""
        cov = self.coverage(start)
        out = []
        for w in range(start, end, self.window_s):
            for p in range(self.settings.topic_partitions):
                c = cov.counted(p, w * 1000)
                if c is not None:
                    out.append((w, p, c.closing))
        return out

    def _completed_at(self, w: int) -> int:
        rows = self.client.execute(
            f"SELECT partition, toUInt32(min(written_at)) FROM {self.exact}.progress FINAL "
            "WHERE topic = %(topic)s AND horizon > %(w)s AND closed_by != %(claim)s GROUP BY partition",
            {"topic": self.settings.topic_pings, "w": _ts(w), "claim": CLAIM},
        )
        return max((int(t) for _, t in rows), default=w)

    def _is_public(self, start: datetime) -> bool:
        ((public,),) = self.client.execute(
            f"SELECT count() FROM {self.db}.release_windows FINAL WHERE window_start = %(w)s", {"w": start}
        )
        return bool(public)

    def _zones_at(self, start: datetime) -> list[Zone]:
        """The zones this releaser would measure in the window starting at ``start``."""
        kept, dropped = zones_in_effect_at(self.client, start, self.plan)
        for z in dropped:
            self._report(int(start.replace(tzinfo=UTC).timestamp()), f"zone {z.zone_id} v{z.version} of set "
                         f"{z.zone_set!r} not measured (overlaps another zone or its set has no budget)",
                         logging.WARNING)  # fmt: skip
        return kept

    def _bins_tree(self, res: int) -> Hierarchy:
        """The base cells and their cells at traffic resolution ``res`` (cached per resolution)."""
        if res not in self._bins_trees:
            self._bins_trees[res] = bins_tree(self.area, res)
        return self._bins_trees[res]

    # -- writing ---------------------------------------------------------------------------

    def release_window(self, w: int) -> bool:
        """Release window ``w`` (epoch s); return False if it was already public.

        Raises PlanConflictError (claimed under another plan), DoubleDrawError (the ledger holds
        another draw), BudgetError, or KeyUnavailableError (no release-noise key for its day).
        """
        start = _ts(w)
        if self._is_public(start):
            return False
        measured = self._zones_at(start)
        bins_ok = not self.plan.funds_bins or self.has_bins(w)
        if not bins_ok:
            self._report(w, "partials predate the speed bins (migration 0011): no traffic released "
                         "for this window", logging.WARNING)  # fmt: skip
        mine = replace(self.record, zones=tuple(z.ref for z in measured), traffic_drawn=bins_ok)
        record = claim_window(self.client, self.db, start, mine, self.releaser_id)
        if record.zones != mine.zones:
            measured = zones_of_record(self.client, record, start)  # begun by another releaser: its zones
        plan = record.plan
        spent = spent_on(self.client, self.db, start.date(), excluding=start)
        if not fits_day(spent, record.charge, self.plan.rho_per_day):
            raise BudgetError(
                f"releasing window {start:%Y-%m-%d %H:%M} would exceed the daily budget "
                f"rho={self.plan.rho_per_day:g} (already spent {spent:.6g}); refusing to release it"
            )
        exact = self.read_exact(w)
        # The window's own plan fixes the bins (it may have been begun under another configuration).
        bins_k, limit = len(plan.traffic_edges_kmh) - 1, plan.traffic_window_bound
        base_bins = self.read_bins(w, bins_k, limit) if record.draws_bins else None
        # The bins join the digest only when drawn, so windows without traffic keep their keys.
        digest_in = exact if base_bins is None else {**exact, TRAFFIC: base_bins.ravel()}
        keys = window_keys(self.ring, w, record.hash, input_digest(digest_in))
        values = release_values(plan, self.tree, exact, keys)
        zones = measure_zones(plan, measured, self.tree.cells[0], exact["count"], keys)
        traffic, corridors = None, []
        if base_bins is not None and plan.traffic_draw is not None:
            traffic = measure_traffic(plan, self._bins_tree(plan.traffic_draw.res), base_bins, keys)
        if base_bins is not None:
            corridors = measure_zone_traffic(plan, measured, self.tree.cells[0], base_bins, keys)
        prints = values.prints(self.tree) | zone_prints(zones, plan.base_resolution)
        prints |= zone_traffic_prints(corridors, plan.base_resolution)
        if traffic is not None:
            prints |= traffic.prints()
        check_one_draw(window_prints(self.client, self.db, start), prints, start)
        now = time.time()
        ledger = ledger_rows(plan, record.hash, start, prints, self.releaser_id, _ts(int(now)),
                             zone_sets=[v.zone_set for v in zones], traffic=traffic is not None,
                             zone_traffic_sets=[v.zone_set for v in corridors])  # fmt: skip
        write_ledger(self.client, self.db, ledger)
        # Recorded first, checked, then written: a releaser that read another input (a bug
        # upstream) drew independent noise, and of two such draws the one whose check reads last
        # sees the other's rows and stops, so at most one ever reaches release_cells.
        check_one_draw(window_prints(self.client, self.db, start), prints, start)
        rows = cell_rows(start, self.tree, values, record.speed_cap_kmh, plan=record.hash)
        self.client.execute(f"INSERT INTO {self.db}.release_cells ({CELL_COLUMNS}) VALUES", rows)
        if zones:
            self.client.execute(f"INSERT INTO {self.db}.release_zones ({ZONE_COLUMNS}) VALUES",
                                zone_rows(start, zones, plan=record.hash))  # fmt: skip
        if traffic is not None:
            self.client.execute(f"INSERT INTO {self.db}.release_traffic ({TRAFFIC_COLUMNS}) VALUES",
                                traffic_rows(start, traffic, plan=record.hash))  # fmt: skip
        if corridors:
            self.client.execute(f"INSERT INTO {self.db}.release_zone_traffic ({ZONE_TRAFFIC_COLUMNS}) VALUES",
                                zone_traffic_rows(start, corridors, plan=record.hash))  # fmt: skip
        lag = max(0.0, now - self._completed_at(w))
        self.client.execute(
            f"INSERT INTO {self.db}.release_windows "
            "(window_start, window_end, released_at, base_cells, rho, mechanism, lag_s, plan) VALUES",
            [(start, _ts(w + self.window_s), _ts(int(now)), self.tree.sizes[0],
              record.charge, plan.mechanism, lag, record.hash)],
        )  # fmt: skip
        log_event(log, "window released", window_start=w, lag_s=round(lag, 3), cells=len(rows),
                  zones=sum(len(v.zones) for v in zones), rho=record.charge,
                  plan=f"{record.hash:016x}")  # fmt: skip
        return True

    def run_once(self) -> int:
        """Release every pending window, oldest first; return how many were published.

        A window refused for its plan or for a double draw stops the run there (later windows
        wait; the next run retries). A window whose day's noise key is past the key retention can
        never be released: it is skipped with a warning (:meth:`pending_windows` leaves such
        windows out; this catches a day that expires during a run).
        """
        released = 0
        try:
            for w in self.pending_windows():
                try:
                    released += self.release_window(w)
                except KeyDestroyedError:
                    self._report(w, "noise key destroyed; window skipped, never published", logging.WARNING)
                except (PlanConflictError, DoubleDrawError, KeyUnavailableError) as exc:
                    self._report(w, str(exc), logging.ERROR)
                    break
        except DriverError as exc:
            raise ReleaseError(f"ClickHouse refused a release statement: {exc.message}") from None
        except (OSError, EOFError) as exc:
            raise ReleaseError(
                f"ClickHouse connection failed during a release ({type(exc).__name__})"
            ) from None
        return released

    def _report(self, w: int, reason: str, level: int) -> None:
        """Log a refused window once per process and reason (the loop retries it every poll)."""
        if (w, reason) not in self._reported:
            self._reported.add((w, reason))
            log_event(log, "window not released", level, window_start=w, reason=reason)

    def check_budget_today(self) -> None:
        """Refuse to start if today's ledger leaves no room for one more window."""
        today = datetime.now(UTC).date()
        spent = spent_on(self.client, self.db, today)
        if not fits_day(spent, self.plan.charge_per_window, self.plan.rho_per_day):
            raise BudgetError(
                f"today's ledger already holds rho={spent:.6g} per device-day; one more window "
                f"(rho={self.plan.charge_per_window:.6g}) would exceed the budget {self.plan.rho_per_day:g}"
            )
