"""API speed over the real ClickHouse: city-wide density under load, cache effect, SSE fan-out.

Seeds a private database with the default service area's ~5,146 res-9 cells (plus res 8 and 7) for
a few released windows, serves the API in a separate uvicorn process on loopback, then:

1. ``GET /v1/density`` city-wide bbox, res 9, GeoJSON, ``at=latest``, 50 concurrent clients
   (bounded: ``N_REQUESTS`` requests or ``MAX_S`` seconds) → RPS, p50, p99.
2. Cached vs uncached: one client; the first request for each of several windows (cells read
   from ClickHouse and serialized) vs repeats (served from the in-process cache) → median ratio.
3. SSE: 200 subscribers on ``/v1/density/stream`` (a district bbox, rows format); three windows
   are released; every subscriber must receive the initial window and all three.

Last line: JSON with ``density_rps``, ``density_p50_ms``, ``density_p99_ms``,
``cached_vs_uncached_speedup``, ``sse_subscribers_all_received`` (and a few context figures).
Usage: ``.venv/bin/python benchmarks/bench_api.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import h3
import httpx

from api.keys import KeyStore
from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings, load_settings
from hexpulse.store import apply_migrations, connect
from hexpulse.store.pool import ClickHousePool
from hexpulse.times import utc_from_ms, window_start

CONCURRENCY = 50
N_REQUESTS = 6000
MAX_S = 20.0
N_WINDOWS = 8
SSE_SUBSCRIBERS = 200
SSE_NEW_WINDOWS = 3
WORKERS = int(os.environ.get("BENCH_API_WORKERS", "1"))
ROOT = Path(__file__).resolve().parents[1]


def seed(settings: Settings, windows: list[datetime]) -> int:
    area = load_service_area(settings)
    rng = random.Random(7)
    client = connect(settings)
    rows = []
    for w in windows:
        wn = w.replace(tzinfo=None)
        for res in settings.release_resolutions:
            for cell in area.cells_at(res):
                count = rng.randint(0, 400) * (7 ** (9 - res))
                speed = None if rng.random() < 0.3 else rng.uniform(10, 60)
                lo_hi = (None, None) if speed is None else (speed - 5, speed + 5)
                rows.append((wn, res, int(cell), count, 14.0, max(0.0, count - 27.4), count + 27.4,
                             count // 3, 14.0, 0.0, count // 3 + 27.4, speed, *lo_hi))  # fmt: skip
    client.execute(
        "INSERT INTO release_cells (window_start, res, cell, count, count_sigma, count_lo, count_hi, moving,"
        " moving_sigma, moving_lo, moving_hi, speed_kmh, speed_lo_kmh, speed_hi_kmh) VALUES",
        rows,
    )
    client.disconnect()
    return int(area.cells.size)


def publish(settings: Settings, window: datetime) -> None:
    client = connect(settings)
    w = window.replace(tzinfo=None)
    client.execute(
        "INSERT INTO release_windows (window_start, window_end, released_at, base_cells, rho, mechanism,"
        " lag_s) VALUES",
        [(w, w + timedelta(seconds=60), w + timedelta(seconds=61), 0, 0.001, "gaussian", 1.0)],
    )
    client.disconnect()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class RawClient:
    """A minimal keep-alive HTTP/1.1 GET client on asyncio streams.

    httpx spends more CPU per 400 kB response than the server does; on a 2-core machine the load
    generator would then measure itself. This client reads status, headers and exactly
    Content-Length body bytes (gzip, not decoded).
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self, target: str, headers: dict[str, str]) -> tuple[int, int, str]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(
            f"GET {target} HTTP/1.1\r\nHost: {self.host}\r\nAccept-Encoding: gzip\r\n{head}\r\n".encode()
        )
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(int(ln.split(":", 1)[1]) for ln in lines if ln.lower().startswith("content-length:"))
        await self.reader.readexactly(length)
        cache = next((ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith("x-cache:")), "")
        return status, length, cache

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def warm(base: str, headers: dict[str, str], params: dict[str, str]) -> None:
    """Fill every worker's caches (cells, payload, key snapshot) before measuring; not counted."""
    host, port = base.removeprefix("http://").split(":")
    target = "/v1/density?" + urlencode(params)
    clients = [RawClient(host, int(port)) for _ in range(CONCURRENCY)]
    await asyncio.gather(*(c.get(target, headers) for c in clients))
    for c in clients:
        await c.close()


