"""Shared pieces of the aggregate integration tests: a per-test database and topic, a stream of
pings with late, duplicate, speed-less and malformed messages, its exact expected partials (by the
plain reference in tests/support/aggregate_reference.py) and readers of what the consumer wrote."""

from __future__ import annotations

import math
import os
import random
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h3
import numpy as np
import orjson

from hexpulse.kafka import ensure_topics, make_producer
from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.progress import COLUMNS, Coverage, ProgressRow
from hexpulse.store.scratch import create_database
from tests.support.aggregate_reference import Ping, reference

HEXPULSE = str(Path(sys.executable).with_name("hexpulse"))
"""The venv's ``hexpulse`` entry point, for tests that run consumers as subprocesses."""

TEST_KEY = "ab" * 32  # a fixed 32-byte master key (hex) for test runs only
Key = tuple[int, int]  # (window_start_ms, cell)


def agg_settings(base: Settings, unique: str, **extra: object) -> Settings:
    """Own database, topics and group for one test; 10 s windows, 5 s lateness, 1 s idle close."""
    tag = unique.replace("-", "_")
    s = base.model_copy(
        update={
            "clickhouse_database": f"hexagg_{tag}",
            "topic_pings": f"aggp-{unique}",
            "topic_dlq": f"aggp-{unique}.dlq",
            "consumer_group": f"agg-{unique}",
            "window_s": 10,
            "lateness_s": 5,
            "idle_timeout_s": 1.0,
            "windows_per_device_day": 8640,
            "topic_partitions": 3,
            "master_key": None,
            **extra,
        }
    )
    create_database(s)
    ensure_topics(s, [s.topic_pings, s.topic_dlq])
    return s


def env_for(s: Settings) -> dict[str, str]:
    """Environment for a ``hexpulse consume`` subprocess bound to these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEXPULSE_")}
    for name in (
        "clickhouse_database",
        "clickhouse_host",
        "clickhouse_port",
        "topic_pings",
        "topic_dlq",
        "topic_partitions",
        "consumer_group",
        "window_s",
        "lateness_s",
        "idle_timeout_s",
        "windows_per_device_day",
        "kafka_bootstrap",
        "state_dir",
        "consumer_max_poll_records",
        "shutdown_timeout_s",
        "consumer_stall_timeout_s",
        "sink_retry_max_s",
        "metrics_port",
    ):
        env[f"HEXPULSE_{name.upper()}"] = str(getattr(s, name))
    env["HEXPULSE_MASTER_KEY"] = TEST_KEY
    env["HEXPULSE_LOG_LEVEL"] = "WARNING"
    return env


@dataclass
class Stream:
    """What was produced: valid pings by partition (offset order) and message counts."""

    by_partition: dict[int, list[Ping]] = field(default_factory=lambda: defaultdict(list))
    messages: int = 0
    pings_in: int = 0
    malformed_pings: int = 0
    max_ts_ms: int = 0


def produce_stream(s: Settings, *, devices: int, span_s: int, seed: int, step_s: float = 3.0) -> Stream:
    """Produce a city's worth of pings ending ~5 minutes ago: single and batched messages, ~8 % late
    re-sends of old pings, ~3 % exact duplicates, speed missing on ~30 %, ~5 % malformed messages.

    Each record's timestamp is the time it was sent, as a gateway stamps it (CreateTime), in send
    order: so the partition clock is what a live broker's LogAppendTime would have given."""
    rng = random.Random(seed)
    area = load_service_area(s)
    end_ms = (int(time.time()) - 300) * 1000
    start_ms = end_ms - span_s * 1000
    msgs: list[tuple[float, bytes, bytes, list[dict[str, object]] | None]] = []
    for d in range(devices):
        dev = f"device-{seed}-{d}"
        lat, lon = rng.uniform(23.09, 23.17), rng.uniform(113.26, 113.39)
        t = start_ms + rng.randrange(0, 5000)
        pings: list[dict[str, object]] = []
        while t < end_ms:
            lat += rng.gauss(0, 0.0004)
            lon += rng.gauss(0, 0.0004)
            p: dict[str, object] = {"ts": t, "lat": round(lat, 6), "lon": round(lon, 6)}
            if rng.random() < 0.7:
                p["spd"] = round(rng.choice([rng.uniform(0, 3), rng.uniform(0, 25)]), 2)
            pings.append(p)
            t += int(rng.uniform(0.3, 2) * step_s * 1000)
        i = 0
        while i < len(pings):
            k = rng.choice([1, 1, 1, 2, 5, 12])
            chunk = pings[i : i + k]
            i += k
            sent = int(chunk[-1]["ts"]) + rng.randrange(0, 2500)  # type: ignore[call-overload]
            if rng.random() < 0.08:
                sent += rng.randrange(6000, 25_000)  # arrives after its window may have closed
            body = (
                {"v": 1, "device": dev, "pings": chunk}
                if len(chunk) > 1
                else {"v": 1, "device": dev, **chunk[0]}
            )
            msgs.append((sent, dev.encode(), orjson.dumps(body), chunk))
            if rng.random() < 0.03:
                msgs.append((sent + rng.randrange(0, 3000), dev.encode(), orjson.dumps(body), chunk))
            if rng.random() < 0.05:
                bad = rng.choice(["json", "lat", "key"])
                if bad == "json":
                    msgs.append((sent, dev.encode(), b'{"v": 1, "device": ', None))
                elif bad == "lat":
                    msgs.append(
                        (
                            sent,
                            dev.encode(),
                            orjson.dumps({"v": 1, "device": dev, **chunk[0], "lat": 91.5}),
                            None,
                        )
                    )
                else:
                    msgs.append((sent, b"other", orjson.dumps({"v": 1, "device": dev, **chunk[0]}), None))
    msgs.sort(key=lambda m: m[0])
    producer = make_producer(s, linger_ms=5, batch_size=256 * 1024)
    futures = [
        (producer.send(s.topic_pings, key=k, value=v, timestamp_ms=int(sent)), chunk, k, int(sent))
        for sent, k, v, chunk in msgs
    ]
    producer.flush()
    out = Stream()
    dev_id: dict[bytes, int] = {}
    for fut, chunk, key, sent_ms in futures:
        md = fut.get(timeout=30)
        out.messages += 1
        if chunk is None:
            out.pings_in += 1
            out.malformed_pings += 1
            continue
        out.pings_in += len(chunk)
        dev = dev_id.setdefault(key, len(dev_id))
        for p in chunk:
            lat, lon = float(p["lat"]), float(p["lon"])  # type: ignore[arg-type]
            cell = h3.latlng_to_cell(lat, lon, s.base_resolution)
            cell_int = h3.str_to_int(cell)
            if not area.contains(np.array([cell_int], np.uint64))[0]:
                continue  # outside_area: rejected by ingest
            spd = float(p["spd"]) if "spd" in p else math.nan  # type: ignore[arg-type]
            ts = int(p["ts"])  # type: ignore[call-overload]
            out.by_partition[md.partition].append(Ping(md.offset, dev, ts, lat, lon, spd, cell_int, sent_ms))
            out.max_ts_ms = max(out.max_ts_ms, ts)
    producer.close()
    return out


