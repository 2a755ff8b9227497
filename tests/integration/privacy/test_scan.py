"""Invariant 5 after a real run: pings with known device strings and precise coordinates go through
Kafka → ingest → aggregate → ClickHouse → releaser; then no device string, no pseudonym (of a live
or a destroyed key) and no coordinate with more than 3 decimals may appear in any ClickHouse table
of the test databases, in the captured log lines, in the Prometheus text or in the DLQ records —
except a live day's pseudonyms in the restricted exact tables built to hold them
(``tourism_presence``, ``traffic_moving``, ``traffic_movers``: PRIVACY.md §6, §8).
"""

from __future__ import annotations

import io
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from kafka import TopicPartition
from prometheus_client import REGISTRY, generate_latest

from aggregate.kafka.client import make_consumer
from hexpulse.kafka import ensure_topics, make_producer
from hexpulse.logs import JsonFormatter
from hexpulse.settings import Settings
from hexpulse.store import apply_migrations, connect
from hexpulse.times import MS_PER_DAY as DAY_MS
from privacy.keys.keyring import KeyRing
from privacy.keys.master_key import create_master_key_file, load_master_key
from privacy.keys.pseudonyms import RotatingPseudonymizer
from privacy.keys.sealing import PayloadSealer
from tests.support.clickhouse_users import allow_api
from tests.support.privacy_scan import Finding, RunSecrets, scan_clickhouse, scan_lines, scan_records

pytestmark = pytest.mark.integration

# A small service area (Tromsø, ~2 km x 2 km), so every window releases only a few dozen cells.
LAT0, LAT1, LON0, LON1 = 69.640, 69.658, 18.930, 18.980
N_DEVICES = 24
PINGS_PER_DEVICE = 6


@pytest.fixture()
def scan_settings(migrated: Settings, tmp_path: Path, unique_name: str) -> Iterator[Settings]:
    area = tmp_path / "area.geojson"
    ring = [[LON0, LAT0], [LON1, LAT0], [LON1, LAT1], [LON0, LAT1], [LON0, LAT0]]
    area.write_bytes(orjson.dumps({"type": "Polygon", "coordinates": [ring]}))
    s = migrated.model_copy(
        update={
            "clickhouse_database": f"{migrated.clickhouse_database}_scan",
            "topic_pings": f"scan-{unique_name}",
            "topic_dlq": f"scan-{unique_name}.dlq",
            "consumer_group": f"scan-{unique_name}",
            "state_dir": tmp_path / "state",
            "service_area_path": area,
            "idle_timeout_s": 1.0,
            "metrics_port": 0,
        }
    )
    admin = connect(s, use_db=False)
    apply_migrations(admin, s.clickhouse_database, s.exact_database)
    allow_api(s)
    create_master_key_file(s.resolved_master_key_file())
    ensure_topics(s)
    yield s
    for db in (s.clickhouse_database, s.exact_database):
        admin.execute(f"DROP DATABASE IF EXISTS {db}")
    admin.disconnect()


class FixedClock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000