async def load_test(base: str, headers: dict[str, str], params: dict[str, str]) -> dict[str, float]:
    host, port = base.removeprefix("http://").split(":")
    target = "/v1/density?" + urlencode(params)
    latencies: list[float] = []
    wire_bytes: list[int] = []
    sent = 0
    deadline = time.perf_counter() + MAX_S

    async def worker(client: RawClient) -> None:
        nonlocal sent
        while sent < N_REQUESTS and time.perf_counter() < deadline:
            sent += 1
            t = time.perf_counter()
            status, size, _ = await client.get(target, headers)
            latencies.append(time.perf_counter() - t)
            assert status == 200 and size > 0
            wire_bytes.append(size)

    clients = [RawClient(host, int(port)) for _ in range(CONCURRENCY)]
    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in clients))
    elapsed = time.perf_counter() - started
    for c in clients:
        await c.close()
    return {
        "density_rps": round(len(latencies) / elapsed, 1),
        "density_p50_ms": round(pct(latencies, 0.50) * 1000, 1),
        "density_p99_ms": round(pct(latencies, 0.99) * 1000, 1),
        "density_requests": len(latencies),
        "density_wire_bytes": int(statistics.median(wire_bytes)),
    }


def server_buckets(base: str, headers: dict[str, str]) -> list[tuple[float, float]]:
    """Cumulative /v1/density handling-time histogram of the worker that answers (le s, count)."""
    text = httpx.get(f"{base}/metrics", headers=headers).text
    buckets = []
    for line in text.splitlines():
        if line.startswith("hexpulse_api_request_seconds_bucket") and 'route="/v1/density"' in line:
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.rsplit(" ", 1)[1])))
    return buckets


def server_quantiles(before: list[tuple[float, float]], after: list[tuple[float, float]]) -> dict[str, float]:
    """Server-side p50/p99 of the measured phase only, as histogram bucket upper bounds (ms)."""
    counts = dict(before)
    delta = [(le, n - counts.get(le, 0.0)) for le, n in after]
    total = delta[-1][1]
    out: dict[str, float] = {}
    for name, q in (("server_p50_le_ms", 0.5), ("server_p99_le_ms", 0.99)):
        le = next(le for le, n in delta if n >= q * total)
        out[name] = le * 1000 if le != float("inf") else -1.0  # -1: above the largest bucket
    return out


async def cache_test(
    base: str, headers: dict[str, str], bbox: str, windows: list[datetime]
) -> dict[str, float]:
    """One client, sequential: first request per window (ClickHouse read + serialization + gzip)
    vs the next five (in-process cache)."""
    host, port = base.removeprefix("http://").split(":")
    client = RawClient(host, int(port))
    cold: list[float] = []
    warm: list[float] = []
    for w in windows:
        target = "/v1/density?" + urlencode(
            {"bbox": bbox, "res": "9", "at": w.strftime("%Y-%m-%dT%H:%M:%SZ")}
        )
        for i in range(6):
            t = time.perf_counter()
            status, _, cache = await client.get(target, headers)
            elapsed = time.perf_counter() - t
            assert status == 200 and cache == ("miss" if i == 0 else "hit")
            (cold if i == 0 else warm).append(elapsed)
    await client.close()
    return {
        "uncached_ms": round(statistics.median(cold) * 1000, 1),
        "cached_ms": round(statistics.median(warm) * 1000, 2),
        "cached_vs_uncached_speedup": round(statistics.median(cold) / statistics.median(warm), 1),
    }