def expected(
    s: Settings, stream: Stream
) -> tuple[dict[tuple[int, int, int], tuple[int, int, int]], int, int]:
    """Exact partials {(window_ms, cell, partition): (devices, moving, speed_sum)}, late, duplicates."""
    out: dict[tuple[int, int, int], tuple[int, int, int]] = {}
    late = dup = 0
    for part, pings in stream.by_partition.items():
        rows, lt, dp = reference(pings, s.window_ms, s.lateness_ms, wpd=s.windows_per_device_day)
        late += lt
        dup += dp
        for (w, c), v in rows.items():
            out[(w, c, part)] = v
    return out, late, dup


def coverage(s: Settings) -> Coverage:
    """The counted closings of every partition (the releaser's rule, hexpulse/store/progress.py)."""
    client = connect(s)
    rows = client.execute(
        f"SELECT {COLUMNS} FROM {s.exact_database}.progress FINAL WHERE topic = %(t)s", {"t": s.topic_pings}
    )
    client.disconnect()
    return Coverage([ProgressRow.of(r) for r in rows])


def read_rows(s: Settings) -> dict[tuple[int, int, int], tuple[int, int, int, int, tuple[int, ...]]]:
    """The partials the releaser counts, with their close_offset and speed bins:
    {(window_ms, cell, partition): (devices, moving, speed_sum, close_offset, speed_bins)}."""
    cov = coverage(s)
    client = connect(s)
    rows = client.execute(
        "SELECT toUnixTimestamp(window_start), cell, partition, closing, devices, moving, speed_sum, "
        f"close_offset, speed_bins FROM {s.exact_database}.partials FINAL"
    )
    client.disconnect()
    out = {}
    for w, c, p, closing, d, m, sp, o, bins in rows:
        counted = cov.counted(int(p), int(w) * 1000)
        if counted is not None and counted.closing == int(closing):
            key = (int(w) * 1000, int(c), int(p))
            out[key] = (int(d), int(m), int(sp), int(o), tuple(int(b) for b in bins))
    return out


def read_partials(s: Settings) -> dict[tuple[int, int, int], tuple[int, int, int]]:
    """The partials the releaser counts: {(window_ms, cell, partition): (devices, moving, speed_sum)}."""
    return {k: v[:3] for k, v in read_rows(s).items()}


