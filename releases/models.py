"""One released window and one released cell, as every reader of the release tables sees them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hexpulse.times import utc


@dataclass(frozen=True)
class Window:
    """One released window (a ``release_windows`` row); times are UTC, ``lag_s`` seconds from
    the window being complete to its release, ``rho`` zCDP charged per device-day."""

    start: datetime
    end: datetime
    released_at: datetime
    lag_s: float
    rho: float
    mechanism: str
    base_cells: int

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Window:
        """From the columns of ``hexpulse.store.tables.RELEASE_WINDOW_COLUMNS``, in that order."""
        return cls(utc(row[0]), utc(row[1]), utc(row[2]), float(row[3]), float(row[4]), row[5], int(row[6]))


@dataclass(slots=True)
class WindowSum:
    """Σ of the unbiased estimates (persons) of a selection of cells in one released window.

    ``plan`` is the hash of the release plan the cells were drawn under (0 for rows released before
    plans were recorded) and ``one_plan`` whether every selected row names that plan; the variance
    of the sum follows from the plan (privacy.release.covariance). ``independent_var`` is Σ σ²
    (persons²), right only where the cells' errors are independent.
    """

    window: Window
    estimate: float
    independent_var: float
    released: dict[int, int]  # cells released per resolution
    plan: int
    one_plan: bool


@dataclass(frozen=True, slots=True)
class CellRow:
    """Released values of one cell: counts are persons (noisy, clipped to ≥ 0 for display), speeds
    km/h; ``count_est``/``moving_est`` are the unbiased estimates (persons, may be < 0) whose standard
    error is ``count_sigma``/``moving_sigma``: sums add these, never the clipped counts."""

    count: int
    count_sigma: float
    count_lo: float
    count_hi: float
    moving: int
    moving_sigma: float
    moving_lo: float
    moving_hi: float
    speed_kmh: float | None
    speed_lo_kmh: float | None
    speed_hi_kmh: float | None
    count_est: float
    moving_est: float
