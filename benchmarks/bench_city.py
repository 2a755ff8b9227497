"""The simulated city at real density, end to end: the figures of issues #12 (traffic) and #13
(alert precision/recall) from what the deployed code releases and serves.

Path: simulator messages → the real ingest + aggregate (in process, Kafka bypassed: see
benchmarks/city_pipeline.py) → partials in ClickHouse → the real releaser (a fresh master key,
the budget plan below) → the real API app (TestClient over the real ClickHouse) and the real
alert evaluator. Scores: benchmarks/city_scores.py.

Runs (10 min of event time each, the default city of docs/SIMULATOR.md; one run is generated,
fed and freed at a time, so peak memory is one run's):
1. ``quiet``: 04:00 local (20:00 UTC) two days ago, in HEXPULSE_TRAFFIC_FREE_FLOW_HOURS_UTC: the
   quiet windows the API pools free flow from (not scored for traffic);
2. ``morning``: 08:00 local (00:00 UTC) yesterday, the morning peak;
3. ``evening``: 18:30 local (10:30 UTC) yesterday, the evening peak.
Every run has the incident (20–60 % of the run on guangyuan-expressway-6) and the stadium crowd
(arriving 5–40 %, leaving 60–80 %), as the simulator places them in any run. Days are relative
to today: release-noise keys exist only for today − HEXPULSE_KEY_RETENTION_DAYS … tomorrow.

Budget plan: the configured one if it funds ``traffic``; otherwise the split the lead adopts,
``cells:0.50,traffic:0.20,zones.crowd:0.25,zones.district:0.05`` (printed either way).

Traffic is scored in two rows (benchmarks/city_scores.py): corridors (zone set ``corridor``, the
plan's ``traffic.corridor`` draw, from ``/v1/traffic``'s ``corridors``), the headline, and res-8
cells; the city index from ``/v1/traffic/index`` with ``set=corridor`` and ``set=none`` (cells).

Usage: .venv/bin/python benchmarks/bench_city.py [--devices N] [--minutes M] [--runs N]   (make bench-city)
``--runs 2``: the shortest run covering the incident (quiet1, then the morning peak).
Not in ``make test`` or ``make bench``: ~3 GB of memory and many minutes of CPU per run.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import h3
from city_pipeline import Pipeline, register_zones, release_run, zone_truth
from city_scores import AlertScore, TrafficScore, cells_of, corridors_of, heavy, iso, rule_for, true_index
from fastapi.testclient import TestClient
from pydantic import SecretStr
from shapely.geometry import shape

from alerts.evaluator import Evaluator
from alerts.subscriptions import SubscriptionStore
from api.app import create_app
from api.keys import KeyStore
from api.zones import zone_cells
from hexpulse.service_area import ServiceArea, load_service_area
from hexpulse.settings import Settings, load_settings
from hexpulse.store import connect
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import scratch_database
from hexpulse.store.tables import RELEASE_WINDOW_COLUMNS
from privacy.release.releaser import Releaser
from privacy.release.shares import parse_plan
from releases.models import Window
from simulator import SimConfig, generate
from simulator.geo import LocalFrame

QUIET_RUNS = 2
LEAD_PLAN = ("cells:0.50", "traffic:0.20", "zones.crowd:0.25", "zones.district:0.05")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load()} rss {rss_mb():.0f} MB] {msg}", flush=True)


def runs(quiet: int, minutes: float, limit: int | None = None) -> list[tuple[str, int, int]]:
    """(name, start ms, seed) of each run: ``quiet`` consecutive quiet runs from 20:00 UTC two days
    ago, then the morning and the evening peak yesterday. ``limit`` runs in all (≥ 2): at most
    ``limit`` − 1 quiet runs (at least one, the free-flow reference), then the peaks, morning first
    (``limit`` 2: one quiet run and the morning peak, which holds the incident like every run).
    Seeds stay those of the full list, so a shorter run is a prefix of the same city."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    night = today - timedelta(days=2) + timedelta(hours=20)
    at = [(f"quiet{i + 1}", night + timedelta(minutes=i * minutes)) for i in range(quiet)]
    at += [("morning", today - timedelta(days=1)),
           ("evening", today - timedelta(days=1) + timedelta(hours=10, minutes=30))]  # fmt: skip
    out = [(name, int(t.timestamp() * 1000), seed) for seed, (name, t) in enumerate(at, start=1)]
    if limit is None:
        return out
    if limit < 2 or quiet < 1:
        raise SystemExit("--runs needs at least 2 runs and 1 quiet run (the free-flow reference)")
    keep_quiet = min(quiet, limit - 1)
    return out[:keep_quiet] + out[quiet : quiet + limit - keep_quiet]


