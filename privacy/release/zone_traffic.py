"""The budget plan's ``traffic.<set>`` products: moving devices per speed bin and zone, one keyed
draw per zone set and window (issue #12: road corridors measured directly).

A zone set's exact matrix holds, per zone and speed bin, the sum of the window's exact base-cell
speed bins (``speed_bins`` of the partials, laid on the area by
:func:`privacy.release.traffic.exact_bins`) over the zone's cells
(:func:`privacy.release.zones.zone_totals`). The zones measured are the ones the window's plan
record names, chosen by the one disjointness rule of
:func:`privacy.release.zones.select_disjoint`. A device-window has one speed, hence one bin, in
each of its ≤ L base cells, and the zones are disjoint, so one device moves the matrix by ≤ L in
one entry (or by 1 in up to L entries): the draw is the plan's ``traffic.<set>`` draw with bound L
over one entry (:mod:`privacy.release.window_draws`), σ = L / √(2 ρ_share,window) per
(zone, bin), whatever the zone's size. Its keystream is ``keys.key("traffic.<set>", base)``.

A window whose partials predate the speed bins draws no zone bins either and is not charged for
them (``PlanRecord.traffic_drawn``, as :mod:`privacy.release.traffic`). Rows go to
``release_zone_traffic`` (migration 0017). Pure: no store access.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from hexpulse.zones import Zone
from privacy.release.budget import ReleasePlan
from privacy.release.ledger import Family, fingerprint
from privacy.release.mechanisms import add_noise
from privacy.release.seeds import DrawKeys
from privacy.release.shares import TRAFFIC_PREFIX
from privacy.release.zones import zone_totals

ZONE_TRAFFIC_COLUMNS = (
    "window_start, zone_set, zone_id, version, bins_est, bins_sigma, moving_est, mids_kmh, cells, plan"
)


@dataclass(frozen=True)
class ZoneBins:
    """One zone set's released speed bins in one window: its zones, the noisy (zones × bins)
    matrix (moving devices), σ of one entry (devices) and each bin's representative speed (km/h)."""

    zone_set: str
    zones: tuple[Zone, ...]
    noisy: npt.NDArray[np.int64]
    sigma: float
    mids_kmh: tuple[float, ...]

    @property
    def family(self) -> str:
        return TRAFFIC_PREFIX + self.zone_set


def measure_zone_traffic(
    plan: ReleasePlan, zones: Sequence[Zone], base: npt.NDArray[np.uint64], base_bins: npt.NDArray[np.int64],
    keys: DrawKeys,
) -> list[ZoneBins]:  # fmt: skip
    """The deployed path: per zone set the plan funds with ``traffic.<set>`` and that has zones,
    the exact (zones × bins) sums of ``base_bins`` (base cells × bins, aligned with ``base``) and
    one keyed draw. ``zones`` are the window's measured zones (already selected disjoint), sorted
    by (set, zone_id); zones of other sets are ignored."""
    out: list[ZoneBins] = []
    for zone_set in sorted({z.zone_set for z in zones}):
        draw = plan.zone_traffic_draw(zone_set)
        if draw is None:
            continue  # the set is measured for its devices only
        members = tuple(z for z in zones if z.zone_set == zone_set)
        exact = zone_totals(members, base, base_bins)
        flat = add_noise(exact.ravel(), draw.params, keys.key(draw.metric, plan.base_resolution))
        out.append(ZoneBins(zone_set, members, flat.reshape(exact.shape), draw.params.sigma,
                            plan.traffic_mids_kmh))  # fmt: skip
    return out


def zone_traffic_prints(values: Sequence[ZoneBins], base_resolution: int) -> dict[Family, int]:
    """The ledger fingerprint of every drawn set (family (base resolution, ``traffic.<set>``)),
    zones-major order."""
    return {(base_resolution, v.family): fingerprint(v.noisy.ravel()) for v in values}


def zone_traffic_rows(
    window_start: datetime, values: Sequence[ZoneBins], *, plan: int
) -> list[tuple[object, ...]]:
    """``release_zone_traffic`` rows, one per zone: the unbiased bin estimates (the noisy integers,
    may be < 0; never clipped, so sums over zones and windows stay unbiased), σ of one bin
    (devices), their sum (moving devices, σ·√bins), each bin's representative speed (km/h), the
    zone version's base cells and the plan hash."""
    rows: list[tuple[object, ...]] = []
    for v in values:
        mids = list(v.mids_kmh)
        for z, row in zip(v.zones, v.noisy.tolist(), strict=True):
            rows.append((window_start, v.zone_set, z.zone_id, z.version, [float(b) for b in row], v.sigma,
                         float(sum(row)), mids, len(z.cells), plan))  # fmt: skip
    return rows
