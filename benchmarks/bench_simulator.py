"""Simulator speed and memory at real density: can it feed the pipeline in real time here?

Generates the default city (the market share of the district's population, docs/SIMULATOR.md)
for ``--duration`` s of event time (default 600), serializes every message, and produces a
slice of it to a fresh topic on the local broker. Real time needs ``pings / duration`` pings/s;
the run's figures say how much faster than that it generates and serializes (one process).

Last line: JSON with ``sim_devices``, ``sim_pings``, ``sim_needed_pings_per_s`` (the real-time
rate), ``sim_generate_pings_per_s`` and ``sim_generate_cpu_pings_per_s`` (generation + ground
truth, wall clock and this process's CPU time), ``sim_serialize_pings_per_s``,
``sim_realtime_factor_cpu`` (event-time seconds generated + serialized per CPU second; ≥ 1
means one core keeps up), ``sim_peak_rss_mb``, ``sim_produce_msgs_per_s`` and
``sim_produce_pings_per_s`` (batched mode, a 1,000-device slice).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
import uuid

from kafka.errors import KafkaError

from hexpulse.kafka import ensure_topics, make_admin
from hexpulse.settings import load_settings
from simulator import SimConfig, generate, produce


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="event-time seconds (default 600)")
    parser.add_argument("--devices", type=int, default=None, help="default: real density")
    args = parser.parse_args()
    settings = load_settings()
    cfg = SimConfig(devices=args.devices, duration_s=args.duration, start_ms=None, malformed_rate=0.001)
    t0, c0 = time.perf_counter(), time.process_time()
    sim = generate(cfg, settings)
    gen_s, gen_cpu = time.perf_counter() - t0, time.process_time() - c0
    pings = sim.truth.counts["pings"]
    t0, c0 = time.perf_counter(), time.process_time()
    n = sum(1 for _ in sim.messages())
    ser_s, ser_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{sim.truth.counts['devices']:,} devices, {pings:,} pings in {n:,} messages "
        f"over {args.duration:g} s: "
        f"generate {gen_s:.1f} s ({gen_cpu:.1f} s CPU), serialize {ser_s:.1f} s ({ser_cpu:.1f} s CPU), "
        f"peak RSS {rss_mb:,.0f} MB",
        flush=True,
    )
    del sim

    # Produce a 1,000-device slice (keeps the benchmark short on 2 shared cores).
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
                "sim_devices": cfg.device_count(),
                "sim_pings": pings,
                "sim_needed_pings_per_s": round(pings / args.duration),
                "sim_generate_pings_per_s": round(pings / gen_s),
                "sim_generate_cpu_pings_per_s": round(pings / gen_cpu),
                "sim_serialize_pings_per_s": round(pings / ser_s),
                "sim_realtime_factor_cpu": round(args.duration / (gen_cpu + ser_cpu), 2),
                "sim_peak_rss_mb": round(rss_mb),
                "sim_produce_msgs_per_s": round(report.messages / report.seconds),
                "sim_produce_pings_per_s": round(small.truth.counts["pings"] / report.seconds),
            }
        )
    )


if __name__ == "__main__":
    main()
