"""The dashboard's alert feed in headless Chromium: a key with alerts:write sees its zone at its
current level and the event with its evidence (skips without chromium, node or playwright-core);
the SSE stream over a real server sends the event and, resumed with Last-Event-ID, not again."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from alerts.evaluator import Evaluator
from alerts.levels import Level, Rule
from alerts.subscriptions import SubscriptionStore
from api.app import create_app
from api.keys import KeyStore
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import drop_database
from releases.models import Window
from tests.support.api import private_settings, seed
from tests.support.api_server import serving
from tests.support.paths import REPO
from tests.support.release import ts

pytestmark = pytest.mark.integration
FRONTEND = REPO / "frontend"


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    if shutil.which("node") is None or not (FRONTEND / "node_modules" / "playwright-core").exists():
        pytest.skip("node or playwright-core is missing (make browser)")
    if shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (make browser)")
    settings = private_settings(migrated, "alertsui", api_key_cache_s=0.0, rate_limit_per_min=10_000)
    doc = seed(settings)
    pool = ClickHousePool(settings, size=1)
    key, token = KeyStore(pool, cache_s=0.0).create("ops", ["density:read", "traffic:read", "alerts:write"])
    rule = Rule((Level("warning", 3000.0, 2400.0), Level("critical", 5000.0, 4000.0)), min_windows=1)
    SubscriptionStore(pool).create(key.key_id, "North gates", "gates", "crowd_count", 1.0, rule, "")
    start = doc["windows"][0]
    client = connect(settings)
    client.execute(
        "INSERT INTO release_zones (window_start, zone_set, zone_id, version, count, count_est, count_sigma,"
        " count_lo, count_hi, cells, plan) VALUES",
        [(ts(int(start.timestamp())), "crowd", "gates", 1, 3600, 3600.0, 54.0, 3494.2, 3705.8, 3, 0)],
    )
    client.disconnect()
    Evaluator(pool, 900.0).handle(Window(start, start + timedelta(minutes=1), start, 1.0, 0.0, "gaussian", 1))
    pool.close()
    doc["ops"] = token
    yield doc
    drop_database(settings)


def test_the_alert_feed_shows_the_zone_level_and_the_event(data: dict[str, Any]) -> None:
    with serving(create_app(data["settings"])) as base:
        out = subprocess.run(["node", str(FRONTEND / "e2e" / "alerts.mjs"), base, data["ops"]],  # noqa: S603, S607
                             capture_output=True, text=True, timeout=90, cwd=FRONTEND)  # fmt: skip
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout.strip().splitlines()[-1])
    texts = [line["text"] for line in doc["lines"]]
    assert texts[0] == "North gates: warning" and "level-on" in doc["lines"][0]["cls"]
    assert any("raised → warning" in t and "3600.00" in t for t in texts[1:]), texts
    assert doc["errors"] == [], doc["errors"]


def _first_event(base: str, token: str, last: str | None, wait_s: float) -> dict[str, str] | None:
    headers = {"Authorization": f"Bearer {token}", **({"Last-Event-ID": last} if last else {})}
    deadline = time.monotonic() + wait_s
    try:
        return _read_event(base, headers, wait_s, deadline)
    except httpx.ReadTimeout:
        return None  # nothing but silence (pings come every 15 s)


def _read_event(base: str, headers: dict[str, str], wait_s: float, deadline: float) -> dict[str, str] | None:
    with httpx.stream("GET", f"{base}/v1/alerts/stream", headers=headers, timeout=wait_s + 5) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        event: dict[str, str] = {}
        for line in resp.iter_lines():
            if line.startswith(("id:", "event:", "data:")):
                name, _, value = line.partition(":")
                event[name] = value.strip()
            elif not line and "data" in event:
                return event
            if time.monotonic() > deadline:
                return None
    return None


def test_the_stream_sends_the_event_and_resumes_after_it(data: dict[str, Any]) -> None:
    with serving(create_app(data["settings"])) as base:
        first = _first_event(base, data["ops"], None, 15)
        assert first is not None and first["event"] == "alert"
        doc = json.loads(first["data"])
        assert first["id"] == doc["id"] and doc["kind"] == "raised" and doc["level_after"] == "warning"
        # Resumed after it: nothing more (the stream's pings carry no data, so this waits them out).
        assert _first_event(base, data["ops"], first["id"], 4) is None
