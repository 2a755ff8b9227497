"""Exact partials from the real broker into the real ClickHouse equal the reference counts, and
every ping is accounted for (pings in = accepted + rejected + late + duplicate)."""

from __future__ import annotations

import time

import pytest

from aggregate.consumer import ConsumeLoop
from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings
from hexpulse.store.scratch import drop_database
from ingest import Ingestor, KafkaDeadLetterSink
from privacy.keys.pseudonyms import RotatingPseudonymizer
from privacy.keys.sealing import PayloadSealer
from tests.support.aggregate import (
    TEST_KEY,
    agg_settings,
    all_closed,
    expected,
    produce_stream,
    read_partials,
)

pytestmark = pytest.mark.integration


def _outcomes() -> dict[tuple[str, str], float]:
    """Current values of the ingest and aggregate outcome counters, by (stage, outcome)."""
    from prometheus_client import REGISTRY

    out: dict[tuple[str, str], float] = {}
    for family in REGISTRY.collect():
        stage = {"hexpulse_ingest_pings": "ingest", "hexpulse_aggregate_pings": "agg"}.get(family.name)
        if stage is None:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                out[(stage, sample.labels["outcome"])] = sample.value
    return out


def test_partials_equal_reference_and_accounting(migrated: Settings, unique_name: str, tmp_path) -> None:
    from pydantic import SecretStr

    s = agg_settings(migrated, unique_name, state_dir=tmp_path, consumer_max_poll_records=300)
    s = s.model_copy(update={"master_key": SecretStr(TEST_KEY)})
    try:
        stream = produce_stream(s, devices=120, span_s=90, seed=11)
        dlq = KafkaDeadLetterSink(s, PayloadSealer.from_settings(s))
        ingestor = Ingestor(s, load_service_area(s), RotatingPseudonymizer.from_settings(s), dlq)
        deadline = time.monotonic() + 60
        checked = {"at": 0.0}

        def done(loop: ConsumeLoop) -> bool:
            if time.monotonic() > deadline:
                return True
            if loop.stats.records < stream.messages or loop.agg.pending:
                return False
            if time.monotonic() - checked["at"] < 0.5:
                return False
            checked["at"] = time.monotonic()
            return all_closed(s, stream)

        before = _outcomes()
        loop = ConsumeLoop(s, ingestor, stop_when=done)
        loop.run()
        after = _outcomes()
        dlq.close()
        want, late, dup = expected(s, stream)
        got = read_partials(s)
        assert len(want) > 100 and sum(v[1] for v in want.values()) > 0  # moving devices present
        assert got == want
        st = loop.agg.stats
        assert st.pings_in == stream.pings_in
        assert (st.late, st.duplicate) == (late, dup)
        assert st.late > 0 and st.duplicate > 0 and st.rejected >= stream.malformed_pings > 0
        assert st.pings_in == st.accepted + st.rejected + st.late + st.duplicate
        assert st.open_pings == 0
        # The same identity read off the Prometheus counters (deltas: the registry is per process).
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
        ingest_in = sum(v for k, v in delta.items() if k[0] == "ingest" and k[1] not in ("late", "duplicate"))
        assert ingest_in == stream.pings_in
        assert delta[("ingest", "late")] == late and delta[("ingest", "duplicate")] == dup
        agg = delta[("agg", "accepted")] + delta[("agg", "late")] + delta[("agg", "duplicate")]
        assert agg == delta[("ingest", "accepted")]
        rejected = ingest_in - delta[("ingest", "accepted")]
        assert ingest_in == delta[("agg", "accepted")] + rejected + late + dup
    finally:
        drop_database(s)


def test_simulator_ground_truth_equals_partials(migrated: Settings, unique_name: str, tmp_path) -> None:
    """The simulator's independent ground truth equals the partials summed over partitions."""
    from collections import Counter

    from simulator import SimConfig, generate, produce
    from tests.support.aggregate import Stream, read_partials, run_in_process

    s = agg_settings(migrated, unique_name, state_dir=tmp_path)
    try:
        cfg = SimConfig(devices=400, duration_s=180, interval_s=4, malformed_rate=0.05, seed=3)
        sim = generate(cfg, s)
        produce(s, sim, progress=None)
        truth = sim.truth
        _, st = run_in_process(
            s, Stream(), messages=truth.counts["messages"], max_ts_ms=truth.config["end_ms"]
        )
        summed: Counter[tuple[int, int]] = Counter()
        moving: Counter[tuple[int, int]] = Counter()
        speed: Counter[tuple[int, int]] = Counter()
        for (w, c, _p), (d, m, sp) in read_partials(s).items():
            summed[(w, c)] += d
            moving[(w, c)] += m
            speed[(w, c)] += sp
        got = {k: (summed[k], moving[k], speed[k]) for k in summed}
        want = truth.cell_table()
        assert len(want) > 100
        # Devices and moving devices: exactly the simulator's own ground truth file.
        assert got == want
        assert st.accepted == truth.counts["accepted"]
        assert st.rejected == sum(truth.counts["rejected_pings_by_reason"].values())
        assert st.late == 0 and st.duplicate == 0
        assert st.pings_in == st.accepted + st.rejected + st.late + st.duplicate
    finally:
        drop_database(s)