def _coord(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A coordinate with 6 decimals, never a multiple of 0.001 (so it has more than 3 decimals)."""
    micro = int(rng.integers(int(lo * 1e6), int(hi * 1e6)))
    return (micro + (micro % 1000 == 0)) / 1e6


def _produce(s: Settings, now_ms: int) -> tuple[RunSecrets, int, list[tuple[str, int]]]:
    """Send good batches and a few bad messages; return the secrets, record count, (device, day)s."""
    rng = np.random.default_rng(20261127)
    secrets = RunSecrets()
    tag = uuid.uuid4().hex[:10]
    devices = [f"upstream-{tag}-dev-{i:03d}" for i in range(N_DEVICES)]
    base = now_ms - 10 * 60_000
    # (device, value, record timestamp): the producer plays the trusted gateway and stamps each
    # upload when it arrives, a second after its ping, in arrival order (windows close on record
    # timestamps, so a whole device's day stamped "now" would be all late).
    messages: list[tuple[str, bytes, int]] = []
    device_days: list[tuple[str, int]] = []
    for dev in devices:
        for j in range(PINGS_PER_DEVICE):
            lat, lon = _coord(rng, LAT0 + 0.002, LAT1 - 0.002), _coord(rng, LON0 + 0.004, LON1 - 0.004)
            secrets.add(coords=[lat, lon])
            ts = base + j * 50_000 + int(rng.integers(0, 5000))
            ping = {"ts": ts, "lat": lat, "lon": lon, "spd": round(float(rng.uniform(0, 15)), 2)}
            device_days.append((dev, ts // DAY_MS))
            messages.append((dev, orjson.dumps({"v": 1, "device": dev, "pings": [ping]}), ts + 1000))
    messages.sort(key=lambda m: m[2])
    outside = (_coord(rng, 69.70, 69.72), _coord(rng, 19.10, 19.12))
    stale = (_coord(rng, LAT0 + 0.002, LAT1 - 0.002), _coord(rng, LON0 + 0.004, LON1 - 0.004))
    secrets.add(coords=[*outside, *stale])
    bad_devs = [f"upstream-{tag}-bad-{k}" for k in range(4)]
    messages += [
        (
            bad_devs[0],
            orjson.dumps({"device": bad_devs[0], "ts": base, "lat": outside[0], "lon": outside[1]}),
            base + 1000,
        ),
        (
            bad_devs[1],
            orjson.dumps(
                {"device": bad_devs[1], "ts": base - 7 * 3_600_000, "lat": stale[0], "lon": stale[1]}
            ),
            base + 1000,
        ),
        (
            bad_devs[2],
            orjson.dumps({"device": bad_devs[3], "ts": base, "lat": stale[0], "lon": stale[1]}),
            base + 1000,
        ),  # key mismatch
        (
            bad_devs[2],
            f'{{"device": "{bad_devs[2]}", "ts": {base}, "lat": {stale[0]}, "lon":'.encode(),
            base + 1000,
        ),  # not JSON
    ]
    secrets.add(devices=[*devices, *bad_devs])
    producer = make_producer(s)
    for dev, value, stamp in messages:
        producer.send(s.topic_pings, key=dev.encode(), value=value, timestamp_ms=stamp)
    producer.flush(30)
    producer.close()
    return secrets, len(messages), device_days


def _run_pipeline(s: Settings, expected_records: int, last_window_end_s: int) -> Any:
    from aggregate.consumer import ConsumeLoop
    from hexpulse.service_area import load_service_area
    from ingest import Ingestor, KafkaDeadLetterSink
    from privacy.release.releaser import Releaser

    dlq = KafkaDeadLetterSink(s, PayloadSealer.from_settings(s))
    ingestor = Ingestor(s, load_service_area(s), RotatingPseudonymizer.from_settings(s), dlq)
    releaser = Releaser(s)
    next_check = [0.0]

    def done(loop: ConsumeLoop) -> bool:
        if loop.stats.records < expected_records or loop.agg.pending or time.monotonic() < next_check[0]:
            return False
        next_check[0] = time.monotonic() + 0.5
        horizon = releaser.complete_before()
        return horizon is not None and horizon >= last_window_end_s

    stop = threading.Event()
    guard = threading.Timer(120.0, stop.set)  # never hang the suite; asserted below
    guard.start()
    try:
        loop = ConsumeLoop(s, ingestor, stop=stop, stop_when=done)
        loop.run()
    finally:
        guard.cancel()
    dlq.close()
    assert not stop.is_set(), "the pipeline did not close every window within 120 s"
    released = releaser.run_once()
    assert released > 0
    return loop


def _exercise_api(s: Settings) -> dict[str, str]:
    """Serve the release over the API; return each response body, including /metrics."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    bbox = f"{LON0},{LAT0},{LON1},{LAT1}"  # 3 decimals: a query, not a ping coordinate
    paths = [f"/v1/density?bbox={bbox}", f"/v1/traffic?bbox={bbox}", "/v1/windows", "/v1/privacy", "/metrics"]
    out = {}
    with TestClient(create_app(s)) as api:
        _, token = api.app.state.keys.create("privacy-scan", ["admin"])  # type: ignore[attr-defined]
        for path in paths:
            response = api.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, (path, response.text[:200])
            out[path] = response.text
    assert "hexpulse_api_requests_total" in out["/metrics"]
    return out


def _read_dlq(s: Settings) -> list[Any]:
    consumer = make_consumer(s, enable_auto_commit=False, group_id=None)
    parts = [TopicPartition(s.topic_dlq, p) for p in sorted(consumer.partitions_for_topic(s.topic_dlq) or [])]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    end = consumer.end_offsets(parts)
    records: list[Any] = []
    deadline = time.monotonic() + 30
    while any(consumer.position(tp) < end[tp] for tp in parts) and time.monotonic() < deadline:
        records.extend(r for batch in consumer.poll(timeout_ms=500).values() for r in batch)
    consumer.close()
    assert len(records) == sum(end.values())  # end offsets count the records exactly
    return records


def _report(findings: list[Finding]) -> str:
    return "\n".join(f"{f.where}: {f.why}: {f.excerpt}" for f in findings[:30])


def test_nothing_raw_persists_after_a_run(scan_settings: Settings, migrated: Settings) -> None:
    s = scan_settings
    now_ms = int(time.time() * 1000)
    today = now_ms // DAY_MS
    master = load_master_key(s)

    # A day key that exists before the run and is past retention once the run writes the ring.
    old_day = today - s.key_retention_days - 3
    old_ring = KeyRing(s.resolved_keyring_path(), master, s.key_retention_days, FixedClock(old_day * DAY_MS))
    old_pz = RotatingPseudonymizer(old_ring)

    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    root, kafka_log = logging.getLogger(), logging.getLogger("kafka")
    saved = (root.level, kafka_log.level)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    kafka_log.setLevel(logging.WARNING)
    try:
        secrets, n_records, device_days = _produce(s, now_ms)
        secrets.add(pseudonyms=[old_pz.pseudonymize(d.encode(), old_day) for d in secrets.devices])
        last_ts = max(now_ms - 10 * 60_000 + (PINGS_PER_DEVICE - 1) * 50_000 + 5000, 0)
        last_window_end_s = (last_ts // s.window_ms + 1) * s.window_s
        _run_pipeline(s, n_records, last_window_end_s)
        api_texts = _exercise_api(s)
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        kafka_log.setLevel(saved[1])

    # The old key was destroyed by the run's first write of the ring and cannot be used again.
    status = KeyRing.from_settings(s).status()
    assert old_day in status.days_destroyed and old_day not in status.days_held
    # The exact tables that hold a live day's pseudonyms by design (PRIVACY.md §6, §8) are searched
    # for everything but those: device strings, coordinates and the destroyed key's pseudonyms.
    held = RunSecrets(set(secrets.devices), set(secrets.pseudonyms), set(secrets.coordinates))
    live = RotatingPseudonymizer.from_settings(s)
    days = {day for _, day in device_days} | {today}
    secrets.add(pseudonyms=[live.pseudonymize(d.encode(), day) for d in secrets.devices for day in days])

    findings: list[Finding] = []
    client = connect(s, use_db=False)
    try:
        scanned = [db for x in (s, migrated) for db in (x.clickhouse_database, x.exact_database)]
        by_table = dict.fromkeys(("tourism_presence", "traffic_moving", "traffic_movers"), held)
        ch, counts = scan_clickhouse(secrets, client, scanned, by_table=by_table)
    finally:
        client.disconnect()
    findings += ch
    db, exact = s.clickhouse_database, s.exact_database
    for table in ("partials", "progress", "traffic_moving", "traffic_movers"):
        assert counts[f"{exact}.{table}"] > 0, f"{table} is empty: the run wrote nothing to scan"
    for table in ("release_windows", "release_cells", "release_ledger", "release_intents"):
        assert counts[f"{db}.{table}"] > 0, f"{table} is empty: the run wrote nothing to scan"

    log_lines = buf.getvalue().splitlines()
    assert len(log_lines) > 3
    findings += scan_lines(secrets, "log", log_lines)
    # The consumer serves the default registry at /metrics; the API serves its own /metrics.
    metrics_text = generate_latest(REGISTRY).decode()
    assert "hexpulse_ingest" in metrics_text
    findings += scan_lines(secrets, "metrics", metrics_text.splitlines())
    findings += scan_lines(secrets, "api /metrics", api_texts.pop("/metrics").splitlines())
    for path, text in api_texts.items():  # released data: cell geometry has 5-decimal vertices
        findings += scan_lines(secrets, f"api {path}", text.splitlines(), coordinates=False)

    dlq = _read_dlq(s)
    assert len(dlq) >= 4
    findings += scan_records(secrets, "dlq", dlq)
    assert not findings, "raw data leaked:\n" + _report(findings)

    # The DLQ payloads are sealed, not dropped: authorized tooling can open them, and the scanner
    # would have seen the device strings in them had they been written in clear.
    sealer = PayloadSealer.from_settings(s)
    opened = [sealer.open(dict(r.headers)["key_id"].decode(), r.value) for r in dlq]
    assert any(scan_lines(secrets, "opened", [p.decode("utf-8", "replace")]) for p in opened)
