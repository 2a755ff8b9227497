"""The whole system run live next to the simulated city: shared by bench_realtime.py and soak.py.

A fresh database, topics and consumer group on the shared services; the processes (``hexpulse
consume`` × N, ``release``, optionally ``api``, ``alerts``, ``opendata follow``) and the feed
(``hexpulse simulate --speed realtime``) as subprocesses; a sampler thread that records, every
``sample_s``:

- RSS (MB) of every process (psutil, the process itself: each command is one process);
- consumer lag: messages between the group's committed offsets and the partitions' ends;
- release lag: for each window the first time it is seen in ``release_windows`` minus its end
  (s; a client's view, ±``sample_s``), and the server's ``released_at − window_end``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from hexpulse.kafka import ensure_topics
from hexpulse.settings import Settings
from hexpulse.store.client import connect
from hexpulse.store.scratch import create_database, drop_database

HEXPULSE = str(Path(sys.executable).with_name("hexpulse"))
KEY = "ab" * 32  # benchmark-only master key


@dataclass
class Samples:
    """What the sampler saw. ``rss_mb[name]``: (s since start, MB); ``consumer_lag``: (s, messages)."""

    rss_mb: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    consumer_lag: list[tuple[float, int]] = field(default_factory=list)
    release_seen_lag_s: dict[int, float] = field(default_factory=dict)
    """window_start (epoch s) → first seen − window end (s)."""
    release_server_lag_s: dict[int, float] = field(default_factory=dict)
    """window_start (epoch s) → released_at − window end (s)."""


def rss_slope_mb_per_h(points: list[tuple[float, float]], skip_s: float) -> float:
    """Least-squares slope of RSS over time (MB/h), after the first ``skip_s`` s (warm-up)."""
    pts = [(t, m) for t, m in points if t >= skip_s]
    if len(pts) < 3:
        return float("nan")
    t, m = np.array(pts).T
    return float(np.polyfit(t / 3600.0, m, 1)[0])


def pct(values: list[float] | list[int], q: float) -> float:
    return float(np.percentile(np.array(values, dtype=float), q)) if values else float("nan")


class LiveCity:
    """One live run; use as a context manager (everything started is stopped and dropped on exit)."""

    def __init__(
        self,
        base: Settings,
        *,
        minutes: float,
        consumers: int = 2,
        products: bool = False,
        devices: int | None = None,
        lead_s: int = 120,
        sample_s: float = 5.0,
        state: Path,
        skip_truth: bool = False,
        feed: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        tag = uuid.uuid4().hex[:8]
        self.tag, self.minutes, self.consumers, self.products = tag, minutes, consumers, products
        self.devices, self.lead_s, self.sample_s, self.state = devices, lead_s, sample_s, state
        self.skip_truth, self.feed, self.extra_env = skip_truth, feed, env or {}
        self.settings = base.model_copy(
            update={
                "clickhouse_database": f"hexpulse_live_{tag}",
                "topic_pings": f"live-{tag}",
                "topic_dlq": f"live-{tag}.dlq",
                "consumer_group": f"live-{tag}",
                "topic_timestamp_type": "CreateTime",
            }
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.samples = Samples()
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None
        self.t0 = 0.0
        self.feed_start_ms = 0

    def env(self) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEXPULSE_")}
        env |= {
            "HEXPULSE_TOPIC_PINGS": s.topic_pings,
            "HEXPULSE_TOPIC_DLQ": s.topic_dlq,
            "HEXPULSE_TOPIC_PARTITIONS": str(s.topic_partitions),
            "HEXPULSE_TOPIC_TIMESTAMP_TYPE": "CreateTime",
            "HEXPULSE_CONSUMER_GROUP": s.consumer_group,
            "HEXPULSE_CLICKHOUSE_DATABASE": s.clickhouse_database,
            "HEXPULSE_CLICKHOUSE_PORT": str(s.clickhouse_port),
            "HEXPULSE_API_CLICKHOUSE_USER": s.clickhouse_user,
            "HEXPULSE_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
            "HEXPULSE_MASTER_KEY": KEY,
            "HEXPULSE_STATE_DIR": str(self.state),
            "HEXPULSE_METRICS_PORT": "0",
            "HEXPULSE_ALERTS_METRICS_PORT": "0",
            "HEXPULSE_LOG_LEVEL": "WARNING",
        }
        return env | self.extra_env

    def _start(self, name: str, *args: str, **env: str) -> None:
        log = (self.state / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [HEXPULSE, *args], env=self.env() | env, stdout=log, stderr=subprocess.STDOUT
        )

    def __enter__(self) -> LiveCity:
        self.state.mkdir(parents=True, exist_ok=True)
        create_database(self.settings)
        ensure_topics(self.settings, [self.settings.topic_pings, self.settings.topic_dlq])
        # The feed starts lead_s from now: the city is set up and its first minute generated
        # before its own event time comes, so "behind real time" measures the run, not set-up.
        self.feed_start_ms = (int(time.time()) + self.lead_s) * 1000
        size = ["--devices", str(self.devices)] if self.devices else []
        if self.feed:  # feed False: the caller produces (bench_tourism.py, its own stream)
            self._start(
                "simulator", "simulate", *size, "--duration", f"{self.minutes * 60:.0f}s",
                "--start", str(self.feed_start_ms), "--speed", "realtime", "--seed", "2",
                "--topic", self.settings.topic_pings, *(["--skip-truth"] if self.skip_truth else []),
                "--truth", str(self.state / "truth.json"),
            )  # fmt: skip
        for i in range(self.consumers):
            self._start(f"consumer-{i + 1}", "consume")
        self._start("releaser", "release")
        if self.products:
            self._start("api", "api", HEXPULSE_API_PORT=str(_free_port()))
            self._start("alerts", "alerts")
            self._start("exporter", "opendata", "follow", HEXPULSE_OPENDATA_DIR=str(self.state / "open-data"))
        self.t0 = time.monotonic()
        self._sampler = threading.Thread(target=self._sample, name="live-city-sampler", daemon=True)
        self._sampler.start()
        return self

    def wait_feed(self, timeout_s: float) -> int:
        """Wait for the simulator to finish; its exit code."""
        return self.procs["simulator"].wait(timeout=timeout_s)

    def alive(self) -> dict[str, bool]:
        return {n: p.poll() is None for n, p in self.procs.items()}

    def _sample(self) -> None:
        s = self.settings
        ps = {n: psutil.Process(p.pid) for n, p in self.procs.items()}
        admin = KafkaAdminClient(bootstrap_servers=s.kafka_bootstrap.split(","))
        ends = KafkaConsumer(bootstrap_servers=s.kafka_bootstrap.split(","))
        tps = [TopicPartition(s.topic_pings, p) for p in range(s.topic_partitions)]
        ch = connect(s)
        try:
            while not self._stop.wait(self.sample_s):
                now = time.monotonic() - self.t0
                for name, proc in ps.items():
                    if self.procs[name].poll() is not None:
                        continue  # exited (the feed at its end): no more samples, not zeros
                    with contextlib.suppress(psutil.Error):
                        self.samples.rss_mb.setdefault(name, []).append((now, proc.memory_info().rss / 2**20))
                with contextlib.suppress(Exception):  # a sample lost to a busy broker is only a gap
                    committed = admin.list_group_offsets(s.consumer_group).get(s.consumer_group, {})
                    end = ends.end_offsets(tps)
                    lag = sum(end[tp] - (committed[tp].offset if tp in committed else 0) for tp in tps)
                    self.samples.consumer_lag.append((now, int(lag)))
                seen = time.time()
                rows = ch.execute(
                    "SELECT toUInt32(window_start), toUInt32(window_end), toUInt32(released_at)"
                    " FROM release_windows FINAL"
                )
                for start, end_s, released in rows:
                    if start not in self.samples.release_seen_lag_s:
                        self.samples.release_seen_lag_s[start] = seen - end_s
                        self.samples.release_server_lag_s[start] = float(released - end_s)
        finally:
            ch.disconnect()
            ends.close()
            admin.close()

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(timeout=30)
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        drop_database(self.settings)
        admin = KafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap.split(","))
        with contextlib.suppress(Exception):  # retention empties a topic left behind within a day
            admin.delete_topics([self.settings.topic_pings, self.settings.topic_dlq])
        admin.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"