def read_horizons(s: Settings) -> dict[int, int]:
    """Per partition, the start (ms) of the first window without a counted closing."""
    cov = coverage(s)
    found = {p: cov.horizon(p) for p in range(s.topic_partitions)}
    return {p: h for p, h in found.items() if h is not None}


def all_closed(s: Settings, stream: Stream | int) -> bool:
    """True once every partition's horizon is past the last event time (ms) of the stream."""
    max_ts = stream if isinstance(stream, int) else stream.max_ts_ms
    need = max_ts // s.window_ms * s.window_ms + s.window_ms
    h = read_horizons(s)
    return len(h) == s.topic_partitions and all(v >= need for v in h.values())


def state_dir(tmp: Path) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    return tmp


def run_in_process(
    s: Settings, stream: Stream | None, timeout_s: float = 60.0, *, messages: int = 0, max_ts_ms: int = 0
) -> tuple[Any, Any]:
    """Consume the whole stream in this process (fault-free); return (loop stats, aggregate stats).

    Without a ``stream``, ``messages`` and ``max_ts_ms`` say what to wait for."""
    messages = messages or (stream.messages if stream is not None else 0)
    max_ts_ms = max_ts_ms or (stream.max_ts_ms if stream is not None else 0)
    from pydantic import SecretStr

    from aggregate.consumer import ConsumeLoop
    from ingest import Ingestor, KafkaDeadLetterSink
    from privacy.keys.pseudonyms import RotatingPseudonymizer
    from privacy.keys.sealing import PayloadSealer

    s = s.model_copy(update={"master_key": SecretStr(TEST_KEY)})
    dlq = KafkaDeadLetterSink(s, PayloadSealer.from_settings(s))
    ingestor = Ingestor(s, load_service_area(s), RotatingPseudonymizer.from_settings(s), dlq)
    deadline = time.monotonic() + timeout_s
    checked = {"at": 0.0}

    def done(loop: ConsumeLoop) -> bool:
        if time.monotonic() > deadline:
            return True
        if loop.stats.records < messages or loop.agg.pending:
            return False
        if time.monotonic() - checked["at"] < 0.5:
            return False
        checked["at"] = time.monotonic()
        return all_closed(s, max_ts_ms)

    loop = ConsumeLoop(s, ingestor, stop_when=done)
    loop.run()
    dlq.close()
    return loop.stats, loop.agg.stats


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateClickHouse:
    """A ClickHouse server of our own (own data folder and ports) that a test may stop and start;
    the shared server on 19000 is never touched. Config derived like deploy/local/services.sh."""

    def __init__(self, root: Path) -> None:
        import re

        self.root = root
        self.port = free_port()
        http, inter = free_port(), free_port()
        for sub in ("data", "tmp", "user_files", "format_schemas", "log"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        cfg = Path("/etc/clickhouse-server/config.xml").read_text()
        subs = {
            r"<path>[^<]*</path>": f"<path>{root}/data/</path>",
            r"<tmp_path>[^<]*</tmp_path>": f"<tmp_path>{root}/tmp/</tmp_path>",
            r"<user_files_path>[^<]*</user_files_path>": (
                f"<user_files_path>{root}/user_files/</user_files_path>"
            ),
            r"<format_schema_path>[^<]*</format_schema_path>": (
                f"<format_schema_path>{root}/format_schemas/</format_schema_path>"
            ),
            r"/var/log/clickhouse-server/": f"{root}/log/",
            r"<http_port>\d+</http_port>": f"<http_port>{http}</http_port>",
            r"<tcp_port>\d+</tcp_port>": f"<tcp_port>{self.port}</tcp_port>",
            r"<interserver_http_port>\d+</interserver_http_port>": (
                f"<interserver_http_port>{inter}</interserver_http_port>"
            ),
            r"<users_config>users.xml</users_config>": f"<users_config>{root}/users.xml</users_config>",
        }
        for pat, rep in subs.items():
            cfg = re.sub(pat, rep, cfg)
        (root / "config.xml").write_text(cfg)
        (root / "users.xml").write_text(Path("/etc/clickhouse-server/users.xml").read_text())
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def binary(self) -> str:
        return shutil.which("clickhouse-server") or "/usr/sbin/clickhouse-server"

    def start(self, timeout_s: float = 60.0) -> None:
        from clickhouse_driver import Client

        log = (self.root / "log" / "stdout.log").open("ab")
        self.proc = subprocess.Popen(
            [
                shutil.which("clickhouse-server") or "/usr/sbin/clickhouse-server",
                f"--config-file={self.root}/config.xml",
            ],
            cwd=self.root,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                Client("127.0.0.1", port=self.port, connect_timeout=1).execute("SELECT 1")
                return
            except Exception:  # noqa: BLE001 - not up yet
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"private ClickHouse did not start; see {self.root}/log") from None
                time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def scrape(port: int) -> dict[str, float]:
    """Unlabelled samples of a Prometheus text endpoint."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:  # noqa: S310
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out
