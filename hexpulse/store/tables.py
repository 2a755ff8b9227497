"""Column lists of the release tables that more than one stage names (schema: migrations/0002).

Table naming, one convention: statements name tables bare (``release_cells``) on a connection
that :func:`hexpulse.store.connect` binds to the deployment's public database. The exact database
(``Settings.exact_database``, the pipeline user's only) is the one exception: no connection is
bound to it, and its tables are always named with it (``f"{exact}.partials"``), so a bare
``partials`` finds nothing on any connection. The migrations, which create both databases,
qualify every name (``{db}.release_cells``, ``{exact}.partials``); queries of ``system.*`` tables
pass the database name as a parameter.
"""

from __future__ import annotations

RELEASE_CELL_VALUES = (
    "count",
    "count_sigma",
    "count_lo",
    "count_hi",
    "moving",
    "moving_sigma",
    "moving_lo",
    "moving_hi",
    "speed_kmh",
    "speed_lo_kmh",
    "speed_hi_kmh",
    "count_est",
    "moving_est",
)
"""Released values of one (window, res, cell): counts are persons, speeds km/h, σ and 95% bounds;
``count_est``/``moving_est`` are the unbiased estimates (migration 0009) that sums must use."""
RELEASE_CELL_COLUMNS = ("window_start", "res", "cell", *RELEASE_CELL_VALUES)
"""Every column of ``release_cells``, in the order the releaser writes them."""
RELEASE_WINDOW_COLUMNS = (
    "window_start",
    "window_end",
    "released_at",
    "lag_s",
    "rho",
    "mechanism",
    "base_cells",
)
"""Every column of ``release_windows``: a window is public once its row exists."""


def column_list(columns: tuple[str, ...]) -> str:
    """``columns`` as SQL: ``a, b, c``."""
    return ", ".join(columns)
