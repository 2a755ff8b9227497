"""hexpulse against its peers: the same job, same topics, same machine, same run, one after another.

The job: per-minute (60 s tumbling event-time windows, UTC), per-res-9-cell distinct-device counts
from one ping topic. Peers (benchmarks/peers/README.md): (a) Kafka Streams (Java, DSL),
(b) Quix Streams, (c) the naive kafka-python loop, (d) the raw consumer ceiling of
kafka-consumer-perf-test (fetch + decode only, no work), (e) ``hexpulse consume``. Kafka Streams
runs twice: the DSL topology (``streams``: repartition by cell) and a Processor-API one that
counts per input partition (``streams_local``); ``ratio_vs_kafka_streams`` uses the faster. Every peer's
counts are checked against the ground truth of the generated stream (benchmarks/peers/stream.py);
a peer whose counts differ gets no figure (``null``, listed under ``invalid``), and the script
exits 1 if hexpulse's own counts differ. Two topics: 50-ping batch messages and single-ping ones.

Figures (last printed line, JSON): ``ratio_vs_kafka_streams``, ``ratio_vs_quix``,
``ratio_vs_naive`` (hexpulse pings/s over the peer's, batched topic; ``single_ratio_vs_*`` the
same on the single-ping topic), ``batched_vs_ceiling`` and ``single_vs_ceiling`` (hexpulse pings/s
over the ceiling's records/s × pings per record), and every peer's pings/s.

Usage: ``.venv/bin/python benchmarks/bench_peers.py [--devices N] [--windows N] [--single N]
[--repeat N] [--peers a,b,...]``; the broker is ``HEXPULSE_KAFKA_BOOTSTRAP`` (``make bench``'s).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

from peers import hexpulse_peer, jvm
from peers.apps import PeerRun, run_app
from peers.naive import naive
from peers.outputs import check
from peers.stream import WINDOW_MS, Stream, create_topics, produce_batched, produce_single

PARTITIONS = 1  # benchmarks/peers/stream.py says why
PEERS = ("ceiling", "naive", "quix", "streams", "streams_local", "hexpulse")
QUIX_APP = Path(__file__).resolve().parent / "peers" / "quix_app.py"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def best(runs: list[PeerRun]) -> PeerRun:
    """The fastest valid run, else the first (its check says why it has no figure)."""
    valid = [r for r in runs if r.valid_rate is not None]
    return max(valid, key=lambda r: r.valid_rate or 0.0) if valid else runs[0]


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a / b, 2)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=5000, help="Devices per window on the batched topic.")
    ap.add_argument("--windows", type=int, default=12, help="Windows on the batched topic.")
    ap.add_argument("--single", type=int, default=300_000, help="Single-ping messages (distinct devices).")
    ap.add_argument("--repeat", type=int, default=1, help="Best of N runs per peer (shared machine).")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"Subset of {','.join(PEERS)}.")
    ap.add_argument("--commit-ms", type=int, default=1000, help="Kafka Streams commit.interval.ms.")
    args = ap.parse_args()
    wanted = set(args.peers.split(","))
    if "quix" in wanted and importlib.util.find_spec("quixstreams") is None:
        log("bench_peers: quixstreams is not installed; install the bench extra (pip install -e '.[bench]').")
        return 2
    base = hexpulse_peer.settings(PARTITIONS)
    bootstrap = base.kafka_bootstrap
    run = uuid.uuid4().hex[:6]
    t = time.monotonic()
    if wanted & {"streams", "streams_local", "ceiling"}:
        try:
            jvm.build()
        except jvm.BuildError as exc:
            log(f"bench_peers: {exc}.")
            return 2
        log(f"built the Java peers in {time.monotonic() - t:.0f} s")
    w0 = (int(time.time() * 1000) - 40 * 60_000) // WINDOW_MS * WINDOW_MS
    topics = {shape: f"peers-{shape}-{run}" for shape in ("batched", "single")}
    create_topics(bootstrap, [*topics.values(), *(n + ".dlq" for n in topics.values())], PARTITIONS, False)
    t = time.monotonic()
    streams = [
        produce_batched(bootstrap, topics["batched"], PARTITIONS, args.devices, args.windows, w0),
        produce_single(bootstrap, topics["single"], PARTITIONS, args.single, w0),
    ]
    for s in streams:
        log(f"produced {s.topic}: {s.records} records, {s.pings} pings, {len(s.truth)} (window, cell) counts")
    log(f"  ({time.monotonic() - t:.0f} s)")

    rates: dict[str, dict[str, float | None]] = {"batched": {}, "single": {}}
    ceilings: dict[str, float] = {}
    invalid: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        for s in streams:
            def go(name: str, i: int, s: Stream = s) -> PeerRun:
                tag = f"{run}{s.shape[0]}{i}"
                if name == "naive":
                    return _naive(bootstrap, s)
                if name == "quix":
                    return _quix(bootstrap, s, state, tag)
                if name in ("streams", "streams_local"):
                    topology = "local" if name == "streams_local" else "dsl"
                    return _streams(bootstrap, s, state, tag, args.commit_ms, topology)
                return hexpulse_peer.run(base, s, state, tag)

            if "ceiling" in wanted:
                ceilings[s.shape] = max(
                    jvm.consumer_ceiling(bootstrap, s.topic, s.records, f"perf-{run}-{s.shape}-{i}")
                    for i in range(args.repeat)
                )
                log(f"consumer ceiling, {s.shape}: {ceilings[s.shape]:,.0f} records/s "
                    f"= {ceilings[s.shape] * s.pings_per_record:,.0f} pings/s")
            for name in PEERS[1:]:
                if name not in wanted:
                    continue
                runs = [go(name, i) for i in range(args.repeat)]
                for r in runs:
                    log(r.line())
                top = best(runs)
                rates[s.shape][name] = top.valid_rate
                if top.valid_rate is None:
                    invalid.append(f"{name}/{s.shape}")
    figures = _figures(rates, ceilings, streams)
    figures["invalid"] = invalid
    figures["machine"] = f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    print(json.dumps(figures))
    return 1 if any(i.startswith("hexpulse/") for i in invalid) else 0


def _naive(bootstrap: str, s: Stream) -> PeerRun:
    r = naive(bootstrap, s.topic, PARTITIONS, s.records)
    return PeerRun("naive", s.shape, r.pings_per_s, s.pings / r.pings_per_s, check(s.truth, r.counts))


def _quix(bootstrap: str, s: Stream, state: Path, tag: str) -> PeerRun:
    sink = f"{s.topic}.quix-{tag}"
    create_topics(bootstrap, [sink], 1, True)
    cmd = [sys.executable, str(QUIX_APP), bootstrap, s.topic, sink, f"quix-{s.topic}-{tag}",
           str(state / f"quix-{tag}-{s.shape}")]
    return run_app("quix", cmd, bootstrap, s, sink, timeout_s=900)


def _streams(bootstrap: str, s: Stream, state: Path, tag: str, commit_ms: int, topology: str) -> PeerRun:
    sink = f"{s.topic}.streams-{topology}-{tag}"
    create_topics(bootstrap, [sink], 1, True)
    app_id = f"streams-{topology}-{s.topic}-{tag}"
    cmd = jvm.streams_command(bootstrap, s.topic, sink, app_id, state / app_id, commit_ms, topology)
    return run_app(f"kafka-streams-{topology}", cmd, bootstrap, s, sink, timeout_s=900)


def _faster(a: float | None, b: float | None) -> float | None:
    """The faster valid rate of two (the Kafka Streams topologies): compare with the strongest."""
    rates = [r for r in (a, b) if r is not None]
    return max(rates) if rates else None


def _figures(
    rates: dict[str, dict[str, float | None]], ceilings: dict[str, float], streams: list[Stream]
) -> dict[str, object]:
    b, sg = rates["batched"], rates["single"]
    hb, hs = b.get("hexpulse"), sg.get("hexpulse")
    per_record = {s.shape: s.pings_per_record for s in streams}
    out: dict[str, object] = {
        "ratio_vs_kafka_streams": ratio(hb, _faster(b.get("streams"), b.get("streams_local"))),
        "ratio_vs_quix": ratio(hb, b.get("quix")),
        "ratio_vs_naive": ratio(hb, b.get("naive")),
        "single_ratio_vs_kafka_streams": ratio(hs, _faster(sg.get("streams"), sg.get("streams_local"))),
        "single_ratio_vs_quix": ratio(hs, sg.get("quix")),
        "single_ratio_vs_naive": ratio(hs, sg.get("naive")),
    }
    for shape in ("batched", "single"):
        ceiling = ceilings.get(shape)
        pings = None if ceiling is None else ceiling * per_record[shape]
        out[f"{shape}_vs_ceiling"] = ratio(rates[shape].get("hexpulse"), pings)
        out[f"{shape}_ceiling_records_per_s"] = None if ceiling is None else round(ceiling)
        out[f"{shape}_ceiling_pings_per_s"] = None if pings is None else round(pings)
        for name, rate in rates[shape].items():
            out[f"{shape}_{name}_pings_per_s"] = None if rate is None else round(rate)
    return out


if __name__ == "__main__":
    sys.exit(main())
