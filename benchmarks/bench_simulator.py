"""Simulator speed: generate 1M pings (+ ground truth), serialize them, produce them to Kafka.

Last line: JSON with ``sim_generate_1m_pings_s`` (generation + ground truth),
``sim_serialize_1m_pings_s`` (iterating every message), ``sim_produce_msgs_per_s`` and
``sim_produce_pings_per_s`` (batched mode, to a fresh topic on the local broker).
"""

from __future__ import annotations

import json
import time
import uuid

from kafka.errors import KafkaError

from hexpulse.kafka import ensure_topics, make_admin
from hexpulse.settings import load_settings
from simulator import SimConfig, generate, produce


def main() -> None:
    settings = load_settings()
    cfg = SimConfig(devices=5000, duration_s=3000, interval_s=15, start_ms=None, malformed_rate=0.001)
    t0 = time.perf_counter()
    sim = generate(cfg, settings)
    gen_s = time.perf_counter() - t0
    pings = sim.truth.counts["pings"]
    t0 = time.perf_counter()
    n = sum(1 for _ in sim.messages())
    ser_s = time.perf_counter() - t0
    print(f"generated {pings:,} pings in {n:,} messages: {gen_s:.2f} s + serialize {ser_s:.2f} s", flush=True)

    # Produce a 200k-ping slice of the same city (keeps the benchmark short on 2 shared cores).
    small = generate(SimConfig(devices=1000, duration_s=3000, interval_s=15, malformed_rate=0.0), settings)
    topic = f"bench-sim-{uuid.uuid4().hex[:8]}"
    ensure_topics(settings, [topic])
    try:
        report = produce(settings, small, topic=topic, progress=None)
    finally:
        admin = make_admin(settings)
        try:
            admin.delete_topics([topic])
        except KafkaError as exc:  # cleanup only; retention would empty it within a day
            print(f"could not delete {topic}: {exc}")
        admin.close()
    print(
        json.dumps(
            {
                "sim_pings": pings,
                "sim_generate_1m_pings_s": round(gen_s * 1e6 / pings, 2),
                "sim_serialize_1m_pings_s": round(ser_s * 1e6 / pings, 2),
                "sim_produce_msgs_per_s": round(report.messages / report.seconds),
                "sim_produce_pings_per_s": round(small.truth.counts["pings"] / report.seconds),
            }
        )
    )


if __name__ == "__main__":
    main()
