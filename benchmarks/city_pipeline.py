"""The deployed pipeline, in process, on simulated city runs (benchmarks/bench_city.py).

Kafka is bypassed, nothing else: each message of a run goes, in send order, to the partition
Kafka's default partitioner gives its key, with the record timestamp the gateway would stamp
(``Simulation.record_ts_ms``); each partition's records reach the real ``Ingestor`` in polls of
``HEXPULSE_CONSUMER_MAX_POLL_RECORDS`` and the real ``Aggregator`` writes partials and progress
to ClickHouse through its sink. The real ``Releaser`` then releases each window of the run, and
the zones are registered the way ``hexpulse zones load`` covers them.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson
from shapely.geometry import shape

from aggregate.sink import PartialsSink
from aggregate.state import Aggregator
from api.zones import zone_cells
from hexpulse.service_area import ServiceArea
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.zones import OPEN_END, ZONE_COLUMNS, Zone
from ingest import Ingestor
from ingest.partitioning import partition_of
from privacy.keys.pseudonyms import RotatingPseudonymizer
from privacy.release.releaser import Releaser
from privacy.release.shares import funded_sets
from simulator import Simulation
from simulator.geo import LocalFrame
from simulator.places import zones_geojson


@dataclass
class Pipeline:
    """One deployment's ingest + aggregate state across runs (offsets keep rising between runs)."""

    settings: Settings
    area: ServiceArea
    ingestor: Ingestor = field(init=False)
    agg: Aggregator = field(init=False)
    offsets: dict[int, int] = field(default_factory=lambda: defaultdict(int))

    def __post_init__(self) -> None:
        s = self.settings
        self.ingestor = Ingestor(s, self.area, RotatingPseudonymizer.from_settings(s), None)
        self.ingestor.warm()
        self.agg = Aggregator(s, PartialsSink(s), s.topic_pings)
        for p in range(s.topic_partitions):
            self.agg.init_partition(p)

    def _poll(self, partition: int, batch: list[tuple[bytes, bytes, int]]) -> None:
        first = self.offsets[partition]
        records = [SimpleNamespace(offset=first + i, timestamp=t, key=k, value=v, headers=[])
                   for i, (k, v, t) in enumerate(batch)]  # fmt: skip
        self.offsets[partition] = first + len(batch)
        acc = self.ingestor.ingest(self.settings.topic_pings, partition, records, None)
        self.agg.add(partition, acc, acc.record_ts, first + len(batch), acc.pings_in, acc.rejected)
        if self.agg.pending:
            self.agg.flush()

    def feed(self, sim: Simulation) -> dict[str, float]:
        """Every message of ``sim`` through ingest and aggregate, then every window of the run
        closed (as the idle close would once the partitions fall quiet) and written."""
        s = self.settings
        poll = s.consumer_max_poll_records
        started = time.monotonic()
        buffers: dict[int, list[tuple[bytes, bytes, int]]] = defaultdict(list)
        chunk: list[tuple[bytes, bytes, int]] = []

        def route(items: list[tuple[bytes, bytes, int]]) -> None:
            parts = partition_of([k for k, _, _ in items], s.topic_partitions).tolist()
            for item, p in zip(items, parts, strict=True):
                buf = buffers[p]
                buf.append(item)
                if len(buf) >= poll:
                    self._poll(p, buf)
                    buffers[p] = []

        messages = 0
        for (key, value), ts in zip(sim.messages(), sim.record_ts_ms(), strict=True):
            chunk.append((key, value, ts))
            if len(chunk) >= 20_000:
                route(chunk)
                messages += len(chunk)
                chunk = []
        route(chunk)
        messages += len(chunk)
        for p, buf in buffers.items():
            if buf:
                self._poll(p, buf)
        close_at = sim.end_ms + s.lateness_ms + s.window_ms
        for p in range(s.topic_partitions):
            self.agg.idle_close(p, close_at)
        self.agg.flush()
        return {"messages": messages, "ingest_aggregate_s": round(time.monotonic() - started, 1)}

    def close(self) -> None:
        self.agg.sink.close()


def register_zones(settings: Settings, area: ServiceArea, frame: LocalFrame) -> list[Zone]:
    """The city's zones of every set the budget plan funds (``hexpulse zones load`` skips the
    others), covered and stored (outline included) as the API does, in effect since 2020 so every
    run's windows measure them."""
    funded = funded_sets(tuple(settings.budget_plan))
    since = datetime(2020, 1, 1, tzinfo=UTC)
    zones = []
    for f in zones_geojson(frame)["features"]:
        props: dict[str, Any] = f["properties"]
        if props["set"] not in funded:
            continue
        cells = zone_cells(shape(f["geometry"]), settings.base_resolution, area.cell_set)
        # The outline as the API stores it: /v1/traffic places corridors by it.
        outline = orjson.dumps(f["geometry"]).decode()
        zones.append(Zone(props["id"], 1, props["set"], props["name"], outline, cells, since, OPEN_END))
    client = connect(settings)
    try:
        client.execute(f"INSERT INTO zones ({ZONE_COLUMNS}) VALUES", [z.row() for z in zones])
    finally:
        client.disconnect()
    return zones


def release_run(settings: Settings, releaser: Releaser, sim: Simulation) -> tuple[list[int], float]:
    """Release every window of the run (epoch s) with the deployed releaser; (windows, seconds)."""
    started = time.monotonic()
    w_s = settings.window_s
    windows = list(range(sim.start_ms // 1000, sim.end_ms // 1000, w_s))
    for w in windows:
        releaser.release_window(w)
    return windows, time.monotonic() - started


def zone_truth(sim: Simulation, zones: list[Zone], window_s: int) -> dict[str, dict[int, int]]:
    """Per zone: devices counted in its cells per window (epoch s) by the truth's counting."""
    owner = {c: z.zone_id for z in zones for c in z.cells}
    out: dict[str, dict[int, int]] = {z.zone_id: {} for z in zones}
    for w, cell, devices, _, _ in sim.truth.cells:
        zid = owner.get(int(cell))
        if zid is not None:
            out[zid][w // 1000] = out[zid].get(w // 1000, 0) + int(devices)
    for w in range(sim.start_ms // 1000, sim.end_ms // 1000, window_s):
        for curve in out.values():
            curve.setdefault(w, 0)
    return out
