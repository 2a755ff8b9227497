"""The releaser: every complete window → noise once → release tables + budget ledger.

A window is *complete* when every partition 0..P−1 of the pings topic has a ``progress`` row
with ``horizon`` > window start (a partition with no row blocks). For each complete window not
yet in ``release_windows``, in time order: read its exact partials (``FINAL``), sum partitions per
base cell, lay them on the public partitions (every cell of the service area, zeros included),
noise each (metric, measured resolution) vector once with OpenDP, reconcile the resolutions
(:mod:`privacy.release.consistency`), then write ``release_cells``, then ``budget_ledger``, then the
``release_windows`` row that makes the window public.

Crash safety: the cells of a window are one INSERT (one part, atomic). If a run dies after it
and before the window row, the next run *publishes those same rows* rather than drawing again;
only if they do not match the current configuration are they deleted and drawn anew.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
from clickhouse_driver import Client

from hexpulse.logs import log_event
from hexpulse.service_area import ServiceArea, load_service_area
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.errors import DRIVER_FAILURES, store_failure
from hexpulse.store.tables import RELEASE_CELL_COLUMNS, RELEASE_WINDOW_COLUMNS, column_list
from hexpulse.times import naive_utc
from privacy.release.budget import ReleasePlan, fits_day, plan_from_settings, speed_bound_kmh
from privacy.release.consistency import Estimate, Hierarchy, build_hierarchy, reconcile, sum_by
from privacy.release.exceptions import BudgetError, ReleaseError
from privacy.release.ledger import ledger_rows, spent_on, write_ledger
from privacy.release.mechanisms import Z95, IntVector, add_noise

log = logging.getLogger("hexpulse.privacy.releaser")

_CELL_COLUMNS = column_list(RELEASE_CELL_COLUMNS)
#: Mean speed is published only where the released moving count is at least this many of its
#: own standard deviations (so its relative error is ≤ 1/3 at one σ); otherwise it is null.
SPEED_MIN_MOVING_SIGMAS = 3.0


@dataclass(frozen=True)
class WindowValues:
    """Released estimates of one window per metric (only the released metrics are present)."""

    metrics: dict[str, Estimate]


def exact_totals(
    base: npt.NDArray[np.uint64], rows: Sequence[tuple[int, int, int, int]]
) -> tuple[dict[str, IntVector], int]:
    """A window's exact totals per metric in the order of ``base`` (zeros for quiet cells).

    ``rows`` are partials ``(cell, devices, moving, speed_sum)`` in any order; a cell may appear
    once per Kafka partition and its rows are summed. Also returns how many rows name a cell
    outside ``base`` (they are left out).
    """
    n = base.size
    out = {m: np.zeros(n, dtype=np.int64) for m in ("count", "moving", "speed")}
    if not rows:
        return out, 0
    cells = np.array([r[0] for r in rows], dtype=np.uint64)
    idx = np.minimum(np.searchsorted(base, cells), n - 1)
    inside = base[idx] == cells
    for col, metric in enumerate(("count", "moving", "speed"), start=1):
        vals = np.array([r[col] for r in rows], dtype=np.int64)
        np.add.at(out[metric], idx[inside], vals[inside])
    return out, int((~inside).sum())


def release_values(plan: ReleasePlan, tree: Hierarchy, exact: dict[str, IntVector]) -> WindowValues:
    """The deployed noise path for one window: exact base-cell vectors → noisy, reconciled values.

    ``exact[metric]`` holds the window's exact (already bounded) integer totals per base cell, in
    the order of ``tree.cells[0]``. Each measured (metric, resolution) vector is noised once.
    """
    out: dict[str, Estimate] = {}
    for metric in plan.metrics:
        levels = [exact[metric].astype(np.int64)]
        for k in range(1, len(tree.resolutions)):
            levels.append(sum_by(tree.parent[k - 1], levels[-1], tree.sizes[k]).astype(np.int64))
        measured: dict[int, tuple[IntVector, float]] = {}
        for res, draw in plan.measured(metric).items():
            k = tree.resolutions.index(res)
            measured[k] = (add_noise(levels[k], draw.params), draw.params.sigma**2)
        out[metric] = reconcile(tree, measured)
    return WindowValues(out)


def interval(
    value: npt.NDArray[np.int64], unconstrained: npt.NDArray[np.float64], sigma: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """95% interval per cell: the unconstrained least-squares estimate ± 1.96σ, cut at 0 and widened
    to contain the released value. Before the cut it covers the truth with probability 95% (the
    estimate is unbiased and Gaussian-like); the cut at 0 never removes a truth (counts are ≥ 0)."""
    lo = np.minimum(np.maximum(unconstrained - Z95 * sigma, 0.0), value)
    hi = np.maximum(unconstrained + Z95 * sigma, value)
    return lo, hi


def cell_rows(
    window_start: datetime, tree: Hierarchy, values: WindowValues, speed_cap_kmh: int
) -> list[tuple[object, ...]]:
    """``release_cells`` rows: counts with σ and 95% interval, mean speed (km/h) or null."""
    nan = float("nan")
    rows: list[tuple[object, ...]] = []
    count, moving, speed = (values.metrics.get(m) for m in ("count", "moving", "speed"))
    if count is None:
        raise ReleaseError("the release plan has no counts")  # plan_from_settings refuses that
    for k, res in enumerate(tree.resolutions):
        c, cs = count.values[k], count.sigma[k]
        c_lo, c_hi = interval(c, count.unconstrained[k], cs)
        if moving is not None:
            m_lo, m_hi = interval(moving.values[k], moving.unconstrained[k], moving.sigma[k])
        for i, cell in enumerate(tree.cells[k].tolist()):
            row: list[object] = [
                window_start,
                res,
                cell,
                int(c[i]),
                float(cs[i]),
                float(c_lo[i]),
                float(c_hi[i]),
            ]
            if moving is None:
                row += [0, nan, nan, nan]
            else:
                row += [int(moving.values[k][i]), float(moving.sigma[k][i]), float(m_lo[i]), float(m_hi[i])]
            row += list(_mean_speed(speed, moving, k, i, speed_cap_kmh))
            rows.append(tuple(row))
    return rows


def _mean_speed(
    speed: Estimate | None, moving: Estimate | None, k: int, i: int, cap: int
) -> tuple[float | None, float | None, float | None]:
    if speed is None or moving is None:
        return None, None, None
    m, s_m = float(moving.values[k][i]), float(moving.sigma[k][i])
    if m <= 0 or m < SPEED_MIN_MOVING_SIGMAS * s_m:
        return None, None, None
    total, s_t = float(speed.values[k][i]), float(speed.sigma[k][i])
    mean = min(total / m, float(cap))
    # Delta method for a ratio of independent noisy totals.
    sd = math.sqrt(s_t**2 + (mean * s_m) ** 2) / m
    return mean, max(0.0, mean - Z95 * sd), min(float(cap), mean + Z95 * sd)


class Releaser:
    """Releases complete windows of one deployment; see the module docstring for the protocol."""

    def __init__(self, settings: Settings, *, area: ServiceArea | None = None, client: Client | None = None):
        self.settings = settings
        self.plan = plan_from_settings(settings)
        self.area = area or load_service_area(settings)
        self.tree = build_hierarchy(self.area, self.plan.resolutions)
        self.db = settings.clickhouse_database
        self.exact = settings.exact_database  # partials and progress: the pipeline user's only
        self.client = client or connect(settings)
        self.window_s = settings.window_s

    # -- reading ---------------------------------------------------------------------------

    def complete_before(self) -> int | None:
        """Epoch s: every window starting before it is complete (None while a partition is silent).

        A progress row's claim stays true forever, so the largest horizon of each partition counts.
        """
        rows = self.client.execute(
            f"SELECT partition, toUInt32(max(horizon)) FROM {self.exact}.progress FINAL "
            "WHERE topic = %(topic)s GROUP BY partition",
            {"topic": self.settings.topic_pings},
        )
        horizons = {int(p): int(h) for p, h in rows}
        parts = range(self.settings.topic_partitions)
        if any(p not in horizons for p in parts):
            return None
        return min(horizons[p] for p in parts)

    def pending_windows(self) -> list[int]:
        """Window starts (epoch s) that are complete and not yet public, oldest first."""
        horizon = self.complete_before()
        if horizon is None:
            return []
        ((last, n_released),) = self.client.execute(
            "SELECT toUInt32(max(window_start)), count() FROM release_windows FINAL"
        )
        if n_released:
            start = int(last) + self.window_s
        else:
            ((first, n_partials),) = self.client.execute(
                f"SELECT toUInt32(min(window_start)), count() FROM {self.exact}.partials "
                "WHERE window_start < %(h)s",
                {"h": naive_utc(horizon)},
            )
            if not n_partials:
                return []
            start = int(first)
        return list(range(start, horizon, self.window_s))

    def read_exact(self, w: int) -> dict[str, IntVector]:
        """The window's exact totals per base cell of the area (zeros for quiet cells)."""
        rows = self.client.execute(
            f"SELECT cell, sum(devices), sum(moving), sum(speed_sum) FROM {self.exact}.partials FINAL "
            "WHERE window_start = %(w)s GROUP BY cell",
            {"w": naive_utc(w)},
        )
        out, outside = exact_totals(self.tree.cells[0], rows)
        if outside:
            log_event(log, "partials outside the service area ignored", logging.WARNING,
                      window_start=w, cells=outside)  # fmt: skip
        return out

    def _completed_at(self, w: int) -> int:
        rows = self.client.execute(
            f"SELECT partition, toUInt32(min(written_at)) FROM {self.exact}.progress FINAL "
            "WHERE topic = %(topic)s AND horizon > %(w)s GROUP BY partition",
            {"topic": self.settings.topic_pings, "w": naive_utc(w)},
        )
        return max((int(t) for _, t in rows), default=w)

    # -- writing ---------------------------------------------------------------------------

    def _unpublished_rows(self, w: int) -> int:
        ((n,),) = self.client.execute(
            "SELECT count() FROM release_cells FINAL WHERE window_start = %(w)s", {"w": naive_utc(w)}
        )
        return int(n)

    def _drop_unpublished(self, w: int) -> None:
        # The only path that draws a window twice: the old draw was never public through the API,
        # but a reader of release_cells may have seen it (PRIVACY.md §5-6).
        log_event(log, "unpublished release does not match the configuration; drawing again",
                  logging.WARNING, window_start=w)  # fmt: skip
        self.client.execute(
            "ALTER TABLE release_cells DELETE WHERE window_start = %(w)s", {"w": naive_utc(w)}
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ((pending,),) = self.client.execute(
                "SELECT count() FROM system.mutations WHERE database = %(db)s AND table = 'release_cells' "
                "AND is_done = 0",
                {"db": self.db},
            )
            if not pending:
                return
            time.sleep(0.2)
        raise ReleaseError(f"could not clear the unpublished release of window {naive_utc(w)} within 60 s")

    def release_window(self, w: int) -> bool:
        """Release window ``w`` (epoch s); return False if it was already public."""
        start = naive_utc(w)
        ((public,),) = self.client.execute(
            "SELECT count() FROM release_windows FINAL WHERE window_start = %(w)s", {"w": start}
        )
        if public:
            return False
        # This window's own ledger rows (from a run that died before publishing) are rewritten
        # under the same keys below, so they do not count twice.
        spent = spent_on(self.client, start.date(), excluding=start)
        expected = sum(self.tree.sizes)
        existing = self._unpublished_rows(w)
        if existing == expected:
            # A previous run drew and stored this window but died before publishing it: publish
            # those draws instead of drawing again.
            drawn = False
        else:
            if existing:
                self._drop_unpublished(w)
            drawn = True
        if not fits_day(spent, self.plan):
            raise BudgetError(
                f"releasing window {start:%Y-%m-%d %H:%M} would exceed the daily budget "
                f"rho={self.plan.rho_per_day:g} (already spent {spent:.6g}); refusing to release it"
            )
        if drawn:
            values = release_values(self.plan, self.tree, self.read_exact(w))
            rows = cell_rows(start, self.tree, values, speed_bound_kmh(self.settings.speed_clamp_mps))
            self.client.execute(f"INSERT INTO release_cells ({_CELL_COLUMNS}) VALUES", rows)
        now = time.time()
        write_ledger(self.client, ledger_rows(self.plan, start, naive_utc(int(now))))
        lag = max(0.0, now - self._completed_at(w))
        self.client.execute(
            f"INSERT INTO release_windows ({column_list(RELEASE_WINDOW_COLUMNS)}) VALUES",
            [(start, naive_utc(w + self.window_s), naive_utc(int(now)), lag, self.plan.charge_per_window,
              self.plan.mechanism, self.tree.sizes[0])],
        )  # fmt: skip
        log_event(log, "window released", window_start=w, drawn=drawn, lag_s=round(lag, 3),
                  cells=expected, rho=self.plan.charge_per_window)  # fmt: skip
        return True

    def run_once(self) -> int:
        """Release every pending window; return how many were published."""
        try:
            return sum(self.release_window(w) for w in self.pending_windows())
        except DRIVER_FAILURES as exc:
            raise store_failure(
                exc, "a release statement", unavailable=ReleaseError, rejected=ReleaseError
            ) from None

    def check_budget_today(self) -> None:
        """Refuse to start if today's ledger leaves no room for one more window."""
        today = datetime.now(UTC).date()
        spent = spent_on(self.client, today)
        if not fits_day(spent, self.plan):
            raise BudgetError(
                f"today's ledger already holds rho={spent:.6g} per device-day; one more window "
                f"(rho={self.plan.charge_per_window:.6g}) would exceed the budget {self.plan.rho_per_day:g}"
            )