def bench_settings(state: Path) -> Settings:
    dev = load_settings()
    plan = tuple(dev.budget_plan) if parse_plan(tuple(dev.budget_plan)).get("traffic", 0) > 0 else LEAD_PLAN
    # The local server's default user reads as the "API" user here (bench_api.py does the same).
    return load_settings(
        metrics_port=0, alerts_metrics_port=0, api_clickhouse_user=dev.clickhouse_user,
        api_clickhouse_password=dev.clickhouse_password, api_key_cache_s=0.0, rate_limit_per_min=1_000_000,
        budget_plan=plan, master_key=SecretStr(secrets.token_hex(32)), keyring_path=state / "keyring",
        state_dir=state, topic_pings=f"citybench-{uuid.uuid4().hex[:6]}",
    )  # fmt: skip


def city_bbox(s: Settings) -> str:
    pts = [h3.cell_to_latlng(h3.int_to_str(int(c))) for c in load_service_area(s).cells.tolist()]
    lats, lons = [p[0] for p in pts], [p[1] for p in pts]
    return f"{min(lons) - 0.01},{min(lats) - 0.01},{max(lons) + 0.01},{max(lats) + 0.01}"


def score_run(api: TestClient, auth: dict[str, str], bbox: str, windows: list[int], truth: dict[str, Any],
              incident_cells: set[int], score: TrafficScore,
              speed_windows: int = 1) -> dict[str, Any]:  # fmt: skip
    """Traffic figures of one run's windows from /v1/traffic and /v1/traffic/index: corridors and
    res-8 cells (two rows); ``speed_windows``: the query's ``windows`` (speeds from the bins of the
    last N released windows), scored against each window's own truth."""
    cells_by_w: dict[int, list[list[Any]]] = {}
    for row in truth["traffic"]["cells"]:
        cells_by_w.setdefault(row[0] // 1000, []).append(row)
    corr_by_w: dict[int, list[list[Any]]] = {}
    for row in truth["traffic"]["corridors"]:
        corr_by_w.setdefault(row[0] // 1000, []).append(row)
    inc = truth["incident"]
    slug = inc["corridor_slug"]
    start_w = inc["start_ms"] // 1000 // 60 * 60
    served_incident: list[tuple[int, list[str | None], str | None]] = []
    road_of = {c["slug"]: c["road"] for c in truth["corridors"]}
    counts: list[tuple[int, int, int]] = []  # per window: corridors served, with a free flow, with a level
    free: dict[str, dict[int, set[Any]]] = {"cells": {}, "corridors": {}}
    for w in windows:
        params = {"bbox": bbox, "res": 8, "at": iso(w), "windows": speed_windows}
        r = api.get("/v1/traffic", params=params, headers=auth)
        r.raise_for_status()
        doc = r.json()
        served = cells_of(doc["cells"])
        corridors = corridors_of(doc)
        score.cells.add(cells_by_w.get(w, []), served)
        score.corridors.add(corr_by_w.get(w, []), corridors, road_of)
        free["cells"][w] = {c for c, v in served.items() if v.get("free_flow_kmh") is not None}
        free["corridors"][w] = {z for z, v in corridors.items() if v.get("free_flow_kmh") is not None}
        with_level = sum(v.get("level") is not None for v in corridors.values())
        counts.append((len(corridors), len(free["corridors"][w]), with_level))
        levels = [served.get(c, {}).get("level") for c in sorted(incident_cells)]
        served_incident.append((w, levels, corridors.get(slug, {}).get("level")))
    truth_of = {"cells": cells_by_w, "corridors": corr_by_w}
    index_points: dict[str, list[tuple[str, float, float]]] = {"corridors": [], "cells": []}
    span = {"from": iso(windows[0]), "to": iso(windows[-1] + 60)}
    for zone_set, row in (("corridor", "corridors"), ("none", "cells")):  # set=none: cells only
        r = api.get("/v1/traffic/index", params={**span, "set": zone_set}, headers=auth)
        r.raise_for_status()
        for p in r.json()["series"]:
            if p["index"] is None or p["source"] != row:
                continue
            w = int(datetime.fromisoformat(p["window_start"].replace("Z", "+00:00")).timestamp())
            t = true_index(truth_of[row].get(w, []), free[row].get(w, set()))
            if t:
                score.add_index(row, p["index"], t)
                index_points[row].append((iso(w), round(p["index"], 3), round(t, 3)))
    after = [x for x in served_incident if x[0] >= start_w]
    before = [x for x in served_incident if x[0] < start_w]
    corridor_truth = truth["traffic"]["corridors"]
    truth_heavy = sorted(row[0] // 1000 for row in corridor_truth if row[1] == slug and heavy(row[5]))
    return {
        "incident_detect_windows": next((k for k, (_, _, cl) in enumerate(after) if heavy(cl)), None),
        "incident_heavy_before_start": sum(heavy(cl) for _, _, cl in before),
        "cells_incident_detect_windows": next((k for k, (_, lv, _) in enumerate(after)
                                               if any(heavy(v) for v in lv)), None),  # fmt: skip
        "cells_incident_heavy_before_start": sum(any(heavy(v) for v in lv) for _, lv, _ in before),
        "incident_truth_heavy_after_windows": next(((w - start_w) // 60 for w in truth_heavy if w >= start_w),
                                                   None),  # fmt: skip
        "corridors_served (all, with free flow, with level)": counts,
        "incident_levels_served": [(iso(w), lv, cl) for w, lv, cl in served_incident],
        "incident_levels_true": [(iso(row[0] // 1000), row[2], row[3], row[5]) for row in corridor_truth
                                 if row[1] == slug],  # fmt: skip
        "index_points (served, true)": index_points,
    }


def score_alerts(s: Settings, pool: ClickHousePool, curves: dict[str, list[float]], all_windows: list[int],
                 alerts: AlertScore) -> float:  # fmt: skip
    """Subscriptions on every crowd zone, then the real evaluator over every released window, in
    order; the events it wrote scored against the true curves. Returns ms per window evaluated."""
    subs = SubscriptionStore(pool)
    rules = {z: rule_for(c) for z, c in curves.items()}
    sub_zone = {subs.create("citybench", f"crowd {z}", z, "crowd_count", 1.0, rule, "").subscription_id: z
                for z, rule in rules.items()}  # fmt: skip
    ev = Evaluator(pool, 900.0)
    client = connect(s)
    cols = ", ".join(RELEASE_WINDOW_COLUMNS)
    rows = client.execute(f"SELECT {cols} FROM release_windows FINAL ORDER BY window_start")
    t0 = time.monotonic()
    for row in rows:
        ev.handle(Window.from_row(row))
    eval_ms = (time.monotonic() - t0) * 1000 / max(len(rows), 1)
    names = ["normal", "warning", "critical"]
    index_of = {w: k for k, w in enumerate(all_windows)}
    emitted: dict[str, list[tuple[int, int, int]]] = {z: [] for z in curves}
    events = client.execute("SELECT subscription_id, toUInt32(window_start), level_before, level_after"
                            " FROM alert_events FINAL ORDER BY window_start")  # fmt: skip
    client.disconnect()
    for sid, w, before, after in events:
        emitted[sub_zone[sid]].append((index_of[int(w)], names.index(before), names.index(after)))
    for z, curve in curves.items():
        alerts.add(z, rules[z], curve, emitted[z])
    return eval_ms


@dataclass
class City:
    """The deployment under test (one scratch database) and what the runs accumulate."""

    s: Settings
    devices: int | None
    minutes: float
    speed_windows: tuple[int, ...] = (1,)
    area: ServiceArea = field(init=False)
    traffic: TrafficScore = field(default_factory=TrafficScore)
    per_run: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The other ``speed_windows``: their scores and per-run figures, scored on the same releases.
    pooled: dict[int, tuple[TrafficScore, dict[str, dict[str, Any]]]] = field(default_factory=dict)
    size: dict[str, Any] = field(default_factory=lambda: {"devices": 0, "pings": 0, "messages": 0,
                                                          "windows": 0, "runs": []})  # fmt: skip
    curves: dict[str, list[float]] = field(default_factory=dict)
    windows: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.area = load_service_area(self.s)
        zones = register_zones(self.s, self.area, LocalFrame(*SimConfig().center))
        self.crowd = [z for z in zones if z.zone_set == "crowd"]
        self.curves = {z.zone_id: [] for z in self.crowd}
        log(f"zones registered: {len(zones)} ({sorted({z.zone_set for z in zones})})")
        self.pipe = Pipeline(self.s, self.area)
        self.releaser = Releaser(self.s, area=self.area)
        self.pool = ClickHousePool(self.s, size=2)
        _, token = KeyStore(self.pool, cache_s=0.0).create("citybench", ["traffic:read"])
        self.auth = {"Authorization": f"Bearer {token}"}
        self.bbox = city_bbox(self.s)

    def run(self, api: TestClient, name: str, start_ms: int, seed: int) -> None:
        """Generate one run, feed it, release its windows, free it; score it unless quiet."""
        s = self.s
        cfg = SimConfig(devices=self.devices, duration_s=self.minutes * 60, start_ms=start_ms, seed=seed)
        t0 = time.monotonic()
        sim = generate(cfg, s, area=self.area)
        gen_s = time.monotonic() - t0
        counts = sim.truth.counts
        log(f"{name}: generated {counts['devices']} devices, {counts['pings']} pings, "
            f"{counts['messages']} messages in {gen_s:.0f} s")  # fmt: skip
        fed = self.pipe.feed(sim)
        log(f"{name}: ingest + aggregate {fed}")
        windows, rel_s = release_run(s, self.releaser, sim)
        log(f"{name}: released {len(windows)} windows in {rel_s:.0f} s")
        truth: dict[str, Any] = {"traffic": sim.truth.traffic, "incident": sim.truth.incident,
                                 "corridors": sim.truth.corridors}  # fmt: skip
        for zid, curve in zone_truth(sim, self.crowd, s.window_s).items():
            self.curves[zid] += [float(curve[w]) for w in windows]
        size = self.size
        size["devices"] = max(size["devices"], counts["devices"])
        size["pings"] += counts["pings"]
        size["messages"] += counts["messages"]
        size["windows"] += len(windows)
        size["runs"].append({"run": name, "from": iso(sim.start_ms // 1000), "to": iso(sim.end_ms // 1000),
                             "pings": counts["pings"], "generate_s": round(gen_s), **fed,
                             "release_s": round(rel_s), "peak_rss_mb": round(rss_mb()),
                             "load": load()})  # fmt: skip
        del sim
        gc.collect()
        self.windows += windows
        if name.startswith("quiet"):
            return
        slug = truth["incident"]["corridor_slug"]
        poly = next(c["polygon"] for c in truth["corridors"] if c["slug"] == slug)
        base9 = zone_cells(shape(poly), s.base_resolution, self.area.cell_set)
        inc8 = {h3.str_to_int(h3.cell_to_parent(h3.int_to_str(c), 8)) for c in base9}
        first, *others = self.speed_windows
        r = score_run(api, self.auth, self.bbox, windows, truth, inc8, self.traffic, first)
        self.per_run[name] = r
        for k in others:
            score, per_run = self.pooled.setdefault(k, (TrafficScore(), {}))
            per_run[name] = score_run(api, self.auth, self.bbox, windows, truth, inc8, score, k)
        log(f"{name}: incident detect {r['incident_detect_windows']} windows on its corridor, "
            f"{r['cells_incident_detect_windows']} on its res-8 cells "
            f"(truth heavy after {r['incident_truth_heavy_after_windows']})")  # fmt: skip
        log(f"traffic so far: {json.dumps(self.traffic.summary())}")

    def close(self) -> None:
        self.pipe.close()
        self.pool.close()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=None, help="scale the city down (default: real density)")
    ap.add_argument("--minutes", type=float, default=10.0, help="event time per run (default 10)")
    ap.add_argument("--quiet-runs", type=int, default=QUIET_RUNS, help=f"quiet runs (default {QUIET_RUNS})")
    ap.add_argument("--runs", type=int, default=None,
                    help="runs in all (2: a quiet run, then the morning peak with the incident)")  # fmt: skip
    ap.add_argument("--speed-windows", default="1,3,5",
                    help="/v1/traffic windows= values to score, the first the headline")  # fmt: skip
    args = ap.parse_args(argv)
    speed_windows = tuple(int(k) for k in args.speed_windows.split(","))
    t_start = time.monotonic()
    cpu0 = time.process_time()
    state = Path(tempfile.mkdtemp(prefix="citybench-"))  # the key ring of the fresh master key
    base = bench_settings(state)
    log(f"budget plan {','.join(base.budget_plan)}; partitions {base.topic_partitions}")
    alerts = AlertScore()
    with scratch_database(base, clickhouse_database=f"hexpulse_bench_city_{uuid.uuid4().hex[:6]}") as s:
        city = City(s, args.devices, args.minutes, speed_windows)
        with TestClient(create_app(s)) as api:
            for name, start_ms, seed in runs(args.quiet_runs, args.minutes, args.runs):
                city.run(api, name, start_ms, seed)
        eval_ms = score_alerts(s, city.pool, city.curves, city.windows, alerts)
        city.close()
    shutil.rmtree(state, ignore_errors=True)
    wall = time.monotonic() - t_start
    size, traffic = city.size, city.traffic
    keys = ("incident_detect_windows", "incident_heavy_before_start", "cells_incident_detect_windows",
            "cells_incident_heavy_before_start", "incident_truth_heavy_after_windows")
    incident = {f"{k}_{n}": v[k] for n, v in city.per_run.items() for k in keys}
    figures = {**traffic.summary(), **incident, **alerts.summary(),
               "alerts_eval_ms_per_window": round(eval_ms, 1),
               "devices": size["devices"], "pings": size["pings"], "messages": size["messages"],
               "windows": size["windows"], "wall_s": round(wall), "cpu_s": round(time.process_time() - cpu0),
               "peak_rss_mb": round(rss_mb()), "load_avg_end": load(),
               "budget_plan": ",".join(base.budget_plan)}  # fmt: skip
    for name, r in city.per_run.items():
        print(f"{name}: incident levels served (window, res-8 cells of the corridor, corridor): "
              f"{r['incident_levels_served']}")  # fmt: skip
        print(f"{name}: incident corridor truth (window, moving, km/h, level): {r['incident_levels_true']}")
        print(f"{name}: city index (window, served, true): {r['index_points (served, true)']}")
        print(f"{name}: corridors served per window (all, with free flow, with level): "
              f"{r['corridors_served (all, with free flow, with level)']}")  # fmt: skip
    print("runs:", json.dumps(size["runs"]))
    rows = traffic.rows()
    for row, seg in (("corridors", traffic.corridors), ("cells", traffic.cells)):
        print(f"traffic by true moving devices per segment ({row}):", json.dumps(seg.by_moving()))
        print(f"level confusion ({row}, truth → served):", json.dumps(rows[row]["level_confusion"]))
    print("corridors by road:", json.dumps(traffic.corridors.by_group()))
    print("alerts by zone:", json.dumps(alerts.by_zone))
    for k, (score, per_run) in city.pooled.items():
        pooled_incident = {f"{key}_{n}": v[key] for n, v in per_run.items() for key in keys}
        print(f"speeds from the last {k} windows:", json.dumps({**score.summary(), **pooled_incident}))
        for row, seg in (("corridors", score.corridors), ("cells", score.cells)):
            print(f"  by true moving devices ({row}, {k} windows):", json.dumps(seg.by_moving()))
        for n, v in per_run.items():
            print(f"  {n}: incident levels served ({k} windows): {v['incident_levels_served']}")
    print(json.dumps({**figures, "speed_windows": speed_windows[0]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
