"""Hostile input (issue #15, RELIABILITY.md §4): SQL-looking strings in every parameter of every
documented route, oversized and chunked bodies, deeply nested JSON, and more open streams than the
limits allow. Every answer is a 4xx with a sentence or a success, never a 5xx, and SQL-looking text
is data: stored and returned verbatim, never run. (How responsive the API stays for a well-behaved
client meanwhile is benchmarks/bench_abuse.py's.)"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from alerts import events as alert_events
from api.alert_marks import EventMarks
from api.app import create_app
from hexpulse.settings import Settings
from hexpulse.store.pool import ClickHousePool
from hexpulse.times import epoch_s, naive_utc_now
from tests.support.api import CELLS9, app_client, bbox_of, bearer, seeded
from tests.support.api_server import serving

pytestmark = pytest.mark.integration

SQL = (
    "' OR '1'='1",
    "1; DROP TABLE release_cells; --",
    "x') UNION SELECT devices FROM hexpulse_exact.partials --",
    "%27%20OR%201%3D1",
    "\\'; SELECT sleep(3); --",
    "1 OR 1=1",
)
STREAMS = ("/v1/density/stream", "/v1/alerts/stream")


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    yield from seeded(migrated, "apiab", api_max_body_bytes=65_536, api_streams_per_key=3, api_max_streams=5)


@pytest.fixture(scope="module")
def api(data: dict[str, Any]) -> Iterator[TestClient]:
    yield from app_client(data)


def _routes(client: TestClient) -> list[tuple[str, str, list[dict[str, Any]]]]:
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return [(m.upper(), p, op.get("parameters", [])) for p, ops in paths.items() for m, op in ops.items()
            if p not in STREAMS]  # fmt: skip


def _answer_ok(r: httpx.Response) -> str | None:
    """None when the response is a success or a 4xx with a sentence; else what is wrong."""
    if r.status_code >= 500:
        return f"{r.status_code} {r.text[:120]}"
    if 400 <= r.status_code < 500 and not r.json().get("detail"):
        return f"{r.status_code} without a sentence: {r.text[:120]}"
    return None


def test_sql_looking_strings_in_every_parameter_are_refused_or_data(
    api: TestClient, data: dict[str, Any]
) -> None:
    headers = bearer(data, "admin")
    valid = {"bbox": bbox_of(CELLS9, 0.01), "cell": f"{CELLS9[0]:x}"}
    wrong, calls = [], 0
    for method, path, params in _routes(api):
        if method == "DELETE":
            continue  # deleting the seeded resources would only shrink what the others reach
        query = [p["name"] for p in params if p["in"] == "query"]
        for sql in SQL:
            url = re.sub(r"\{[^}]+\}", sql.replace("/", "%2F"), path)
            for name in query or [None]:
                q = {k: v for k, v in valid.items() if k in query}
                if name is not None:
                    q[name] = sql
                body = {"name": sql, "set": sql, "id": sql} if method in ("POST", "PUT") else None
                r = api.request(method, url, params=q, headers={**headers, "Last-Event-ID": sql}, json=body)
                calls += 1
                if (problem := _answer_ok(r)) is not None:
                    wrong.append(f"{method} {path} [{name}={sql!r}]: {problem}")
    assert not wrong, "\n".join(wrong[:20])
    assert calls > 200  # every route and parameter was reached


def test_sql_looking_text_is_stored_and_returned_verbatim(api: TestClient, data: dict[str, Any]) -> None:
    name = "x'); DROP TABLE zones; -- \" OR 1=1"
    ring = [[113.31, 23.12], [113.33, 23.12], [113.33, 23.14], [113.31, 23.14], [113.31, 23.12]]
    zone = {"set": "crowd", "name": name, "geometry": {"type": "Polygon", "coordinates": [ring]}}
    r = api.post("/v1/zones", headers=bearer(data, "admin"), json=zone)
    assert r.status_code == 201, r.text
    zone_id = r.json()["id"]
    listed = api.get("/v1/zones", headers=bearer(data, "density")).json()
    assert any(z["id"] == zone_id and z["name"] == name for z in listed["zones"]), listed


def test_oversized_bodies_are_refused_before_they_are_read(api: TestClient, data: dict[str, Any]) -> None:
    big = b'{"geometry": "' + b"x" * 70_000 + b'"}'
    for headers in ({}, bearer(data, "admin")):  # with and without a key: the limit comes first
        r = api.post("/v1/density/area", content=big, headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 413 and "over the limit of 65536 bytes" in r.json()["detail"], r.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"geometry": "'
        for _ in range(20):
            yield b"x" * 5000
        yield b'"}'

    r = api.post("/v1/zones", content=chunks(), headers={**bearer(data, "admin"),
                                                         "Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 413, r.text
    small = api.post("/v1/density/area", json={"geometry": {"type": "Point", "coordinates": [1, 2]}},
                     headers=bearer(data, "density"))  # fmt: skip
    assert 400 <= small.status_code < 500 and small.status_code != 413  # the route's own answer


@pytest.mark.parametrize("depth", [100, 5_000, 60_000])
def test_deeply_nested_json_is_a_4xx_with_a_sentence(
    api: TestClient, data: dict[str, Any], depth: int
) -> None:
    body = b'{"geometry": ' + b"[" * depth + b"]" * depth + b"}"
    headers = {**bearer(data, "admin"), "Content-Type": "application/json"}
    for path in ("/v1/density/area", "/v1/zones", "/v1/alerts/subscriptions"):
        r = api.post(path, content=body, headers=headers)
        assert 400 <= r.status_code < 500 and r.json()["detail"], (path, depth, r.status_code, r.text[:200])


def test_open_streams_are_capped_per_key_and_per_process(data: dict[str, Any]) -> None:
    app = create_app(data["settings"])
    timeout = httpx.Timeout(10.0, read=30.0)
    with serving(app) as base, httpx.Client(base_url=base, timeout=timeout) as client, ExitStack() as held:
        def open_stream(key: str, path: str = "/v1/density/stream") -> httpx.Response:
            q = {"bbox": bbox_of(CELLS9, 0.01)} if path.startswith("/v1/density") else {}
            return held.enter_context(client.stream("GET", path, params=q, headers=bearer(data, key)))

        first = [open_stream("density") for _ in range(3)]
        assert all(r.status_code == 200 for r in first)
        over = client.get("/v1/density/stream", params={"bbox": bbox_of(CELLS9, 0.01)},
                          headers=bearer(data, "density"))  # fmt: skip
        assert over.status_code == 429 and "at most 3 open streams per API key" in over.json()["detail"]
        assert over.headers["retry-after"] == "30"
        # Another key still gets its own; the process cap (5) then refuses everyone.
        assert open_stream("admin", "/v1/alerts/stream").status_code == 200
        assert open_stream("admin").status_code == 200
        full = client.get("/v1/alerts/stream", headers=bearer(data, "traffic"))
        assert full.status_code == 503 and "at most 5 streams" in full.json()["detail"]
        # Refused keys take no slot; a wrong key's stream ends at once and gives its slot back.
        held.close()
        forged = {"Authorization": "Bearer hxp_aaaaaaaaaaaa_x"}
        deadline = time.monotonic() + 20
        while client.get("/v1/density/stream", headers=forged).status_code == 503:
            assert time.monotonic() < deadline, "closed streams kept their slots"
            time.sleep(0.2)  # the server notices a closed stream at its next receive
        for _ in range(10):
            assert client.get("/v1/density/stream", headers={"Authorization": "Bearer hxp_aaaaaaaaaaaa_x"}
                              ).status_code == 401  # fmt: skip
        q = {"bbox": bbox_of(CELLS9, 0.01)}
        with client.stream("GET", "/v1/density/stream", params=q, headers=bearer(data, "density")) as again:
            assert again.status_code == 200  # the closed streams' slots are free again
        assert client.get("/healthz").status_code == 200


def test_idle_alert_streams_cost_one_query_per_poll_not_one_each(data: dict[str, Any]) -> None:
    """Three idle streams for ~3 s at a 0.2 s poll of an owner without events: no events read at all
    (the mark says there is nothing), and the mark query once per poll for all of them (it was
    three events queries per poll)."""
    settings = data["settings"].model_copy(update={"alerts_poll_s": 0.2})
    app = create_app(settings)
    with serving(app) as base, httpx.Client(base_url=base, timeout=httpx.Timeout(10.0, read=30.0)) as client:
        with ExitStack() as held:
            for _ in range(3):
                stream = client.stream("GET", "/v1/alerts/stream", headers=bearer(data, "admin"))
                r = held.enter_context(stream)
                assert r.status_code == 200
            time.sleep(3.0)
        marks = app.state.alert_marks
        assert marks.reads == 0, marks.reads
        assert 3 <= marks.polls <= 3.0 / 0.2 + 5, marks.polls


def test_streams_asking_the_same_at_once_share_one_events_read(data: dict[str, Any]) -> None:
    """50 streams of one owner starting together (same position) wait for one events query and all
    get the owner's event; a later position is a read of its own; another owner's read never
    carries this owner's events."""
    settings = data["settings"]
    pool = ClickHousePool(settings, size=2)
    try:
        w = naive_utc_now().replace(second=0, microsecond=0) - timedelta(minutes=5)
        pool.insert(f"INSERT INTO alert_events ({alert_events.EVENT_COLUMNS}) VALUES", [(
            "evt_" + "s" * 24, "sub_shared", "owner_shared", "zone-s", w, "raised", "normal", "busy",
            "crowd_density", 2.5, 0.1, 2.3, 2.7, 2.0, 0.99, w)])  # fmt: skip
        since = epoch_s(w) - 3600
        marks = EventMarks(pool, ttl_s=60.0)

        async def together() -> list[list[dict[str, Any]]]:
            mark = await marks.mark("owner_shared")
            assert mark[0] == 1, mark
            reads = (marks.events_after("owner_shared", None, since, mark) for _ in range(50))
            return await asyncio.gather(*reads)

        answers = asyncio.run(together())
        assert marks.reads == 1, marks.reads
        assert all([d["id"] for d in a] == ["evt_" + "s" * 24] for a in answers)
        later = asyncio.run(marks.events_after("owner_shared", "evt_" + "s" * 24, since, (1, epoch_s(w))))
        assert later == [] and marks.reads == 2
        other = asyncio.run(marks.events_after("owner_other", None, since, (1, epoch_s(w))))
        assert other == [] and marks.reads == 3
    finally:
        pool.close()
