"""The ``traffic.<set>`` draw (privacy/release/zone_traffic.py): exact sums of the zones' base-cell
bins, one keyed draw per set with the plan's σ, fingerprints and ``release_zone_traffic`` rows."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from hexpulse.settings import load_settings
from hexpulse.zones import OPEN_END, Zone
from privacy.release.budget import ReleasePlan, plan_from_settings
from privacy.release.ledger import fingerprint
from privacy.release.seeds import seeded_keys
from privacy.release.zone_traffic import measure_zone_traffic, zone_traffic_prints, zone_traffic_rows
from privacy.release.zones import select_disjoint, zone_totals

PLAN = ("cells:0.45", "traffic:0.10", "traffic.corridor:0.15", "zones.crowd:0.20", "zones.district:0.05")
T = datetime(2020, 1, 1, tzinfo=UTC)
BASE = np.array([10, 20, 30, 40, 50], dtype=np.uint64)
BINS = np.array([[1, 0, 2, 0], [0, 3, 0, 1], [5, 5, 0, 0], [0, 0, 0, 7], [2, 2, 2, 2]], dtype=np.int64)


def plan(budget: tuple[str, ...] = PLAN) -> ReleasePlan:
    return plan_from_settings(load_settings(budget_plan=budget, release_metrics=("count",)))


def zone(zone_id: str, zone_set: str, cells: tuple[int, ...], minute: int = 0) -> Zone:
    return Zone(zone_id, 1, zone_set, zone_id, "{}", cells, T.replace(minute=minute), OPEN_END)


def test_zone_totals_sum_vectors_and_matrices_alike() -> None:
    zones = [zone("a", "corridor", (10, 30)), zone("b", "corridor", (20, 99))]  # 99: outside the area
    assert zone_totals(zones, BASE, BINS).tolist() == [[6, 5, 2, 0], [0, 3, 0, 1]]
    assert zone_totals(zones, BASE, BINS[:, 0]).tolist() == [6, 0]  # the zone draw's vector form
    assert zone_totals([], BASE, BINS).shape == (0, 4)


def test_a_set_funded_by_its_traffic_alone_is_selected_disjoint() -> None:
    """The zone draw's one selection rule: corridors are kept although ``zones.corridor`` is not
    funded; of two overlapping corridors only the first is measured."""
    first, second = zone("c1", "corridor", (10, 20)), zone("c2", "corridor", (20, 30), minute=1)
    kept, dropped = select_disjoint([second, first, zone("s", "scenic", (40,))], plan())
    assert [z.zone_id for z in kept] == ["c1"] and {z.zone_id for z in dropped} == {"c2", "s"}


def test_measure_noises_each_set_once_with_its_keys() -> None:
    p = plan()
    zones = [zone("a", "corridor", (10, 30)), zone("b", "corridor", (20, 40)), zone("p", "crowd", (50,))]
    a = measure_zone_traffic(p, zones, BASE, BINS, seeded_keys(3))
    b = measure_zone_traffic(p, zones, BASE, BINS, seeded_keys(3))
    (v,) = a  # crowd is funded for its devices only
    d = p.zone_traffic_draw("corridor")
    assert d is not None and v.zone_set == "corridor" and v.family == "traffic.corridor"
    assert [z.zone_id for z in v.zones] == ["a", "b"] and v.noisy.shape == (2, 4)
    assert v.sigma == d.params.sigma and v.mids_kmh == p.traffic_mids_kmh
    assert np.array_equal(v.noisy, b[0].noisy)  # same keys, same draw
    other = measure_zone_traffic(p, zones, BASE, BINS, seeded_keys(4))[0]
    assert not np.array_equal(v.noisy, other.noisy)
    assert zone_traffic_prints(a, 9) == {(9, "traffic.corridor"): fingerprint(v.noisy.ravel())}
    devices_only = plan(("cells:0.8", "zones.corridor:0.2"))
    assert measure_zone_traffic(devices_only, zones, BASE, BINS, seeded_keys(3)) == []


def test_noise_is_centred_with_the_plans_sigma() -> None:
    """Fixed seeds: 200 draws of 52 corridors × 4 bins (41,600 values). The sample σ has a relative
    standard error of 1/√(2n) ≈ 0.35 %, the mean of σ/√n ≈ 0.005σ: the bounds (3 %, 0.03σ) are
    about 9 and 6 standard errors, so a correct sampler essentially never fails them."""
    p = plan()
    base = np.arange(1, 53, dtype=np.uint64)
    zones = [zone(f"c{i:02d}", "corridor", (int(c),)) for i, c in enumerate(base)]
    bins = np.full((52, 4), 100, dtype=np.int64)
    draws = [measure_zone_traffic(p, zones, base, bins, seeded_keys(s))[0].noisy for s in range(200)]
    noise = np.concatenate([(d - 100).ravel() for d in draws])
    d = p.zone_traffic_draw("corridor")
    assert d is not None
    assert float(noise.std()) == pytest.approx(d.params.sigma, rel=0.03)
    assert abs(float(noise.mean())) < 0.03 * d.params.sigma


def test_rows_hold_unclipped_estimates() -> None:
    p = plan()
    zones = [zone("a", "corridor", (10, 30)), zone("b", "corridor", (20,))]
    (v,) = measure_zone_traffic(p, zones, BASE, BINS, seeded_keys(9))
    w = datetime(2026, 1, 1, 8, 0)
    rows = zone_traffic_rows(w, [v], plan=77)
    assert [r[:4] for r in rows] == [(w, "corridor", "a", 1), (w, "corridor", "b", 1)]
    for r, noisy, z in zip(rows, v.noisy.tolist(), zones, strict=True):
        assert r[4] == [float(x) for x in noisy] and r[5] == v.sigma and r[6] == float(sum(noisy))
        assert r[7] == list(p.traffic_mids_kmh) and r[8] == len(z.cells) and r[9] == 77
    # Quiet corridors: the noisy bins around 0 keep their sign (fixed seed; never clipped).
    (quiet,) = measure_zone_traffic(p, zones, BASE, np.zeros_like(BINS), seeded_keys(9))
    assert min(x for r in zone_traffic_rows(w, [quiet], plan=77) for x in r[4]) < 0
