"""Helpers of the alerts integration tests: a stadium crowd curve published window by window into
the release tables of a scratch database, and a real HTTP receiver (stdlib, in a thread) that
verifies every webhook's signature."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from clickhouse_driver import Client

from alerts.signing import SignatureError, verify
from hexpulse.settings import Settings
from hexpulse.store import connect
from tests.support.release import ts

ZONE = "stadium"
SIGMA = 60.0  # devices: the order of a zone's σ at the default plan (BENCHMARKS.md "Zones")
WARNING, CRITICAL = 3000.0, 5000.0


def stadium_truth(n: int) -> list[float]:
    """Devices in the stadium zone per window: 1,000 before the gates open, a peak of 6,000 at
    the match, back to 1,000 (a raised cosine up and down)."""
    out = []
    for k in range(n):
        x = k / (n - 1)
        out.append(1000.0 + 5000.0 * math.sin(math.pi * x) ** 2)
    return out


@dataclass
class Stadium:
    settings: Settings
    w0: int
    truth: list[float]
    seed: int = 7
    published: int = 0
    estimates: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        self.estimates = [t + rng.gauss(0.0, SIGMA) for t in self.truth]

    def publish(self, upto: int) -> None:
        """Publish windows [published, upto): zone rows first, then the window row (release order)."""
        client: Client = connect(self.settings)
        try:
            for k in range(self.published, upto):
                w = self.w0 + 60 * k
                est = self.estimates[k]
                client.execute(
                    "INSERT INTO release_zones (window_start, zone_set, zone_id, version, count, count_est,"
                    " count_sigma, count_lo, count_hi, cells, plan) VALUES",
                    [(ts(w), "crowd", ZONE, 1, max(0, round(est)), est, SIGMA, est - 1.96 * SIGMA,
                      est + 1.96 * SIGMA, 12, 1)],
                )  # fmt: skip
                client.execute(
                    "INSERT INTO release_windows (window_start, window_end, released_at, base_cells, rho,"
                    " mechanism, lag_s, plan) VALUES",
                    [(ts(w), ts(w + 60), ts(int(time.time())), 100, 0.001, "gaussian", 1.0, 1)],
                )
        finally:
            client.disconnect()
        self.published = max(self.published, upto)


class Receiver:
    """A webhook receiver on 127.0.0.1: records verified messages; ``fail`` decides per request
    whether to answer 503 (with Retry-After: 1) instead of 200."""

    def __init__(self, secret: str, fail: Callable[[], bool] = lambda: False) -> None:
        self.secret = secret
        self.fail = fail
        self.accepted: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.refused = 0
        self.bad_signatures = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    verify(outer.secret, dict(self.headers.items()), body, int(time.time()))
                except SignatureError:
                    with outer.lock:
                        outer.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                if outer.fail():
                    with outer.lock:
                        outer.refused += 1
                    self.send_response(503)
                    self.send_header("Retry-After", "1")
                    self.end_headers()
                    return
                with outer.lock:
                    outer.ids.append(self.headers["webhook-id"])
                    outer.accepted.append(orjson.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for(cond: Callable[[], bool], timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()
