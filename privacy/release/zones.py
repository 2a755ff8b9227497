"""Registered zones measured directly: one keyed draw per zone set and window.

A zone set's exact vector holds, per zone, the sum of the window's exact base-cell counts over the
zone's cells. The partials are already bounded to L (``cells_per_window``) base cells per device,
and the zones of one set are disjoint at the base resolution, so one device moves the vector by at
most L in one entry (all its cells in one zone) or by 1 in each of up to L entries: L2 distance at
most L (and L1 at most L). The set's draw is therefore the plan's ``zones.<set>`` draw with
bound L over one entry (:func:`privacy.release.budget.plan_from_settings`), and the released
estimate of a zone has standard error σ = L / √(2 ρ_set,window) whatever the zone's size.

Disjointness is checked here as well as at registration (two concurrent registrations could both
pass the API's check): of zones of one set sharing a base cell, only the first by (valid_from,
zone_id) is measured and the others are left out, a rule every releaser applies alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt
from clickhouse_driver import Client

from hexpulse.zones import Zone, zone_versions, zones_in_effect
from privacy.release.budget import ReleasePlan
from privacy.release.exceptions import PlanConflictError
from privacy.release.ledger import fingerprint
from privacy.release.mechanisms import Z95, IntVector, add_noise
from privacy.release.plans import PlanRecord
from privacy.release.seeds import DrawKeys
from privacy.release.shares import ZONES_PREFIX

ZONE_COLUMNS = (
    "window_start, zone_set, zone_id, version, count, count_est, count_sigma, count_lo, count_hi, cells, plan"
)


def select_disjoint(zones: Sequence[Zone], plan: ReleasePlan) -> tuple[list[Zone], list[Zone]]:
    """(measured, left out): zones of sets the plan budgets (``zones.<set>`` or ``traffic.<set>``),
    at most one zone per base cell and set, sorted by (set, zone_id). A zone of an unbudgeted set,
    or one sharing a cell with an earlier zone of its set, is left out."""
    kept: list[Zone] = []
    dropped: list[Zone] = []
    taken: dict[str, set[int]] = {}
    for z in sorted(zones, key=lambda z: (z.zone_set, z.valid_from, z.zone_id, z.version)):
        used = taken.setdefault(z.zone_set, set())
        if not plan.measures_set(z.zone_set) or used.intersection(z.cells):
            dropped.append(z)
            continue
        used.update(z.cells)
        kept.append(z)
    kept.sort(key=lambda z: (z.zone_set, z.zone_id))
    return kept, dropped


def zones_in_effect_at(client: Client, start: datetime, plan: ReleasePlan) -> tuple[list[Zone], list[Zone]]:
    """(measured, left out) of the zones in effect at window start ``start`` (naive UTC) under ``plan``
    (:func:`select_disjoint`); ``client`` is bound to the public database."""
    rows = client.execute(*zones_in_effect(start.replace(tzinfo=UTC)))
    return select_disjoint([Zone.from_row(r) for r in rows], plan)


def zones_of_record(client: Client, record: PlanRecord, start: datetime) -> list[Zone]:
    """The zone versions a stored plan record names, checked against its cells digests;
    PlanConflictError (the window waits) if the zones table no longer holds one as it was."""
    rows = client.execute(*zone_versions([(z.zone_id, z.version) for z in record.zones]))
    found = {(z.zone_id, z.version): z for z in (Zone.from_row(r) for r in rows)}
    zones: list[Zone] = []
    for ref in record.zones:
        zone = found.get((ref.zone_id, ref.version))
        if zone is None or zone.ref != ref:
            raise PlanConflictError(
                f"window {start:%Y-%m-%d %H:%M} was begun measuring zone {ref.zone_id} v{ref.version}, "
                "which the zones table no longer holds as it was; it cannot be finished"
            )
        zones.append(zone)
    return zones


def zone_totals(
    zones: Sequence[Zone], base: npt.NDArray[np.uint64], exact: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Exact totals per zone (in ``zones`` order): sums of ``exact`` (rows aligned with ``base``, the
    sorted base cells of the area; a vector, or a matrix such as cells × speed bins) over each
    zone's cells; cells outside ``base`` add nothing."""
    out = np.zeros((len(zones), *exact.shape[1:]), dtype=np.int64)
    n = base.size
    for i, z in enumerate(zones):
        cells = np.array(z.cells, dtype=np.uint64)
        idx = np.minimum(np.searchsorted(base, cells), n - 1)
        inside = base[idx] == cells
        out[i] = exact[idx[inside]].sum(axis=0)
    return out


@dataclass(frozen=True)
class SetValues:
    """One zone set's release in one window: the zones, their noisy totals and the noise σ."""

    zone_set: str
    zones: tuple[Zone, ...]
    noisy: IntVector
    sigma: float

    @property
    def family(self) -> str:
        return ZONES_PREFIX + self.zone_set


def measure_zones(
    plan: ReleasePlan, zones: Sequence[Zone], base: npt.NDArray[np.uint64], exact_count: IntVector,
    keys: DrawKeys,
) -> list[SetValues]:  # fmt: skip
    """The deployed zone path: per set with zones, exact totals + one keyed draw
    (``keys.key("zones.<set>", base_resolution)``). ``zones`` are the ones to measure (already
    :func:`select_disjoint`), sorted by (set, zone_id)."""
    out: list[SetValues] = []
    for zone_set in sorted({z.zone_set for z in zones}):
        draw = plan.zone_draw(zone_set)
        if draw is None:
            continue  # select_disjoint leaves such zones out
        members = tuple(z for z in zones if z.zone_set == zone_set)
        exact = zone_totals(members, base, exact_count)
        noisy = add_noise(exact, draw.params, keys.key(draw.metric, plan.base_resolution))
        out.append(SetValues(zone_set, members, noisy, draw.params.sigma))
    return out


def zone_prints(values: Sequence[SetValues], base_resolution: int) -> dict[tuple[int, str], int]:
    """The ledger fingerprint of every drawn zone set (family (base resolution, ``zones.<set>``))."""
    return {(base_resolution, v.family): fingerprint(v.noisy) for v in values}


def zone_rows(window_start: datetime, values: Sequence[SetValues], *, plan: int) -> list[tuple[object, ...]]:
    """``release_zones`` rows: the clipped display count (≥ 0), the unbiased estimate (the noisy
    total, may be < 0), its σ, the 95% interval (estimate ± 1.96σ, cut at 0: counts are ≥ 0)."""
    rows: list[tuple[object, ...]] = []
    for v in values:
        for z, est in zip(v.zones, v.noisy.tolist(), strict=True):
            lo, hi = max(0.0, est - Z95 * v.sigma), max(0.0, est + Z95 * v.sigma)
            rows.append((window_start, v.zone_set, z.zone_id, z.version, max(0, int(est)), float(est),
                         v.sigma, lo, hi, len(z.cells), plan))  # fmt: skip
    return rows