async def sse_test(
    base: str, headers: dict[str, str], bbox: str, settings: Settings, new: list[datetime]
) -> bool:
    want = 1 + len(new)
    got = [0] * SSE_SUBSCRIBERS
    connected = asyncio.Event()
    opened = 0

    async def subscriber(i: int, client: httpx.AsyncClient) -> None:
        nonlocal opened
        url = "/v1/density/stream"
        params = {"bbox": bbox, "res": "9", "format": "rows"}
        async with client.stream("GET", url, params=params, headers=headers) as resp:
            assert resp.status_code == 200
            opened += 1
            if opened == SSE_SUBSCRIBERS:
                connected.set()
            async for line in resp.aiter_lines():
                if line.startswith("event: window"):
                    got[i] += 1
                    if got[i] >= want:
                        return

    limits = httpx.Limits(max_connections=SSE_SUBSCRIBERS + 5)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60.0) as client:
        tasks = [asyncio.create_task(subscriber(i, client)) for i in range(SSE_SUBSCRIBERS)]
        await asyncio.wait_for(connected.wait(), 60)
        for w in new:
            await asyncio.sleep(1.0)
            await asyncio.to_thread(publish, settings, w)
        done, pending = await asyncio.wait(tasks, timeout=60)
        for task in pending:
            task.cancel()
    return all(g == want for g in got)


def main() -> None:
    database = f"hexpulse_bench_api_{uuid.uuid4().hex[:6]}"
    # A throw-away database that the development API user (deploy/local/services.sh) is not allowed
    # into: the API under test reads it as the pipeline's user, which development settings permit.
    dev = load_settings()
    settings = load_settings(clickhouse_database=database, api_clickhouse_user=dev.clickhouse_user,
                             api_clickhouse_password=dev.clickhouse_password)  # fmt: skip
    apply_migrations(connect(settings, use_db=False), database, settings.exact_database)
    now = utc_from_ms(window_start(int(time.time() * 1000), 60_000))
    windows = [
        now - timedelta(minutes=N_WINDOWS + SSE_NEW_WINDOWS - k) for k in range(N_WINDOWS + SSE_NEW_WINDOWS)
    ]
    released, future = windows[:N_WINDOWS], windows[N_WINDOWS:]
    base_cells = seed(settings, windows)
    for w in released:
        publish(settings, w)
    _, token = KeyStore(ClickHousePool(settings, size=1), cache_s=0).create("bench", ["admin"])
    port = 18000 + random.randint(0, 999)
    env = {**os.environ, "HEXPULSE_CLICKHOUSE_DATABASE": database, "HEXPULSE_RATE_LIMIT_PER_MIN": "100000000",
           "HEXPULSE_API_STREAM_POLL_S": "0.5", "HEXPULSE_API_CLICKHOUSE_USER": settings.clickhouse_user,
           "HEXPULSE_API_STREAMS_PER_KEY": "1000",  # 200 subscribers share the one bench key
           "HEXPULSE_API_CLICKHOUSE_PASSWORD": settings.clickhouse_password.get_secret_value()}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log", "--workers", str(WORKERS)],
        cwd=ROOT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}"}
        w, s, e, n = load_service_area(settings).geometry.bounds
        city = f"{w},{s},{e},{n}"
        cx, cy = (w + e) / 2, (s + n) / 2
        district = f"{cx - 0.03},{cy - 0.03},{cx + 0.03},{cy + 0.03}"
        figures: dict[str, object] = {"released_cells_per_window_res9": base_cells}
        params = {"bbox": city, "res": "9", "at": "latest"}
        asyncio.run(warm(base, headers, params))
        before = server_buckets(base, headers)
        figures.update(asyncio.run(load_test(base, headers, params)))
        if WORKERS == 1:  # with several workers /metrics answers for one of them only
            figures.update(server_quantiles(before, server_buckets(base, headers)))
        figures["load_avg_1m"] = os.getloadavg()[0]
        figures.update(asyncio.run(cache_test(base, headers, city, released[:-1])))
        figures["sse_subscribers"] = SSE_SUBSCRIBERS
        figures["sse_district_cells"] = len(h3.h3shape_to_cells_experimental(
            h3.LatLngPoly([(cy - 0.03, cx - 0.03), (cy - 0.03, cx + 0.03), (cy + 0.03, cx + 0.03),
                           (cy + 0.03, cx - 0.03)]), 9, contain="overlap"))  # fmt: skip
        figures["sse_subscribers_all_received"] = asyncio.run(
            sse_test(base, headers, district, settings, future)
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
        admin = connect(settings, use_db=False)
        for db in (database, settings.exact_database):
            admin.execute(f"DROP DATABASE IF EXISTS {db}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
