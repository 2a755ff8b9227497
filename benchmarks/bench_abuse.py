"""How responsive the API stays for a well-behaved client while hostile clients attack it.

Seeds a private database (the API tests' twelve released windows and keys), serves the API in a
separate uvicorn process on loopback with the default limits (api/limits.py), and for each phase
runs one well-behaved client (sequential ``GET /v1/density`` of a district, its own key) for
``PHASE_S`` seconds while an attacker process does one thing:

- ``baseline``: nothing;
- ``sse_alerts_1000`` / ``sse_density_1000``: 1,000 open SSE connections (100 keys × 10, the
  per-key cap) to ``/v1/alerts/stream`` / ``/v1/density/stream``, plus 50 over the caps;
- ``slowloris_500``: 500 connections sending their request headers one byte a second;
- ``sql_strings``: 8 concurrent clients sending SQL-looking strings in every parameter;
- ``oversized_bodies``: 8 clients posting 10 MB bodies (declared, and chunked without a length);
- ``deep_json``: 8 clients posting 1 MB of ``[`` to the JSON routes.

Per phase: the good client's p50/p99 (ms) and ratio of p99 to the baseline's, its errors, and the
attacker's status counts (any 5xx is a defect). Load average at the start and end (2 shared cores:
read the ratios). Last line: JSON of every figure.
Usage: ``.venv/bin/python benchmarks/bench_abuse.py`` (``PHASE_S``, default 15).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from api.keys import KeyStore
from hexpulse.settings import load_settings
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import create_database, drop_database

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/support (the seeded release rows) is not installed

from tests.support.api import CELLS9, bbox_of, seed  # noqa: E402
from tests.support.api_server import free_port  # noqa: E402

PHASE_S = float(os.environ.get("PHASE_S", "15"))
SQL = ("' OR '1'='1", "1; DROP TABLE release_cells; --", "x') UNION SELECT * FROM partials --", "1 OR 1=1")
BBOX = bbox_of(CELLS9, 0.01)
Done = Callable[[], bool]  # whether the attack should end


def good_client(base: str, token: str, seconds: float) -> dict[str, Any]:
    """Sequential requests for ``seconds``: latencies (ms) and failures."""
    lat, errors = [], Counter[str]()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, timeout=10.0) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            try:
                r = client.get("/v1/density", params={"bbox": BBOX, "res": "9"}, headers=headers)
                if r.status_code != 200:
                    errors[str(r.status_code)] += 1
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] += 1
            lat.append((time.perf_counter() - t0) * 1000)
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return {"requests": len(lat), "p50_ms": round(statistics.median(lat), 2), "p99_ms": round(p99, 2),
            "errors": dict(errors)}  # fmt: skip


async def _sse(base: str, path: str, tokens: list[str], per_key: int, done: Done, out: Counter[str]) -> None:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(30.0, read=None), limits=limits) as c:

        async def hold(token: str) -> None:
            params = {"bbox": BBOX} if "density" in path else {}
            headers = {"Authorization": f"Bearer {token}"}
            try:
                async with c.stream("GET", path, params=params, headers=headers) as r:
                    out[str(r.status_code)] += 1
                    if r.status_code == 200:
                        async for _ in r.aiter_bytes():
                            if done():
                                break
            except httpx.HTTPError as exc:
                out[type(exc).__name__] += 1

        tasks = [asyncio.create_task(hold(t)) for t in tokens for _ in range(per_key)]
        tasks += [asyncio.create_task(hold(tokens[0])) for _ in range(50)]  # over the caps
        while not done():
            await asyncio.sleep(0.2)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _slowloris(host: str, port: int, n: int, done: Done, out: Counter[str]) -> None:
    async def one() -> None:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            out[type(exc).__name__] += 1
            return
        out["opened"] += 1
        head = b"GET /v1/density?bbox=" + BBOX.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        request = head + b"X-Pad: " + b"a" * 10_000
        try:
            for byte in request:
                if done():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(1.0)
        except OSError:
            out["closed_by_server"] += 1
        finally:
            writer.close()

    await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)


async def _flood(base: str, token: str, kind: str, done: Done, out: Counter[str]) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    big = b'{"name": "' + b"x" * 10_000_000 + b'"}'
    deep = b"[" * 1_000_000

    async def chunked() -> Any:
        for _ in range(100):
            yield b"x" * 100_000

    async with httpx.AsyncClient(base_url=base, timeout=30.0) as c:

        async def worker(i: int) -> None:
            k = 0
            while not done():
                k += 1
                try:
                    if kind == "sql_strings":
                        sql = SQL[k % len(SQL)]
                        paths = ("/v1/density/series", "/v1/density", "/v1/zones/" + sql, "/v1/alerts/events")
                        path = paths[k % 4]
                        r = await c.get(path, headers=headers, params={"cell": sql, "bbox": sql, "from": sql,
                                                                     "res": sql, "set": sql})  # fmt: skip
                    elif kind == "oversized_bodies":
                        r = await (c.post("/v1/zones", content=big, headers=headers) if k % 2 else
                                   c.post("/v1/zones", content=chunked(), headers=headers))  # fmt: skip
                    else:
                        path = ("/v1/density/area", "/v1/zones")[k % 2]
                        r = await c.post(path, content=deep, headers=headers)
                    out[str(r.status_code)] += 1
                except httpx.HTTPError as exc:
                    out[type(exc).__name__] += 1

        await asyncio.gather(*(worker(i) for i in range(8)))


def attacker(kind: str, base: str, port: int, tokens: list[str], q: Any, stop: Any) -> None:
    """Attack until ``stop`` (an Event) is set. Puts "ready" on ``q`` once the attack is in place
    (every stream answered, every slow connection open, or a first flood answer), then the counts."""
    out: Counter[str] = Counter()
    want = 10 * len(tokens) + 50 if kind.startswith("sse_") else 500 if kind == "slowloris_500" else 1
    started = time.monotonic()
    ready = False

    def done() -> bool:
        nonlocal ready
        if not ready and (sum(out.values()) >= want or time.monotonic() - started > 90):
            ready = True
            q.put("ready")
        return bool(stop.is_set())

    if kind.startswith("sse_"):
        path = "/v1/alerts/stream" if "alerts" in kind else "/v1/density/stream"
        asyncio.run(_sse(base, path, tokens, 10, done, out))
    elif kind == "slowloris_500":
        asyncio.run(_slowloris("127.0.0.1", port, 500, done, out))
    else:
        asyncio.run(_flood(base, tokens[0], kind, done, out))
    if not ready:
        q.put("ready")
    q.put(dict(out))


PHASES = ("baseline", "sse_alerts_1000", "sse_density_1000", "slowloris_500", "sql_strings",
          "oversized_bodies", "deep_json")  # fmt: skip


def main() -> None:
    # A throw-away database the API under test reads as the pipeline's user (development settings
    # permit it), as bench_api.py does.
    dev = load_settings()
    settings = load_settings(clickhouse_database=f"hexpulse_bench_abuse_{os.getpid()}",
                             api_clickhouse_user=dev.clickhouse_user,
                             api_clickhouse_password=dev.clickhouse_password)  # fmt: skip
    create_database(settings)
    data = seed(settings)
    store = KeyStore(ClickHousePool(settings, size=1), cache_s=0)
    attack_tokens = [store.create(f"attacker-{i}", ["admin"])[1] for i in range(100)]
    port = free_port()
    env = {**os.environ, "HEXPULSE_CLICKHOUSE_DATABASE": settings.clickhouse_database,
           "HEXPULSE_RATE_LIMIT_PER_MIN": "100000000", "HEXPULSE_LOG_LEVEL": "WARNING",
           "HEXPULSE_API_CLICKHOUSE_USER": settings.clickhouse_user,
           "HEXPULSE_API_CLICKHOUSE_PASSWORD": settings.clickhouse_password.get_secret_value()}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--no-access-log"], cwd=ROOT, env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    figures: dict[str, Any] = {"phase_s": PHASE_S, "load_avg_start": round(os.getloadavg()[0], 2)}
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        good_client(base, data["tokens"]["density"], 2.0)  # warm the cache and the key snapshot
        ctx = mp.get_context("spawn")
        for phase in PHASES:
            q, stop = ctx.Queue(), ctx.Event()
            proc = None
            if phase != "baseline":
                proc = ctx.Process(target=attacker, args=(phase, base, port, attack_tokens, q, stop))
                proc.start()
                assert q.get(timeout=180) == "ready"  # the attack is in place before measuring
            got = good_client(base, data["tokens"]["density"], PHASE_S)
            if proc is not None:
                stop.set()
                got["attacker"] = q.get(timeout=120)
                proc.join(60)
            figures[phase] = got
            print(phase, got, f"load {os.getloadavg()[0]:.2f}", flush=True)
        p99 = figures["baseline"]["p99_ms"]
        for phase in PHASES[1:]:
            figures[phase]["p99_vs_baseline"] = round(figures[phase]["p99_ms"] / p99, 2)
        figures["attacker_5xx"] = sum(n for ph in PHASES[1:] for code, n in figures[ph]["attacker"].items()
                                      if code.isdigit() and int(code) >= 500 and code != "503")  # fmt: skip
        figures["load_avg_end"] = round(os.getloadavg()[0], 2)
    finally:
        server.terminate()
        server.wait(30)
        drop_database(settings)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
