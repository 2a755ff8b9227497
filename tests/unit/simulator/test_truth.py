"""Ground truth: the counting semantics on hand-checkable cases, the stadium, the scenic areas,
and agreement with ingest's verdicts on a whole simulated stream."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings, load_settings
from simulator import SCENIC_AREAS, SimConfig, generate
from simulator.area_truth import VISIT_GAP_S, visits
from simulator.geo import haversine_m
from simulator.ground_truth import window_cells

W = 1_764_201_600_000  # a window start (2025-11-27T00:00:00Z)
X, Y, Z = 617_700_000_000_000_001, 617_700_000_000_000_002, 617_700_000_000_000_003  # stand-in cells
NAN = float("nan")


def _cells(rows: list[tuple[int, int, float, float, float, int]], **overrides: object) -> list[list[int]]:
    """rows: (device, ts_ms, lat, lon, spd or NaN, cell)."""
    s = load_settings(**overrides)
    cols = list(zip(*rows, strict=True))
    return window_cells(
        np.array(cols[0], dtype=np.int64),
        np.array(cols[1], dtype=np.int64),
        np.array(cols[2]),
        np.array(cols[3]),
        np.array(cols[4]),
        np.array(cols[5], dtype=np.uint64),
        s,
    )


def test_a_device_counts_once_in_its_most_pinged_cell() -> None:
    rows = [
        (1, W + 1000, 23.1, 113.3, 0.5, Y),
        (1, W + 2000, 23.1, 113.3, 0.5, X),
        (1, W + 3000, 23.1, 113.3, 0.5, X),
        (2, W + 5000, 23.1, 113.3, 10.0, Y),
    ]
    # Device 1: X has 2 pings, Y one → X; not moving (0.5 m/s). Device 2: Y, moving at 36 km/h.
    assert _cells(rows) == [[W, X, 1, 0, 0], [W, Y, 1, 1, 36]]


def test_ties_go_to_the_earliest_ping_then_the_lower_cell() -> None:
    rows = [(1, W + 9000, 23.1, 113.3, 3.0, X), (1, W + 4000, 23.1, 113.3, 3.0, Z)]
    assert _cells(rows) == [[W, Z, 1, 1, 11]]  # 3 m/s = 10.8 km/h → 11
    rows = [(1, W + 4000, 23.1, 113.3, 3.0, Z), (1, W + 4000 + 60_000, 23.1, 113.3, 3.0, X)]
    assert _cells(rows) == [[W, Z, 1, 1, 11], [W + 60_000, X, 1, 1, 11]]  # separate windows


def test_cells_per_window_two_counts_both() -> None:
    rows = [
        (1, W + 1000, 23.1, 113.3, NAN, X),
        (1, W + 2000, 23.1, 113.3, NAN, Y),
        (1, W + 3000, 23.1, 113.3, NAN, Y),
    ]
    assert _cells(rows, cells_per_window=2) == [[W, X, 1, 0, 0], [W, Y, 1, 0, 0]]


def test_speed_is_derived_from_the_previous_ping_in_the_same_window() -> None:
    lat2 = 23.1 + 0.0009  # ~100 m north
    d = float(haversine_m(np.array([23.1]), np.array([113.3]), np.array([lat2]), np.array([113.3]))[0])
    rows = [
        (1, W + 50_000, 23.1, 113.3, NAN, X),  # first ping of the window: no speed
        (1, W + 60_000 + 10_000, 23.1, 113.3, NAN, X),  # first of the next window: no speed
        (1, W + 60_000 + 20_000, lat2, 113.3, NAN, X),  # d / 10 s
    ]
    kmh = int(np.floor(d / 10 * 3.6 + 0.5))
    assert 35 <= kmh <= 37
    assert _cells(rows) == [[W, X, 1, 0, 0], [W + 60_000, X, 1, 1, kmh]]


def test_window_speed_is_the_mean_over_pings_and_is_clamped() -> None:
    # spd 1 and 4 → mean 2.5 m/s (moving, 9 km/h); reported spd 80 → clamped to 50 m/s = 180 km/h.
    rows = [
        (1, W + 1000, 23.1, 113.3, 1.0, X),
        (1, W + 2000, 23.1, 113.3, 4.0, X),
        (2, W + 1000, 23.1, 113.3, 80.0, X),
    ]
    assert _cells(rows) == [[W, X, 2, 2, 9 + 180]]
    # exactly the threshold is moving; just below is not
    rows = [(1, W + 1000, 23.1, 113.3, 2.0, X), (2, W + 1000, 23.1, 113.3, 1.99, X)]
    assert _cells(rows) == [[W, X, 2, 1, 7]]


def test_visits_split_on_long_gaps() -> None:
    dev = np.array([1, 1, 1, 2], dtype=np.int64)
    ts = np.array([0, 60_000, 60_000 + VISIT_GAP_S * 1000 + 1, 5], dtype=np.int64)
    d, first, last = visits(dev, ts)
    assert d.tolist() == [1, 1, 2] and first.tolist() == [0, 60_000 + VISIT_GAP_S * 1000 + 1, 5]
    assert last.tolist() == [60_000, 60_000 + VISIT_GAP_S * 1000 + 1, 5]


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(topic_partitions=1)  # the ingest test reads every record as partition 0


def test_stadium_peak_reaches_the_requested_crowd(settings: Settings) -> None:
    # Every still device pings in every window (idle_every=(1, 1)), so the curve shows the crowd
    # model itself rather than how often a passive feed reports.
    cfg = SimConfig(
        devices=6000, stadium_crowd=5000, duration_s=900, interval_s=15, start_ms=W, malformed_rate=0,
        idle_every=(1, 1),
    )
    truth = generate(cfg, settings).truth
    curve = [c for _, c in truth.stadium["curve"]]
    assert len(curve) == 15
    assert truth.stadium["peak"] >= 5000
    # It builds up and disperses: the first and last windows hold far fewer than the peak.
    assert curve[0] < 0.5 * 5000 and curve[-1] < 0.5 * 5000


def test_tourists_visit_the_three_areas_with_realistic_dwell(settings: Settings) -> None:
    # Tourists are the areas' real visitors × devices per person, arriving by local time: the run
    # is 12:00–15:00 in Guangzhou, the midday peak.
    cfg = SimConfig(
        devices=20_000,
        duration_s=3 * 3600,
        interval_s=60,
        start_ms=W + 4 * 3_600_000,
        malformed_rate=0,
        idle_every=(1, 1),
    )
    truth = generate(cfg, settings).truth
    assert [a["name"] for a in truth.scenic_areas] == [a.name for a in SCENIC_AREAS]
    for area in truth.scenic_areas:
        (day,) = area["days"].values()
        assert day["unique_visitors"] >= 20
        # At real proportions passers-by (people crossing on foot or by bike) are most visits and
        # stay minutes; the tourists' stays (log-normal medians 30–75 min) fill the long tail.
        assert day["dwell_s_median"] <= 90 * 60
        assert day["dwell_s_p90"] >= 30 * 60


def test_cells_agree_with_a_direct_count(settings: Settings) -> None:
    """Sum of devices over cells = accepted device-windows (L = 1), from the raw pings."""
    sim = generate(SimConfig(devices=400, duration_s=600, start_ms=W, malformed_rate=0), settings)
    area = load_service_area(settings)
    from simulator.ground_truth import base_cells

    ok = area.contains(base_cells(sim.pings.lat, sim.pings.lon, settings.base_resolution))
    pairs = {
        (int(d), int(t) // 60_000) for d, t in zip(sim.pings.device[ok], sim.pings.ts_ms[ok], strict=True)
    }
    assert sum(row[2] for row in sim.truth.cells) == len(pairs)
    assert sim.truth.counts["accepted"] == int(ok.sum())
    assert sim.truth.counts["outside_area"] == sim.truth.counts["pings_by_kind"]["regional"] > 0


def test_ingest_gives_every_message_the_expected_verdict(settings: Settings) -> None:
    """Feed the stream through ingest (no Kafka, no DLQ sink): the outcome counts per reason and
    the accepted pings must be exactly what the ground truth says."""
    ingest = pytest.importorskip("ingest")
    sim = generate(SimConfig(devices=300, duration_s=600, start_ms=W, malformed_rate=0.05, seed=7), settings)
    records = [
        SimpleNamespace(offset=i, timestamp=sim.end_ms, key=k, value=v)
        for i, (k, v) in enumerate(sim.messages())
    ]

    class Pseudo:
        def pseudonymize(self, device: bytes, day: int) -> int:
            return hash((device, day)) & 0xFFFF_FFFF_FFFF_FFFF

    ingestor = ingest.Ingestor(settings, load_service_area(settings), Pseudo(), None)
    got = ingestor.ingest("pings", 0, records, now_ms=sim.end_ms)
    want = Counter(sim.truth.counts["rejected_pings_by_reason"]) + Counter(
        accepted=sim.truth.counts["accepted"]
    )
    assert dict(got.counts) == dict(want)
