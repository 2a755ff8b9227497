"""The live stream: every subscriber gets the current window, then each newly released one, from
one shared poller (one cells query per window, not one per subscriber)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from api.app import create_app
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.scratch import drop_database
from tests.support.api import CELLS9, bbox_of, private_settings, publish, seed
from tests.support.api_server import serving

pytestmark = pytest.mark.integration

SUBSCRIBERS = 5


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    settings = private_settings(migrated, "apil", api_key_cache_s=0.0, rate_limit_per_min=10_000,
                                api_stream_poll_s=0.2)  # fmt: skip
    yield seed(settings)
    drop_database(settings)


def listen(url: str, token: str, want: int, out: list[dict[str, Any]], ready: threading.Event) -> None:
    """Collect ``want`` window events (data parsed) from one SSE connection."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    with (
        httpx.Client(timeout=httpx.Timeout(30.0)) as client,
        client.stream("GET", url, headers=headers) as resp,
    ):
        assert resp.status_code == 200
        event = None
        for line in resp.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "window":
                out.append(json.loads(line.split(":", 1)[1]))
                ready.set()
                if len(out) >= want:
                    return


def test_every_subscriber_gets_every_new_window(data: dict[str, Any]) -> None:
    app = create_app(data["settings"])
    state = app.state.api
    bbox = bbox_of(CELLS9, 0.01)
    with serving(app) as base:
        url = f"{base}/v1/density/stream?bbox={bbox}&res=9"
        outs: list[list[dict[str, Any]]] = [[] for _ in range(SUBSCRIBERS)]
        readies = [threading.Event() for _ in range(SUBSCRIBERS)]
        threads = [
            threading.Thread(target=listen, args=(url, data["tokens"]["density"], 3, outs[i], readies[i]))
            for i in range(SUBSCRIBERS)
        ]
        for t in threads:
            t.start()
        assert all(r.wait(30) for r in readies), "a subscriber got no first event"
        assert state.feed.subscribers == SUBSCRIBERS
        queries_before = state.reader.cell_queries
        client = connect(data["settings"])
        newest = data["unreleased"]  # cells already written with count 999, public only now
        publish(client, newest)
        publish(client, newest + timedelta(seconds=60))  # released with no cells: an empty window
        client.disconnect()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)
    first = data["windows"][0].strftime("%Y-%m-%dT%H:%M:%SZ")
    second = newest.strftime("%Y-%m-%dT%H:%M:%SZ")
    third = (newest + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for out in outs:
        assert [doc["window"]["window_start"] for doc in out] == [first, second, third]
        assert {f["properties"]["count"] for f in out[1]["features"]} == {999}
        assert out[2]["features"] == []
    assert state.reader.cell_queries == queries_before + 2  # one per new window, shared by all subscribers
