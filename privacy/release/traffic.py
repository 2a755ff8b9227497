"""The budget plan's ``traffic`` product: moving devices per speed bin and cell, one keyed draw per window.

A device-window has one speed, so one bin, in each of its ≤ L base cells (``aggregate/bounding.py``);
the releaser lays the moving rows that the per-device-day bound keeps on the area's base cells
(:mod:`privacy.release.traffic_bound`); :func:`measure_traffic` sums them to the plan's traffic
resolution and noises the (cells × bins) matrix once, from the keystream of
``keys.key("traffic", res)``; :func:`traffic_rows` writes ``release_traffic`` rows (migration
0014). Every cell of the area at that resolution is released, zeros included (the public
partition), so a row's presence says nothing.

Windows whose partials predate 0011 hold an empty ``speed_bins`` array: read as zeros they would
publish "no traffic" where traffic was never measured, so such a window draws no bins and is not
charged for them (:func:`has_bins`, ``PlanRecord.traffic_drawn``); so does a window whose partials
predate the moving rows (migration 0019, :func:`has_moving_rows`). Pure: no store access.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from hexpulse.service_area import ServiceArea
from privacy.release.budget import ReleasePlan
from privacy.release.consistency import Hierarchy, build_hierarchy
from privacy.release.ledger import fingerprint
from privacy.release.mechanisms import add_noise
from privacy.release.seeds import DrawKeys
from privacy.release.shares import TRAFFIC

TRAFFIC_COLUMNS = "window_start, res, cell, bins_est, bins_sigma, moving_est, mids_kmh, plan"

#: Per (partition, closing) of the window: rows with bins and rows without (pre-0011).
BINS_STATE_SQL = (
    "SELECT countIf(notEmpty(speed_bins)), countIf(empty(speed_bins)) FROM {exact}.partials FINAL "
    "WHERE window_start = %(w)s AND (partition, closing) IN %(pairs)s"
)
#: Σ moving of the window's counted partials, and its counted ``traffic_moving`` rows (migration 0019).
MOVING_STATE_SQL = (
    "SELECT (SELECT sum(moving) FROM {exact}.partials FINAL WHERE window_start = %(w)s "
    "AND (partition, closing) IN %(pairs)s), (SELECT count() FROM {exact}.traffic_moving FINAL "
    "WHERE window_start = %(w)s AND (partition, closing) IN %(pairs)s)"
)


def has_bins(with_bins: int, without_bins: int) -> bool:
    """Whether a window's counted partials can be read as speed bins: none of them predates
    migration 0011 (a window with no partials at all has all-zero bins, which is true)."""
    return without_bins == 0 or (with_bins == 0 and without_bins == 0)


def has_moving_rows(moving: int, rows: int) -> bool:
    """Whether the window's counted ``traffic_moving`` rows are its moving contributions (one per
    moving device-window and cell, so as many as Σ ``moving`` of the partials). Partials written
    before migration 0019 have none: their speed bins cannot be bounded per device-day
    (privacy/release/traffic_bound.py), so such a window draws no bins, like one before 0011."""
    return moving == rows


@dataclass(frozen=True)
class TrafficValues:
    """One window's released speed bins: cells at ``res``, noisy (cells × bins), σ of one entry."""

    res: int
    cells: npt.NDArray[np.uint64]
    noisy: npt.NDArray[np.int64]
    sigma: float
    mids_kmh: tuple[float, ...]

    def prints(self) -> dict[tuple[int, str], int]:
        """The ledger fingerprint of the draw (family (res, ``traffic``)), cells-major order."""
        return {(self.res, TRAFFIC): fingerprint(self.noisy.ravel())}


def bins_tree(area: ServiceArea, res: int) -> Hierarchy:
    """The area's base cells and their cells at the traffic resolution ``res`` (≤ the base), built
    apart from the released density resolutions: the traffic draw does not need ``res`` released."""
    return build_hierarchy(area, (area.base_resolution, res))


def to_resolution(tree: Hierarchy, base_bins: npt.NDArray[np.int64], res: int) -> npt.NDArray[np.int64]:
    """Sum (base cells × bins) up the tree to resolution ``res`` (one of ``tree.resolutions``)."""
    k = tree.resolutions.index(res)
    level = base_bins
    for j in range(k):
        up = np.zeros((tree.sizes[j + 1], level.shape[1]), dtype=np.int64)
        np.add.at(up, tree.parent[j], level)
        level = up
    return level


def measure_traffic(
    plan: ReleasePlan, tree: Hierarchy, base_bins: npt.NDArray[np.int64], keys: DrawKeys
) -> TrafficValues:
    """The deployed speed-bin path: exact base-cell bins → one keyed draw at the traffic resolution
    (``tree`` holds it, e.g. :func:`bins_tree`). ValueError if the plan does not fund traffic."""
    draw = plan.traffic_draw
    if draw is None:
        raise ValueError("the plan gives 'traffic' no budget")
    exact = to_resolution(tree, base_bins, draw.res)
    flat = add_noise(exact.ravel(), draw.params, keys.key(TRAFFIC, draw.res))
    k = tree.resolutions.index(draw.res)
    return TrafficValues(draw.res, tree.cells[k], flat.reshape(exact.shape), draw.params.sigma,
                         plan.traffic_mids_kmh)  # fmt: skip


def traffic_rows(window_start: datetime, values: TrafficValues, *, plan: int) -> list[tuple[object, ...]]:
    """``release_traffic`` rows, one per cell: the unbiased bin estimates (the noisy integers, may
    be < 0; never clipped, so sums over cells and windows stay unbiased), σ of one bin (devices),
    their sum (moving devices, σ·√bins), each bin's representative speed (km/h) and the plan hash."""
    mids = list(values.mids_kmh)
    return [
        (window_start, values.res, int(cell), [float(b) for b in row], values.sigma, float(sum(row)),
         mids, plan)
        for cell, row in zip(values.cells.tolist(), values.noisy.tolist(), strict=True)
    ]
