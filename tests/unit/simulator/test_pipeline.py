"""End-to-end without services: simulated stream → ingest → aggregate's partials == ground truth.

One partition holds everything here (no Kafka); per-partition sums equal the per-window truth
because a device never spans partitions.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from hexpulse.service_area import load_service_area
from hexpulse.settings import load_settings
from simulator import SimConfig, Simulation, generate

ingest = pytest.importorskip("ingest")
bounding = pytest.importorskip("aggregate.bounding")
columns = pytest.importorskip("hexpulse.pings")

W = 1_764_201_600_000


class _Pseudonyms:
    """Any injective-enough map works: the semantics never look inside pseudonyms (default W)."""

    def pseudonymize(self, device: bytes, day: int) -> int:
        return int.from_bytes(device[-8:].rjust(8, b"\0"), "big") ^ day


def _accepted(sim: Simulation) -> object:
    settings = load_settings(topic_partitions=1)  # every record in partition 0
    records = [
        SimpleNamespace(offset=i, timestamp=sim.end_ms, key=k, value=v)
        for i, (k, v) in enumerate(sim.messages())
    ]
    ingestor = ingest.Ingestor(settings, load_service_area(settings), _Pseudonyms(), None)
    return ingestor.ingest("pings", 0, records, now_ms=sim.end_ms)


@pytest.fixture(scope="module")
def sim() -> Simulation:
    # Congested traffic reports 2-decimal speeds around the 2 m/s threshold: window means that are
    # exact decimal ties (2.00 m/s, x.5 km/h) occur, which is what makes precision matter.
    cfg = SimConfig(devices=2000, duration_s=900, interval_s=5, start_ms=W, malformed_rate=0.01, seed=1)
    return generate(cfg, load_settings())


def test_partials_match_the_truth_given_float64_speeds(sim: Simulation) -> None:
    """Same accepted pings, speeds restored to the float64 values the JSON carried."""
    acc = _accepted(sim)
    p = columns.PingColumns.of(acc)
    by_ping = {
        (t, a, b): s
        for t, a, b, s in zip(
            sim.pings.ts_ms.tolist(),
            sim.pings.lat.tolist(),
            sim.pings.lon.tolist(),
            sim.pings.spd.tolist(),
            strict=True,
        )
    }
    spd64 = np.array([by_ping[k] for k in zip(p.ts_ms.tolist(), p.lat.tolist(), p.lon.tolist(), strict=True)])
    p64 = columns.PingColumns(p.offset, p.device, p.ts_ms, p.lat, p.lon, spd64, p.cell)
    got = bounding.compute_partials(p64, bounding.Bounds.from_settings(load_settings())).rows()
    assert got == [tuple(r) for r in sim.truth.cells]


def test_partials_match_the_truth_through_the_real_columns(sim: Simulation) -> None:
    got = bounding.compute_partials(
        columns.PingColumns.of(_accepted(sim)), bounding.Bounds.from_settings(load_settings())
    )
    assert got.rows() == [tuple(r) for r in sim.truth.cells]
