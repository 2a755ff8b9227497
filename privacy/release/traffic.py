"""The budget plan's ``traffic`` product: moving devices per speed bin and cell, one keyed draw per window.

The partials hold, per base cell, the moving devices of each speed bin (migration 0011,
``aggregate/bounding.py``: a device-window has one speed, so one bin, in each of its ≤ L base
cells). :func:`exact_bins` lays them on the area's base cells; :func:`measure_traffic` sums them
to the plan's traffic resolution and noises the (cells × bins) matrix once, from the keystream of
``keys.key("traffic", res)``; :func:`traffic_rows` writes ``release_traffic`` rows (migration
0014). Every cell of the area at that resolution is released, zeros included (the public
partition), so a row's presence says nothing.

Windows whose partials predate 0011 hold an empty ``speed_bins`` array: read as zeros they would
publish "no traffic" where traffic was never measured, so such a window draws no bins and is not
charged for them (:func:`has_bins`, ``PlanRecord.traffic_drawn``). Pure: no store access.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from hexpulse.service_area import ServiceArea
from privacy.release.budget import ReleasePlan
from privacy.release.consistency import Hierarchy, build_hierarchy
from privacy.release.exceptions import ReleaseError
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
BINS_SQL = (
    "SELECT cell, sumForEach(speed_bins) FROM {exact}.partials FINAL "
    "WHERE window_start = %(w)s AND (partition, closing) IN %(pairs)s GROUP BY cell ORDER BY cell"
)


def has_bins(with_bins: int, without_bins: int) -> bool:
    """Whether a window's counted partials can be read as speed bins: none of them predates
    migration 0011 (a window with no partials at all has all-zero bins, which is true)."""
    return without_bins == 0 or (with_bins == 0 and without_bins == 0)


def exact_bins(
    base: npt.NDArray[np.uint64], rows: Sequence[tuple[int, Sequence[int]]], bins: int
) -> npt.NDArray[np.int64]:
    """(base cells × ``bins``) exact moving devices per speed bin, in the order of ``base`` (zeros
    for quiet cells); cells outside ``base`` are left out. ReleaseError if a row has another
    number of bins (the partials were written with other edges than the plan's)."""
    out = np.zeros((base.size, bins), dtype=np.int64)
    if not rows:
        return out
    if any(len(r[1]) != bins for r in rows):
        raise ReleaseError(
            f"partials hold speed bins of another length than the plan's {bins}: "
            "HEXPULSE_TRAFFIC_SPEED_EDGES_KMH changed without a new plan"
        )
    cells = np.array([r[0] for r in rows], dtype=np.uint64)
    idx = np.minimum(np.searchsorted(base, cells), base.size - 1)
    inside = base[idx] == cells
    vals = np.array([list(r[1]) for r in rows], dtype=np.int64)
    np.add.at(out, idx[inside], vals[inside])
    return out


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
