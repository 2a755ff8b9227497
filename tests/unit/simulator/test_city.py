"""The city at real density: its scale, the road network's corridors, ping intervals, and the
traffic ground truth (the incident's queue forms and clears)."""

from __future__ import annotations

from collections import defaultdict

import h3
import numpy as np
import pytest
from shapely.geometry import mapping

from hexpulse.settings import Settings, load_settings
from hexpulse.traffic_levels import LEVEL_NAMES
from simulator import SimConfig, Simulation, generate
from simulator.geo import LocalFrame
from simulator.places import CORRIDORS, DEFAULT_CENTER, zones_geojson
from simulator.population import DEFAULT_DEVICES, MARKET_SHARE, POPULATION, census
from simulator.stream import CityStream
from simulator.traffic import Traffic, incident_for

W = 1_764_835_200_000  # 2025-12-04T08:00:00Z, 16:00 in Guangzhou
FRAME = LocalFrame(*DEFAULT_CENTER)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="module")
def sim(settings: Settings) -> Simulation:
    return generate(SimConfig(devices=60_000, duration_s=900, start_ms=W, malformed_rate=0.0), settings)


def test_the_default_is_the_market_share_of_the_population() -> None:
    cfg = SimConfig()
    assert cfg.device_count() == DEFAULT_DEVICES == round(POPULATION * MARKET_SHARE)
    assert 600_000 <= cfg.device_count() <= 900_000  # "several hundred thousand devices"
    assert cfg.crowd() == round(55_000 * 0.9 * MARKET_SHARE)  # Tianhe Stadium's seats × attendance × share
    half = SimConfig(devices=DEFAULT_DEVICES // 2)
    assert abs(half.crowd() - cfg.crowd() / 2) <= 1
    full, scaled = census(DEFAULT_DEVICES, 900, W), census(DEFAULT_DEVICES // 10, 900, W)
    assert abs(scaled.tourists - full.tourists / 10) <= 1
    assert full.travel_share == scaled.travel_share < 0.25  # most people stay put in 15 min


def test_vehicles_follow_the_real_flow_at_any_scale() -> None:
    a = Traffic(900, W, MARKET_SHARE, np.random.default_rng(1))
    b = Traffic(900, W, MARKET_SHARE / 10, np.random.default_rng(1))
    assert a.directions[0].speed_kmh.tobytes() == b.directions[0].speed_kmh.tobytes()
    assert 0.07 < len(b) / len(a) < 0.13
    # Real density: an arterial at 16:00 carries hundreds of vehicles per km (both directions).
    road = a.directions[4].road
    assert road.kind == "arterial"
    cars = np.flatnonzero(np.isin(a.direction, [4, 5]))
    on = a.at(cars, np.full((len(cars), 1), 450.0))[2]
    per_km_devices = on.sum() / (road.length_m / 1000)
    assert per_km_devices > 50  # devices = 35 % × 1.3 people × vehicles


def test_corridors_are_disjoint_segments_at_res_9() -> None:
    seen: dict[int, str] = {}
    for c in CORRIDORS:
        assert 500 <= c.s1 - c.s0 <= 2000, c.slug
        cells = h3.geo_to_cells(mapping(c.polygon(FRAME)), 9)  # type: ignore[arg-type]
        assert cells, c.slug
        for cell in cells:
            assert cell not in seen, f"{c.slug} and {seen[cell]} share {cell}"
            seen[cell] = c.slug
    doc = zones_geojson(FRAME)
    assert sum(f["properties"]["set"] == "corridor" for f in doc["features"]) == len(CORRIDORS)


def test_still_devices_ping_less_often_than_moving_ones(sim: Simulation) -> None:
    p = sim.pings
    same = p.device[1:] == p.device[:-1]
    gap = np.diff(p.ts_ms)[same] / 1000
    kind = p.kind[1:][same]
    assert np.all(gap > 0)
    car_gap, other_gap = np.median(gap[kind == 1]), np.median(gap[kind == 0])
    assert 15 <= car_gap <= 25  # every 20 s ± 20 % while moving
    assert other_gap >= 55  # a still phone: every 3rd to 6th slot


def test_traffic_truth_matches_the_cells(sim: Simulation) -> None:
    moving: dict[tuple[int, int], int] = defaultdict(int)
    for w, cell, _, mov, _ in sim.truth.cells:
        if mov:
            moving[(w, h3.api.basic_int.cell_to_parent(cell, 8))] += mov
    rows = sim.truth.traffic["cells"]
    assert {(w, c): m for w, c, m, *_ in rows} == dict(moving)
    assert all(r[5] in LEVEL_NAMES and r[3] > 0 and r[4] > 0 for r in rows)
    assert {c["slug"] for c in sim.truth.corridors} == {c.slug for c in CORRIDORS}
    assert sim.truth.version == 2


def test_the_incident_queue_forms_and_clears(sim: Simulation) -> None:
    inc = sim.truth.incident
    assert inc["corridor_slug"] == incident_for(900).corridor_slug
    rows = {r[0]: r for r in sim.truth.traffic["corridors"] if r[1] == inc["corridor_slug"]}
    before = [r for w, r in rows.items() if w + 60_000 <= inc["start_ms"]]
    during = [r for w, r in rows.items() if inc["start_ms"] + 120_000 <= w < inc["end_ms"]]
    after = [r for w, r in rows.items() if w >= inc["end_ms"] + 180_000]
    assert before and during and after
    assert all(r[5] in ("free", "light") for r in before)
    assert any(r[5] in ("heavy", "severe") for r in during)
    assert min(r[3] for r in during) < 0.6 * min(r[3] for r in before)
    assert after[-1][5] in ("free", "light")


def test_the_kept_corridor_devices_are_the_truths_corridor_rows(settings: Settings) -> None:
    # keep_moving's per-device rows (bench_traffic_ceiling builds its bins from them) must add up
    # to the ground truth's corridor rows: devices, mean speed and free flow per corridor-window.
    cfg = SimConfig(devices=20_000, duration_s=180, start_ms=W, malformed_rate=0.0)
    stream = CityStream(cfg, settings, span_windows=1, keep_moving=True)
    for _ in stream.spans():
        pass
    assert stream.truth is not None and stream.truth.corridor_moving is not None
    parts = stream.truth.corridor_moving
    assert len(parts) == 3  # one per span
    rows: dict[tuple[int, str], list[float]] = defaultdict(list)
    frees: dict[tuple[int, str], list[float]] = defaultdict(list)
    for p in parts:
        for w, c, v, f in zip(
            p.win.tolist(), p.corridor.tolist(), p.kmh.tolist(), p.free_kmh.tolist(), strict=True
        ):
            rows[(w, CORRIDORS[c].slug)].append(v)
            frees[(w, CORRIDORS[c].slug)].append(f)
    # Only a car has a free flow of its own road; any other mover's is its own speed.
    car = np.concatenate([p.car for p in parts])
    free = np.concatenate([p.free_kmh for p in parts])
    assert car.any() and (~car).any()
    assert np.array_equal(free[~car], np.concatenate([p.kmh for p in parts])[~car])
    roads = {d.road.free_flow_kmh for d in stream.city.traffic.directions}
    assert set(free[car].tolist()) <= roads
    truth = stream.finish().traffic["corridors"]
    assert truth and len(rows) == len(truth)
    for w, slug, n, mean, ff, _ in truth:
        assert len(rows[(w, slug)]) == n
        assert float(np.mean(rows[(w, slug)])) == pytest.approx(mean, abs=0.006)
        assert float(np.mean(frees[(w, slug)])) == pytest.approx(ff, abs=0.006)
