"""The dashboard's alert feed in headless Chromium: a key with alerts:write sees its zone at its
current level and the event with its evidence (skips without chromium, node or playwright-core)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

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
