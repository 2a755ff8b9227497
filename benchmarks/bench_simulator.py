"""Simulator speed and memory at real density: can it feed the pipeline in real time here?

Streams the default city (the market share of the district's population, docs/SIMULATOR.md)
for ``--duration`` s of event time (default 300) a window at a time, serializing every message,
and measures where a feed's CPU goes: setting the city up, generating a minute (with its ground
truth), serializing it, and handing its records to Kafka with each client (kafka-python and
librdkafka) on a fresh topic of the local broker. Real time needs ``pings / duration`` pings/s.

Last line: JSON with ``sim_devices``, ``sim_pings``, ``sim_needed_pings_per_s``,
``sim_setup_cpu_s``, ``sim_generate_cpu_s_per_min`` and ``sim_serialize_cpu_s_per_min`` (CPU
seconds per minute of event time), ``sim_realtime_factor_cpu`` (event-time seconds generated and
serialized per CPU second), ``sim_rss_after_setup_mb`` / ``sim_peak_rss_mb`` (the stream's memory:
bounded by the span when the two stay close whatever ``--duration``),
``send_us_per_record_<client>`` (CPU µs per record in the send loop + flush) and
``send_records_per_s_<client>`` for kafka-python as the project configures it, with a bigger
batch/linger and acks 1, with gzip on top, and for librdkafka; and ``load_average``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
import uuid

from kafka.errors import KafkaError

from hexpulse.kafka import ensure_topics, make_admin
from hexpulse.settings import Settings, load_settings
from simulator import SimConfig
from simulator.sender import librdkafka_available, make_sender
from simulator.stream import CityStream

SEND_RECORDS = 50_000


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


Row = tuple[int, bytes, bytes, int]  # partition, key, value, record timestamp ms


KAFKA_PYTHON_CONFIGS: dict[str, dict[str, object]] = {
    "kafka_python": {},  # the project's producer: linger 20 ms, acks all
    "kafka_python_linger50_256k_acks1": {"linger_ms": 50, "batch_size": 262_144, "acks": 1},
    "kafka_python_linger50_256k_acks1_gzip": {
        "linger_ms": 50, "batch_size": 262_144, "acks": 1, "compression_type": "gzip"
    },
}


def _send_cost(settings: Settings, kind: str, rows: list[Row], **overrides: object) -> tuple[float, float]:
    """(CPU µs per record, records/s wall) of sending ``rows`` and flushing, on a fresh topic."""
    topic = f"bench-sim-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [topic])
    try:
        sender = make_sender(settings, topic, kind, **overrides)
        t0, c0 = time.perf_counter(), time.process_time()
        for partition, key, value, ts in rows:
            sender.send(partition, key, value, ts)
        sender.flush(120)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        sender.close()
        if sender.failures():
            raise SystemExit(f"{kind}: {sender.failures()[0]}")
    finally:
        admin = make_admin(settings)
        try:
            admin.delete_topics([topic])
        except KafkaError as exc:  # cleanup only; retention would empty it within a day
            print(f"could not delete {topic}: {exc}")
        admin.close()
    return cpu / len(rows) * 1e6, len(rows) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=300.0, help="event-time seconds (default 300)")
    parser.add_argument("--devices", type=int, default=None, help="default: real density")
    parser.add_argument("--skip-truth", action="store_true", help="generate without the ground truth")
    parser.add_argument("--no-send", action="store_true", help="measure generation only")
    args = parser.parse_args()
    settings = load_settings()
    # A fixed rush-hour start (2025-12-04T08:00 local), so runs compare.
    cfg = SimConfig(devices=args.devices, duration_s=args.duration, start_ms=1_764_806_400_000)
    c0 = time.process_time()
    stream = CityStream(cfg, settings, truth=not args.skip_truth)
    setup_cpu = time.process_time() - c0
    rss_setup = _rss_mb()
    home = stream.home
    gen_cpu = ser_cpu = 0.0
    sample: list[Row] = []
    spans = stream.spans()
    while True:
        c0 = time.process_time()
        span = next(spans, None)
        gen_cpu += time.process_time() - c0
        if span is None:
            break
        c0 = time.process_time()
        where = span.partitions(home, settings.topic_partitions)
        rows = zip(span.messages(), span.record_ts_ms(), where, strict=True)
        for (key, value), ts, (partition, _) in rows:
            if len(sample) < SEND_RECORDS:
                sample.append((partition, key, value, ts))
        ser_cpu += time.process_time() - c0
    pings = round(stream.pings_per_s() * args.duration)
    minutes = args.duration / 60.0
    print(
        f"{stream.devices:,} devices, {pings:,} pings "
        f"over {args.duration:g} s: setup {setup_cpu:.1f} s CPU, generate {gen_cpu:.1f} s CPU, "
        f"serialize {ser_cpu:.1f} s CPU; RSS after setup {rss_setup:,.0f} MB, peak {_rss_mb():,.0f} MB",
        flush=True,
    )
    out: dict[str, object] = {
        "sim_devices": stream.devices,
        "sim_truth": not args.skip_truth,
        "sim_pings": pings,
        "sim_needed_pings_per_s": round(pings / args.duration),
        "sim_setup_cpu_s": round(setup_cpu, 1),
        "sim_generate_cpu_s_per_min": round(gen_cpu / minutes, 2),
        "sim_serialize_cpu_s_per_min": round(ser_cpu / minutes, 2),
        "sim_realtime_factor_cpu": round(args.duration / (gen_cpu + ser_cpu), 2),
        "sim_rss_after_setup_mb": round(rss_setup),
        "sim_peak_rss_mb": round(_rss_mb()),
    }
    runs: list[tuple[str, str, dict[str, object]]] = [
        (name, "kafka-python", cfg) for name, cfg in KAFKA_PYTHON_CONFIGS.items()
    ]
    if librdkafka_available():
        runs.append(("librdkafka", "librdkafka", {}))
    if args.no_send:
        runs = []
    for name, kind, overrides in runs:
        us, rate = _send_cost(settings, kind, sample, **overrides)
        out[f"send_us_per_record_{name}"] = round(us, 1)
        out[f"send_records_per_s_{name}"] = round(rate)
        print(f"send {len(sample):,} records with {name}: {us:.1f} µs CPU each, {rate:,.0f} records/s",
              flush=True)  # fmt: skip
    out["load_average"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
