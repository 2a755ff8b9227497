"""The neighbour test for registered zones: over the real ingest and aggregate code (the streams and
the consume loop of tests/unit/aggregate/test_neighbour.py), adding or removing one device moves
each zone set's exact vector by at most the bound its draw assumes (L2 ≤ L, the plan's
``zones.<set>`` sensitivity), given zones that are disjoint within their set. Overlapping zones of
one set would break that bound; the releaser's selection leaves the overlap out."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime

import h3
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings
from hexpulse.zones import OPEN_END, Zone
from privacy.release.budget import plan_from_settings
from privacy.release.values import exact_totals
from privacy.release.zones import select_disjoint, zone_totals
from tests.support.ingest import INSIDE
from tests.support.neighbour import Schedule, Sums, Upload, consume, message, ping, place
from tests.unit.aggregate.test_neighbour import (
    PARTITIONS,
    T0,
    adversary,
    honest_devices,
    ingestor_for,
    make_settings,
    schedules,
)

T_FROM = datetime(2020, 1, 1, tzinfo=UTC)


def row_cell(k: int) -> int:
    """The base cell of ``ping(ts, k)`` (a row of cells ~350 m apart)."""
    return int(h3.str_to_int(h3.latlng_to_cell(round(INSIDE[0] + 0.0032 * (k % 7), 6), INSIDE[1], 9)))


def zone(zone_id: str, zone_set: str, ks: list[int], minute: int = 0) -> Zone:
    cells = tuple(sorted({row_cell(k) for k in ks}))
    return Zone(zone_id, 1, zone_set, zone_id, "{}", cells, T_FROM.replace(minute=minute), OPEN_END)


ZONES = [zone("low", "crowd", [0, 1, 2]), zone("high", "crowd", [3, 4, 5]),
         zone("all", "district", list(range(7)))]  # fmt: skip


def set_vectors(s: Settings, sums: Sums, zones: list[Zone]) -> dict[tuple[int, str], np.ndarray]:
    """Per (window, zone set): the exact zone vector the releaser builds from these partials."""
    base = load_service_area(s).cells
    by_window: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
    for (w, cell), (devices, moving, speed) in sums.items():
        by_window[w].append((cell, devices, moving, speed))
    out = {}
    for w, rows in by_window.items():
        exact, _ = exact_totals(base, rows)
        for zone_set in {z.zone_set for z in zones}:
            members = [z for z in zones if z.zone_set == zone_set]
            out[(w, zone_set)] = zone_totals(members, base, exact["count"])
    return out


def worst_change(s: Settings, a: Sums, b: Sums, zones: list[Zone]) -> dict[str, float]:
    """Per zone set, the largest L2 change of its vector over windows."""
    va, vb = set_vectors(s, a, zones), set_vectors(s, b, zones)
    worst: dict[str, float] = defaultdict(float)
    for key in va.keys() | vb.keys():
        n = len([z for z in zones if z.zone_set == key[1]])
        d = va.get(key, np.zeros(n, dtype=np.int64)) - vb.get(key, np.zeros(n, dtype=np.int64))
        worst[key[1]] = max(worst[key[1]], math.sqrt(float((d.astype(np.float64) ** 2).sum())))
    return worst


def assert_within_draw_bound(s: Settings, a: Sums, b: Sums, zones: list[Zone]) -> None:
    plan = plan_from_settings(s)
    for zone_set, change in worst_change(s, a, b, zones).items():
        draw = plan.zone_draw(zone_set)
        assert draw is not None
        assert change <= draw.params.sensitivity + 1e-9, (zone_set, change, draw.params.sensitivity)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    honest_devices(4),
    adversary(),
    schedules(),
    st.sampled_from([1, 3]),
)
def test_one_device_moves_a_zone_set_by_at_most_its_bound(
    honest: tuple[list[Upload], ...], extra: list[Upload], schedule: Schedule, cells: int
) -> None:
    s = make_settings(cells)
    ing = ingestor_for(s)
    d = [u for dev in honest for u in dev]
    base = consume(place(d, PARTITIONS), s, ing, schedule).counted()
    plus = consume(place(d + extra, PARTITIONS), s, ing, schedule).counted()
    assert_within_draw_bound(s, base, plus, ZONES)
    gone = honest[0][0].device
    minus = consume(place([u for u in d if u.device != gone], PARTITIONS), s, ing, schedule).counted()
    assert_within_draw_bound(s, base, minus, ZONES)


def test_the_bound_is_tight_all_l_cells_in_one_zone() -> None:
    """A device whose L = 3 cells all lie in one zone moves that zone by exactly 3 = L: the draw's
    bound is the worst case, not a loose one (√L would be too small)."""
    s = make_settings(cells=3, wpd=1440)  # due in every window
    ing = ingestor_for(s)
    t = T0 + 10_000
    pings = [ping(t - 100 * k, k) for k in (0, 1, 2)]
    one = consume(place([Upload(t, "mallory", message("mallory", pings))], PARTITIONS), s, ing,
                  Schedule(poll_records=4)).counted()  # fmt: skip
    worst = worst_change(s, one, {}, ZONES)
    assert worst["crowd"] == 3.0 == plan_from_settings(s).zone_draw("crowd").params.sensitivity  # type: ignore[union-attr]


def test_overlapping_zones_of_one_set_would_break_the_bound() -> None:
    """Two zones of one set sharing a cell: one device in that cell moves both, L2 = √2 > L = 1.
    The releaser's selection measures only the first of them, and the bound holds again."""
    s = make_settings(cells=1, wpd=1440)
    ing = ingestor_for(s)
    t = T0 + 10_000
    one = consume(place([Upload(t, "mallory", message("mallory", [ping(t - 100, 2)]))], PARTITIONS), s, ing,
                  Schedule(poll_records=4)).counted()  # fmt: skip
    overlapping = [zone("a", "crowd", [0, 1, 2]), zone("b", "crowd", [2, 3], minute=1)]
    assert worst_change(s, one, {}, overlapping)["crowd"] == math.sqrt(2)
    kept, dropped = select_disjoint(overlapping, plan_from_settings(s))
    assert [z.zone_id for z in kept] == ["a"] and [z.zone_id for z in dropped] == ["b"]
    assert_within_draw_bound(s, one, {}, kept)
