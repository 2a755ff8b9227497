"""The scenic areas at real size: several measured cells each, disjoint from the other crowd
zones; tourists arrive by local time of day and stay long enough to fill every dwell bin."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from api.zones import zone_cells
from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings, load_settings
from privacy.release.tourism_daily import DWELL_METRICS, dwell_bin
from simulator import SimConfig, SimulatorConfigError
from simulator.geo import LocalFrame
from simulator.motion import tourists
from simulator.places import DEFAULT_CENTER, SCENIC_AREAS, ZONE_SETS
from simulator.population import (
    POPULATION,
    SCENIC_OPEN_LOCAL_H,
    SCENIC_TOURISTS_PER_DAY,
    SCENIC_UTC_OFFSET_H,
    SCENIC_VISITORS_PER_DAY,
    census,
    visitor_days,
)

LOCAL_MIDNIGHT = 1_764_172_800_000  # 2025-11-26T16:00:00Z = 2025-11-27 00:00 in Guangzhou
FRAME = LocalFrame(*DEFAULT_CENTER)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings()


def test_each_scenic_zone_holds_several_cells_and_no_other_crowd_zones_cell(settings: Settings) -> None:
    area_cells = load_service_area(settings).cell_set
    cells = {
        a.slug: set(zone_cells(a.polygon(FRAME), settings.base_resolution, area_cells))
        for a in ZONE_SETS["crowd"]
    }
    for a in SCENIC_AREAS:
        assert len(cells[a.slug]) >= 3, a.slug
    for (x, cx), (y, cy) in itertools.combinations(cells.items(), 2):
        assert not cx & cy, (x, y)


def test_a_day_holds_one_days_visitors() -> None:
    assert visitor_days(LOCAL_MIDNIGHT, 86_400.0) == pytest.approx(1.0, abs=0.01)
    # A run from 04:00 to 08:00 local holds no visitor: none arrive from 21:00 to 09:00 and
    # those arriving before 21:00 are counted only when the run starts within SCENIC_LEAD_S.
    assert visitor_days(LOCAL_MIDNIGHT + 4 * 3_600_000, 4 * 3600.0) == 0.0
    plan = census(770_000, 86_400.0, LOCAL_MIDNIGHT)
    assert plan.tourists == pytest.approx(SCENIC_TOURISTS_PER_DAY * 0.35, rel=0.01)


def _local_hours(start_ms: int, t_s: np.ndarray) -> np.ndarray:
    out: np.ndarray = (start_ms / 3.6e6 + t_s / 3600.0 + SCENIC_UTC_OFFSET_H) % 24.0
    return out


def test_arrivals_follow_opening_hours_with_a_midday_peak_and_stays_fill_all_dwell_bins() -> None:
    cfg = SimConfig(devices=20_000, duration_s=86_400.0, start_ms=LOCAL_MIDNIGHT, malformed_rate=0)
    kf = tourists(20_000, cfg, np.random.default_rng(7), LOCAL_MIDNIGHT)
    arrive = kf.t[:, 2]  # keyframes: run start, leave origin, reach the first area
    hours = _local_hours(LOCAL_MIDNIGHT, arrive)
    lo, hi = SCENIC_OPEN_LOCAL_H
    assert ((hours >= lo) & (hours < hi)).all()
    per_hour = np.bincount(hours.astype(int), minlength=24)
    assert 11 <= int(per_hour.argmax()) <= 15  # midday peak
    assert per_hour[12:15].sum() > 3 * per_hour[9:12].sum() / 2 > 0
    stay_min = (kf.t[:, 3] - kf.t[:, 2]) / 60.0  # the first area's stay
    bins = np.bincount([dwell_bin(m) for m in stay_min], minlength=len(DWELL_METRICS))
    assert (bins / len(stay_min) >= 0.02).all(), bins
    # Each area gets its daily visitors × devices per person (here 20,000 / 2.2 M people).
    ax, ay = np.array([[a.x for a in SCENIC_AREAS]]), np.array([[a.y for a in SCENIC_AREAS]])
    seen = np.zeros((len(kf.t), len(SCENIC_AREAS)), dtype=bool)
    for k in (2, 4, 6):  # reaching each of up to three areas; a repeat stays 0 s
        near = np.argmin(np.hypot(kf.x[:, k : k + 1] - ax, kf.y[:, k : k + 1] - ay), axis=1)
        stayed = kf.t[:, k + 1] > kf.t[:, k]
        seen[np.flatnonzero(stayed), near[stayed]] = True
    per_device = np.array(SCENIC_VISITORS_PER_DAY) * 20_000 / POPULATION
    n = census(20_000, 86_400.0, LOCAL_MIDNIGHT).tourists
    assert seen.sum(axis=0) / 20_000 * n == pytest.approx(per_device, rel=0.1)


def test_tourist_share_keeps_real_visitor_numbers_in_a_thin_city(settings: Settings) -> None:
    # bench_tourism.py: the tourists at the market share, everyone else scaled down.
    real = census(770_000, 86_400.0, LOCAL_MIDNIGHT).tourists
    thin = census(20_000, 86_400.0, LOCAL_MIDNIGHT, tourist_share=770_000 / POPULATION).tourists
    assert thin == real
    assert census(20_000, 86_400.0, LOCAL_MIDNIGHT).tourists < real / 30
    for bad in (0.0, 1.5):
        with pytest.raises(SimulatorConfigError, match="tourist_share"):
            SimConfig(devices=20_000, start_ms=LOCAL_MIDNIGHT, tourist_share=bad).validate(settings)
