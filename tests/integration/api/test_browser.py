"""The dashboard in headless Chromium: loads with no console errors, draws the released cells,
follows a newly released window over the live stream, switches to the traffic layer, then back
to crowds with smoothing on.

Needs /usr/bin/chromium (or $CHROMIUM), node and `npm ci` in frontend/ (playwright-core); skips
with that reason otherwise. Screenshots go to artifacts/dashboard*.png.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.scratch import drop_database
from tests.support.api import CELLS9, private_settings, publish, seed
from tests.support.api_server import serving
from tests.support.paths import REPO

pytestmark = pytest.mark.integration

ROOT = REPO
FRONTEND = ROOT / "frontend"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    if shutil.which("node") is None:
        return "node is not installed"
    if not (FRONTEND / "node_modules" / "playwright-core").exists():
        return "playwright-core is not installed (run 'npm ci' in frontend/)"
    return None


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    settings = private_settings(migrated, "apid", api_key_cache_s=0.0, rate_limit_per_min=10_000,
                                api_stream_poll_s=0.3)  # fmt: skip
    yield seed(settings)
    drop_database(settings)


def _read(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, f"the browser driver ended early: {proc.stderr.read() if proc.stderr else ''}"
    msg: dict[str, Any] = json.loads(line)
    assert msg["step"] != "failed", msg
    return msg


def test_dashboard_in_chromium(data: dict[str, Any]) -> None:
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "dashboard.png"
    app = create_app(data["settings"])
    with serving(app) as base:
        proc = subprocess.Popen(
            ["node", str(FRONTEND / "e2e" / "dashboard.mjs"), base, data["tokens"]["admin"], str(shot)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=FRONTEND,
        )  # fmt: skip
        try:
            first = _read(proc)
            assert first["window"] == data["windows"][0].strftime("%Y-%m-%dT%H:%M:%SZ")
            assert first["drawn"] >= len(CELLS9) // 2  # hexagons rendered (clipped ones may merge)
            assert "key=" not in first["url"]  # the key left the address bar
            client = connect(data["settings"])
            newest = data["unreleased"]
            publish(client, newest)
            client.disconnect()
            assert proc.stdin is not None
            proc.stdin.write(newest.strftime("%Y-%m-%dT%H:%M:%SZ") + "\n")
            proc.stdin.close()
            live = _read(proc)
            assert live["renders"] > first["renders"]
            traffic = _read(proc)
            assert traffic["layer"] == "traffic" and traffic["drawn"] > 0
            assert traffic["errors"] == [], traffic["errors"]
            smoothed = _read(proc)
            assert smoothed["layer"] == "crowd" and smoothed["smoothed"] > 0  # labelled smoothed values drawn
            assert smoothed["errors"] == [], smoothed["errors"]
        finally:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert shot.exists()


def test_released_window_after_now_is_not_shown_before_release(data: dict[str, Any]) -> None:
    """Sanity of the fixture the browser test relies on: the unreleased window is not public."""
    assert data["unreleased"] > data["windows"][0]
    assert data["unreleased"] - data["windows"][0] == timedelta(seconds=60)


def test_transparency_page_in_chromium(data: dict[str, Any]) -> None:
    """/privacy renders with its stylesheet, no script and no console error; screenshots (screen and
    print) go to artifacts/privacy*.png."""
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "privacy.png"
    with serving(create_app(data["settings"])) as base:
        out = subprocess.run(
            ["node", str(FRONTEND / "e2e" / "privacy.mjs"), base, str(shot)],
            capture_output=True, text=True, cwd=FRONTEND, timeout=120,
        )  # fmt: skip
    assert out.returncode == 0, out.stderr
    msg = json.loads(out.stdout.splitlines()[-1])
    assert msg["step"] == "privacy", msg
    assert msg["status"] == 200 and msg["errors"] == [], msg["errors"]
    assert msg["scripts"] == 0
    assert [s.endswith("/static/privacy.css") for s in msg["stylesheets"]] == [True]
    assert msg["styled"] != "none"  # the stylesheet applied
    assert msg["outline"] > 0  # the service-area outline is drawn
    assert "The guarantee" in msg["sections"] and "Budget spent today" in " ".join(msg["sections"])
    assert "/" in msg["links"]
    assert shot.exists() and shot.with_name("privacy-print.png").exists()
