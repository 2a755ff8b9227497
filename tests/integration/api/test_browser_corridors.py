"""The dashboard's traffic layer draws corridors in headless Chromium: the simulated city's 52 road
corridors coloured by level, the interval on hover, and the incident corridor going from free to
heavy/severe and back over released windows, its queue reaching the next corridor of the road
(screenshots artifacts/traffic-incident-forming.png: the first severe window, with the hover;
-clearing.png: the incident corridor moderate again while the queue still holds the next one;
artifacts/ is not committed, .gitignore).

The releases are **inserted rows** (``release_zone_traffic`` + ``release_windows``, written the
releaser's way), not drawn by the releaser: the scripted speeds put the incident corridor at each
level in turn, with σ of one bin 20 devices on ~800 moving devices. Free flow comes from quiet
windows three hours earlier (the free-flow hours are every hour but the recent windows').

Needs /usr/bin/chromium (or $CHROMIUM), node and `npm ci` in frontend/; skips otherwise.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import h3
import pytest
from shapely.geometry import shape

from api.app import create_app
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.scratch import drop_database
from hexpulse.traffic_levels import level_of
from hexpulse.zones import OPEN_END, ZONE_COLUMNS, Zone
from privacy.release.budget import plan_from_settings
from simulator.config import SimConfig
from simulator.geo import LocalFrame
from simulator.places import zones_geojson
from simulator.traffic import incident_for
from tests.integration.api.test_browser import FRONTEND, _missing
from tests.support.api import naive, private_settings, publish, seed
from tests.support.api_server import serving
from tests.support.paths import REPO

pytestmark = pytest.mark.integration

SIGMA = 20.0
MOVING = 800
QUIET_WINDOWS = 10
# The incident corridor's congestion index per seeded window, oldest first: free, forming, clearing.
INCIDENT_INDEX = (1.0, 1.0, 1.0, 1.7, 2.5, 4.0, 4.0, 2.5, 1.7, 1.35, 1.0, 1.0)
# The next corridor along the same road: the queue reaches it later and leaves it later.
QUEUE_INDEX = (1.0, 1.0, 1.0, 1.0, 1.35, 1.7, 2.5, 2.5, 2.5, 1.7, 1.35, 1.0)
FORMING, CLEARING, CLEAR = 5, 8, 10  # screenshots: first severe, moderate again; CLEAR: free again


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def bins_for(index: float, mids: tuple[float, ...], n: int) -> list[float]:
    """Bins of n moving devices whose mean speed is the free-flow mean / ``index``: a mix of the
    free-flow profile and a queue (everyone in the slowest bin)."""
    free = [0.0] * (len(mids) - 3) + [0.05, 0.35, 0.60]  # free flow fills the three fastest bins
    v_free = sum(w * m for w, m in zip(free, mids, strict=True))
    a = (v_free - v_free / index) / (v_free - mids[0])
    return [round(n * ((1 - a) * w + (a if k == 0 else 0.0)), 1) for k, w in enumerate(free)]


def background_index(zone_id: str, k: int) -> float:
    """Other corridors: mostly free, a few light or moderate, steady from window to window."""
    h = int(hashlib.sha256(zone_id.encode()).hexdigest()[:4], 16) % 10
    return 1.35 if h in (1, 2) else 1.75 if h == 3 else 1.0 + 0.01 * (k % 3)


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    now = datetime.now(UTC)
    recent_hours = {(now - timedelta(minutes=m)).hour for m in range(0, 20)}
    quiet_hours = tuple(h for h in range(24) if h not in recent_hours)
    settings = private_settings(migrated, "apidc", api_key_cache_s=0.0, rate_limit_per_min=10_000,
                                traffic_free_flow_hours_utc=quiet_hours)  # fmt: skip
    seeded = seed(settings)
    windows = list(reversed(seeded["windows"]))  # oldest first
    quiet = [windows[0] - timedelta(hours=3, minutes=k) for k in range(QUIET_WINDOWS)]
    mids = plan_from_settings(settings).traffic_mids_kmh
    features = [f for f in zones_geojson(LocalFrame(*SimConfig().center))["features"]
                if f["properties"]["set"] == "corridor"]  # fmt: skip
    incident = incident_for(600.0).corridor_slug
    road, k_inc = incident.rsplit("-", 1)
    queue = f"{road}-{int(k_inc) - 1}"
    assert any(f["properties"]["id"] == queue for f in features)
    since = datetime(2020, 1, 1, tzinfo=UTC)
    zones, rows = [], []
    for f in features:
        zid = str(f["properties"]["id"])
        cells = tuple(sorted(h3.str_to_int(c) for c in h3.geo_to_cells(f["geometry"], 9)))
        zones.append(Zone(zid, 1, "corridor", str(f["properties"]["name"]), json.dumps(f["geometry"]), cells,
                          since, OPEN_END).row())  # fmt: skip
        for w in quiet:
            rows.append((naive(w), "corridor", zid, 1, bins_for(1.0, mids, MOVING), SIGMA, float(MOVING),
                         list(mids), len(cells), 7))  # fmt: skip
        for k, w in enumerate(windows):
            index = (INCIDENT_INDEX[k] if zid == incident else QUEUE_INDEX[k] if zid == queue
                     else background_index(zid, k))  # fmt: skip
            b = bins_for(index, mids, MOVING)
            rows.append((naive(w), "corridor", zid, 1, b, SIGMA, sum(b), list(mids), len(cells), 7))
    client = connect(settings)
    client.execute(f"INSERT INTO zones ({ZONE_COLUMNS}) VALUES", zones)
    client.execute(
        "INSERT INTO release_zone_traffic (window_start, zone_set, zone_id, version, bins_est, bins_sigma,"
        " moving_est, mids_kmh, cells, plan) VALUES",
        rows,
    )
    for w in quiet:
        publish(client, w)
    client.disconnect()
    poly = shape(next(f["geometry"] for f in features if f["properties"]["id"] == incident))
    inside = poly.representative_point()
    name = next(f["properties"]["name"] for f in features if f["properties"]["id"] == incident)
    yield {**seeded, "windows_oldest_first": windows, "incident": incident, "incident_name": name,
           "queue": queue, "hover": [inside.x, inside.y], "corridors": len(features)}  # fmt: skip
    drop_database(settings)


def test_incident_corridor_forms_and_clears_on_the_dashboard(data: dict[str, Any], tmp_path: Path) -> None:
    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    windows = data["windows_oldest_first"]
    shots = {iso(windows[FORMING]): "traffic-incident-forming.png",
             iso(windows[CLEARING]): "traffic-incident-clearing.png"}
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"incident": data["incident"], "hover": data["hover"], "shots": shots}))
    with serving(create_app(data["settings"])) as base:
        out = subprocess.run(
            ["node", str(FRONTEND / "e2e" / "corridors.mjs"), base, data["tokens"]["admin"], str(artifacts),
             str(spec)],
            capture_output=True, text=True, cwd=FRONTEND, timeout=300,
        )  # fmt: skip
    msgs = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert msgs and msgs[-1]["step"] == "done", (msgs[-1:] if msgs else out.stderr)
    assert all(m["errors"] == [] for m in msgs), msgs[-1]["errors"]
    traffic = msgs[0]
    assert traffic["step"] == "traffic" and traffic["corridors"] >= 0.9 * data["corridors"]  # some off screen
    # Every window of the slider: the quiet ones first, then the seeded ones with the incident.
    seen = {m["window"]: m for m in msgs if m["step"] == "window"}
    served = [seen[iso(w)]["level"] for w in windows]
    assert served == [level_of(i) for i in INCIDENT_INDEX]
    assert served[0] == "free" and served[FORMING] == "severe" and served[CLEAR] == "free"
    assert "heavy" in served[:FORMING] and "heavy" in served[FORMING:CLEARING]  # forming, then clearing
    assert [seen[iso(w)]["levels"][data["queue"]] for w in windows] == [level_of(i) for i in QUEUE_INDEX]
    hover = next(m for m in msgs if m["step"] == "hover")
    assert hover["text"].startswith(data["incident_name"])
    assert "level severe" in hover["text"] and hover["text"].count("95%") >= 3  # index, speed, free, moving
    assert "corridors measured directly" in hover["legend"]
    for name in shots.values():
        assert (artifacts / name).stat().st_size > 10_000
