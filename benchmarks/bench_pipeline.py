"""End-to-end pipeline throughput and memory, real broker and ClickHouse, side by side in one run.

Figures (last printed line, JSON):
- ``batched_pings_per_s``: ``hexpulse consume`` (one process, ClickHouse writes included) on a
  2-partition topic of 50-ping batch messages; time from its first record to the write of the
  last window (closed in-stream by a final high-watermark message per partition);
- ``naive_pings_per_s``: the obvious consumer on the same topic (kafka-python + crc32c,
  ``json.loads`` per message, ``h3`` str API per ping, a dict of device sets per (window, cell),
  no ClickHouse);
- ``single_pings_per_s``: ``hexpulse consume`` on 1,000,000 single-ping messages of 1,000,000
  distinct devices, all in one 60 s window; ``rss_mb_1m_devices``: that process's peak RSS;
- ``raw_poll_records_per_s``: kafka-python poll-only on the single-ping topic (the client's
  ceiling); ``batched_vs_raw_poll`` compares pings/s with the poll-only records/s × 50 of the
  batched topic; ``fast_poll_records_per_s``: the same poll-only loop with hexpulse's record-batch
  decoder (aggregate/kafka/records.py), which ``hexpulse consume`` uses, and ``single_vs_fast_poll``
  the pipeline against that faster ceiling;
- ``scaleout_ratio_2_vs_1``: two ``hexpulse consume`` processes (one group, 2 partitions) vs one.

Records are stamped as a gateway would (CreateTime = the message's last ping + 1 s) and keyed so
the default partitioner places them: windows close on record time and ingest dead-letters a
record outside its key's partition (issue #9).

Every rate is the best of ``--repeat`` runs (default 2; the machine is shared), RSS the worst.
Usage: ``.venv/bin/python benchmarks/bench_pipeline.py [--single N] [--batched-messages N]
[--repeat N] [--profile batched|single]``. ``--profile`` runs that case in-process under
cProfile and prints the top functions (cumulative) instead of the JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import platform
import pstats
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import psutil
from kafka.partitioner.default import murmur2
from peers.naive import naive as naive_consumer
from peers.naive import poll_loop

from aggregate.kafka.records import use_fast_records
from hexpulse.kafka import ensure_topics, make_producer
from hexpulse.settings import Settings, load_settings
from hexpulse.store.scratch import create_database, drop_database

HEXPULSE = str(Path(sys.executable).with_name("hexpulse"))
KEY = "cd" * 32  # benchmark-only master key
PARTITIONS = 2
WINDOW_MS = 60_000
LAT = (23.09, 23.17)
LON = (113.26, 113.39)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _window0() -> int:
    return (int(time.time() * 1000) - 40 * 60_000) // WINDOW_MS * WINDOW_MS


UPLOAD_MS = 1000
"""Record timestamp − last ping ``ts`` of every message (the gateway's receive delay), ms."""


def _closer_device(p: int) -> str:
    """A device id the default partitioner (murmur2) places in partition ``p``."""
    names = (f"closer-{p}-{k}" for k in range(1000))
    return next(d for d in names if (murmur2(d.encode()) & 0x7FFFFFFF) % PARTITIONS == p)


def _closers(producer: Any, topic: str, ts: int) -> None:
    """One message per partition whose record timestamp closes every earlier window."""
    for p in range(PARTITIONS):
        dev = _closer_device(p)
        body = orjson.dumps({"v": 1, "device": dev, "ts": ts, "lat": 23.13, "lon": 113.32})
        producer.send(topic, key=dev.encode(), value=body, partition=p, timestamp_ms=ts + UPLOAD_MS)


def produce_batched(s: Settings, topic: str, messages: int) -> tuple[int, int]:
    """Devices upload 50 pings (1 s apart) per message, in event-time order; returns (records, pings)."""
    rng = random.Random(1)
    w0 = _window0()
    per_dev = 12
    devices = max(1, messages // per_dev)
    producer = make_producer(s, linger_ms=50, batch_size=1 << 20, acks=1, max_request_size=8 << 20)
    pos = {d: (rng.uniform(*LAT), rng.uniform(*LON)) for d in range(devices)}
    sent = 0
    for m in range(per_dev):
        for d in range(devices):
            lat, lon = pos[d]
            start = w0 + m * 50_000 + (d % 50) * 20
            pings = []
            for i in range(50):
                lat += rng.gauss(0, 0.00005)
                lon += rng.gauss(0, 0.00005)
                p: dict[str, Any] = {"ts": start + i * 1000, "lat": round(lat, 6), "lon": round(lon, 6)}
                if i % 3:
                    p["spd"] = round(rng.uniform(0, 20), 2)
                pings.append(p)
            pos[d] = (lat, lon)
            dev = f"dev-{d}"
            producer.send(
                topic,
                key=dev.encode(),
                value=orjson.dumps({"v": 1, "device": dev, "pings": pings}),
                timestamp_ms=start + 49 * 1000 + UPLOAD_MS,
            )
            sent += 1
    _closers(producer, topic, w0 + per_dev * 50_000 + 2 * WINDOW_MS)
    producer.flush()
    producer.close()
    return sent + PARTITIONS, sent * 50 + PARTITIONS


def produce_single(s: Settings, topic: str, n: int) -> int:
    """``n`` single pings of ``n`` distinct devices, all inside one 60 s window; returns records."""
    rng = random.Random(2)
    w0 = _window0()
    producer = make_producer(s, linger_ms=50, batch_size=1 << 20, acks=1)
    send = producer.send
    for d in range(n):
        dev = f"d{d}"
        ts = w0 + rng.randrange(WINDOW_MS)
        body = {
            "v": 1,
            "device": dev,
            "ts": ts,
            "lat": round(rng.uniform(*LAT), 6),
            "lon": round(rng.uniform(*LON), 6),
            "spd": round(rng.uniform(0, 20), 2),
        }
        send(topic, key=dev.encode(), value=orjson.dumps(body), timestamp_ms=ts + UPLOAD_MS)
    _closers(producer, topic, w0 + 3 * WINDOW_MS)
    producer.flush()
    producer.close()
    return n + PARTITIONS


def raw_poll(s: Settings, topic: str, total: int, fast: bool = False) -> float:
    """Records/s of kafka-python poll-only (crc32c installed); ``fast``: with hexpulse's decoder."""
    prepare = use_fast_records if fast else None
    return total / poll_loop(s.kafka_bootstrap, topic, PARTITIONS, total, lambda records: None, prepare)


def naive(s: Settings, topic: str, total: int) -> float:
    """Pings/s of the obvious consumer (benchmarks/peers/naive.py): json.loads, h3 str, sets per cell."""
    return naive_consumer(s.kafka_bootstrap, topic, PARTITIONS, total).pings_per_s


def fresh_db(base: Settings, tag: str) -> Settings:
    s = base.model_copy(update={"clickhouse_database": f"hexpulse_bench_{tag}"})
    create_database(s)
    return s


def _env(s: Settings, topic: str, group: str, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEXPULSE_")}
    env.update(
        {
            "HEXPULSE_TOPIC_PINGS": topic,
            "HEXPULSE_TOPIC_DLQ": topic + ".dlq",
            "HEXPULSE_TOPIC_PARTITIONS": str(PARTITIONS),
            "HEXPULSE_CONSUMER_GROUP": group,
            "HEXPULSE_CLICKHOUSE_DATABASE": s.clickhouse_database,
            "HEXPULSE_CLICKHOUSE_PORT": str(s.clickhouse_port),
            "HEXPULSE_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
            "HEXPULSE_MASTER_KEY": KEY,
            "HEXPULSE_STATE_DIR": str(state),
            "HEXPULSE_METRICS_PORT": "0",
            "HEXPULSE_LOG_LEVEL": "WARNING",
        }
    )
    return env


def pipeline(
    base: Settings, topic: str, procs: int, state: Path, tag: str, inspect: Any = None
) -> dict[str, float]:
    """Run ``procs`` × ``hexpulse consume`` in one fresh group and database; pings/s and peak RSS.

    ``inspect(settings)``, if given, runs after the consumers exit and before the database is dropped.
    """
    s = fresh_db(base, tag)
    group = f"bench-{tag}"
    try:
        children = [
            subprocess.Popen(
                [HEXPULSE, "consume", "--exit-when-idle-s", "3", "--print-stats"],
                env=_env(s, topic, group, state),
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(procs)
        ]
        peak = [0]
        done = threading.Event()

        def sample() -> None:
            ps = [psutil.Process(c.pid) for c in children]
            while not done.is_set():
                for p in ps:
                    with contextlib.suppress(psutil.Error):
                        peak[0] = max(peak[0], p.memory_info().rss)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stats = []
        for c in children:
            try:
                out, _ = c.communicate(timeout=240)
            except subprocess.TimeoutExpired:
                c.terminate()
                out, _ = c.communicate(timeout=30)
            lines = [ln for ln in out.decode().splitlines() if ln.startswith("{")]
            if lines:
                stats.append(json.loads(lines[-1]))
        done.set()
        sampler.join()
        active = [st for st in stats if st["first_record_s"] is not None]
        start = min(st["first_record_s"] for st in active)
        end = max(max(st["last_record_s"], st["last_flush_s"] or 0.0) for st in active)
        pings = sum(st["pings"] for st in active)
        if inspect is not None:
            inspect(s)
        return {
            "pings_per_s": pings / (end - start),
            "pings": pings,
            "seconds": end - start,
            "peak_rss_mb": peak[0] / 2**20,
            "processes_with_data": len(active),
        }
    finally:
        drop_database(s)


def profile_inprocess(base: Settings, topic: str, total: int, state: Path) -> None:
    from pydantic import SecretStr

    from aggregate.consumer import ConsumeLoop
    from hexpulse.service_area import load_service_area
    from ingest import Ingestor
    from privacy.keys.pseudonyms import RotatingPseudonymizer

    s = fresh_db(base, "prof_" + uuid.uuid4().hex[:6])
    s = s.model_copy(
        update={
            "topic_pings": topic,
            "consumer_group": "bench-prof-" + uuid.uuid4().hex[:6],
            "master_key": SecretStr(KEY),
            "state_dir": state,
        }
    )
    ingestor = Ingestor(s, load_service_area(s), RotatingPseudonymizer.from_settings(s), None)
    ingestor.warm()
    loop = ConsumeLoop(s, ingestor, stop_when=lambda lp: lp.stats.records >= total and not lp.agg.pending)
    prof = cProfile.Profile()
    try:
        prof.enable()
        loop.run()
        prof.disable()
    finally:
        drop_database(s)
    span = (loop.stats.last_flush_s or 0) - (loop.stats.first_record_s or 0)
    log(f"in-process: {loop.stats.pings} pings in {span:.2f} s under cProfile")
    pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(40)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--single", type=int, default=1_000_000)
    ap.add_argument("--batched-messages", type=int, default=60_000)
    ap.add_argument("--profile", choices=["batched", "single"], default=None)
    ap.add_argument("--repeat", type=int, default=2, help="Best of N for every rate (shared machine).")
    args = ap.parse_args()
    run = uuid.uuid4().hex[:6]
    base = load_settings(topic_partitions=PARTITIONS, metrics_port=0)
    batched_topic, single_topic = f"bench-batched-{run}", f"bench-single-{run}"
    ensure_topics(base, [batched_topic, single_topic, batched_topic + ".dlq", single_topic + ".dlq"])
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        t = time.monotonic()
        b_records, b_pings = produce_batched(base, batched_topic, args.batched_messages)
        log(f"produced {b_records} batched records ({b_pings} pings) in {time.monotonic() - t:.1f} s")
        if args.profile == "batched":
            profile_inprocess(base, batched_topic, b_records, state)
            return
        t = time.monotonic()
        s_records = produce_single(base, single_topic, args.single)
        log(f"produced {s_records} single-ping records in {time.monotonic() - t:.1f} s")
        if args.profile == "single":
            profile_inprocess(base, single_topic, s_records, state)
            return

        n = max(1, args.repeat)
        raw_batched = max(raw_poll(base, batched_topic, b_records) for _ in range(n))
        log(f"raw poll, batched topic: {raw_batched:,.0f} records/s")
        raw_single = max(raw_poll(base, single_topic, s_records) for _ in range(n))
        log(f"raw poll, single topic: {raw_single:,.0f} records/s")
        fast_single = max(raw_poll(base, single_topic, s_records, fast=True) for _ in range(n))
        log(f"poll with hexpulse's batch decoder, single topic: {fast_single:,.0f} records/s")
        naive_rate = max(naive(base, batched_topic, b_records) for _ in range(n))
        log(f"naive consumer, batched topic: {naive_rate:,.0f} pings/s")

        def best(topic: str, procs: int, tag: str) -> dict[str, float]:
            runs = [pipeline(base, topic, procs, state, f"{run}_{tag}{i}") for i in range(n)]
            for r in runs:
                log(f"hexpulse consume x{procs}, {tag}: {r}")
            top = max(runs, key=lambda r: r["pings_per_s"])
            top["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)  # memory: worst run
            return top

        one = best(batched_topic, 1, "b1_")
        single = best(single_topic, 1, "s1_")
        two = best(batched_topic, 2, "b2_")
    figures = {
        "batched_pings_per_s": round(one["pings_per_s"]),
        "naive_pings_per_s": round(naive_rate),
        "ratio_vs_naive": round(one["pings_per_s"] / naive_rate, 2),
        "single_pings_per_s": round(single["pings_per_s"]),
        "raw_poll_records_per_s": round(raw_single),
        "single_vs_raw_poll": round(single["pings_per_s"] / raw_single, 2),
        "fast_poll_records_per_s": round(fast_single),
        "single_vs_fast_poll": round(single["pings_per_s"] / fast_single, 2),
        "raw_poll_batched_records_per_s": round(raw_batched),
        "batched_vs_raw_poll": round(one["pings_per_s"] / (raw_batched * 50), 2),
        "rss_mb_1m_devices": round(single["peak_rss_mb"], 1),
        "scaleout_ratio_2_vs_1": round(two["pings_per_s"] / one["pings_per_s"], 2),
        "scaleout_processes_with_data": two["processes_with_data"],
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
