"""Alerts: evaluation cost per window, webhook lag after release, and decision quality.

1. ``alerts_eval_ms_per_window``: the evaluator (alerts.evaluator.Evaluator.handle, real ClickHouse,
   a scratch database) for 1,000 subscriptions on 100 zones, mean over released windows.
2. ``alert_emit_lag_s_p95``: `hexpulse alerts`' service (lease, feed follower, delivery worker, at the
   default poll of 1 s) against a local HTTP receiver; lag = webhook received − window row inserted.
3. ``alert_precision`` / ``alert_recall``: the state machine (alerts.levels.step) on synthetic
   stadium-like crowd curves (plateaus at ≥ 10% margin from every threshold) with Gaussian noise of
   the σ one zone of set ``crowd`` gets at the default budget plan (√(W / (2·share)), BENCHMARKS.md
   "Registered zones"); an emitted event matches a ground-truth one (the same machine on the truth)
   of the same subscription and transition within min_windows windows.

Usage: .venv/bin/python benchmarks/bench_alerts.py [--quick]
"""

from __future__ import annotations

import json
import math
import random
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ (the receiver) is not installed

from alerts.levels import Level, Rule, State, step
from alerts.signing import new_secret
from alerts.subscriptions import SubscriptionStore
from hexpulse.settings import Settings, load_settings
from hexpulse.store import connect
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import scratch_database
from hexpulse.times import windows_per_day
from releases.models import Window
from tests.integration.alerts.support import Receiver, wait_for
from tests.support.release import ts

RULE = Rule((Level("warning", 3000.0, 2400.0), Level("critical", 5000.0, 4000.0)), min_windows=2,
            confidence=0.9)  # fmt: skip


def crowd_sigma(settings: Settings) -> float:
    share = next(float(p.split(":")[1]) for p in settings.budget_plan if p.startswith("zones.crowd:"))
    return math.sqrt(windows_per_day(settings.window_s) / (2 * share))


def publish(client: object, w: int, zones: dict[str, float], sigma: float) -> None:
    rows = [(ts(w), "crowd", z, 1, max(0, round(v)), v, sigma, v - 1.96 * sigma, v + 1.96 * sigma, 3, 1)
            for z, v in zones.items()]  # fmt: skip
    client.execute("INSERT INTO release_zones (window_start, zone_set, zone_id, version, count, count_est,"  # type: ignore[attr-defined]
                   " count_sigma, count_lo, count_hi, cells, plan) VALUES", rows)  # fmt: skip
    client.execute("INSERT INTO release_windows (window_start, window_end, released_at, base_cells, rho,"  # type: ignore[attr-defined]
                   " mechanism, lag_s, plan) VALUES",
                   [(ts(w), ts(w + 60), ts(int(time.time())), 100, 0.001, "gaussian", 1.0, 1)])  # fmt: skip


def eval_cost(s: Settings, windows: int, sigma: float) -> float:
    from alerts.evaluator import Evaluator

    pool = ClickHousePool(s, size=2)
    store = SubscriptionStore(pool)
    for i in range(1000):
        store.create(f"owner-{i % 10}", f"s{i}", f"z{i % 100}", "crowd_count", 1.0, RULE, "")
    client = connect(s)
    ev = Evaluator(pool, 900.0)
    w0 = (int(time.time()) // 60 - 600) * 60
    rng = random.Random(3)
    times = []
    for k in range(windows):
        publish(client, w0 + 60 * k, {f"z{j}": rng.uniform(0, 7000) for j in range(100)}, sigma)
        win = Window(ts(w0 + 60 * k), ts(w0 + 60 * k + 60), ts(int(time.time())), 1.0, 0.001, "gaussian", 100)
        t0 = time.perf_counter()
        ev.handle(win)
        times.append((time.perf_counter() - t0) * 1000)
    client.disconnect()
    pool.close()
    return statistics.mean(times)


def emit_lag(s: Settings, events: int) -> list[float]:
    from alerts.service import AlertsService

    secret = new_secret()
    rx = Receiver(secret)
    arrivals: dict[str, float] = {}
    orig = rx.accepted
    pool = ClickHousePool(s, size=1)
    rule = Rule((Level("high", 1000.0, 500.0),), min_windows=1)
    SubscriptionStore(pool).create("owner-lag", "lag", "lagzone", "crowd_count", 1.0, rule, rx.url, (secret,))
    svc = AlertsService(s, holder="bench")
    stop = threading.Event()
    th = threading.Thread(target=svc.run, args=(stop,), daemon=True)
    th.start()
    svc.wait_held(30)
    client = connect(s)
    w0 = (int(time.time()) // 60 - 300) * 60
    published: dict[str, float] = {}
    lags = []
    for k in range(events):
        w = w0 + 60 * k
        published[ts(w).strftime("%Y-%m-%dT%H:%M:%SZ")] = time.time()
        publish(client, w, {"lagzone": 2000.0 if k % 2 == 0 else 0.0}, 10.0)
        assert wait_for(lambda k=k: len(orig) > k, 30)
        arrivals[orig[k]["data"]["window_start"]] = time.time()
        time.sleep(0.3)
    for key, t in arrivals.items():
        lags.append(t - published[key])
    stop.set()
    th.join(30)
    client.disconnect()
    pool.close()
    rx.close()
    return lags


def _matches(a: list[tuple[int, int, int]], b: list[tuple[int, int, int]], tol: int) -> int:
    """How many events of ``a`` have one of ``b`` with the same transition within ``tol`` windows."""
    return sum(any(x[1:] == y[1:] and abs(x[0] - y[0]) <= tol for y in b) for x in a)


def quality(sigma: float, subs: int, windows: int, seed: int = 5) -> tuple[float, float, int]:
    rng = random.Random(seed)
    plateaus = (1000.0, 2000.0, 3300.0, 4000.0, 5500.0, 7000.0)  # each ≥ 10% from 2400/3000/4000/5000
    matched_e = matched_t = n_emit = n_truth = 0
    for _ in range(subs):
        truth, level = [], rng.choice(plateaus[:2])
        while len(truth) < windows:
            nxt = rng.choice(plateaus)
            ramp = rng.randint(3, 10)
            truth += [level + (nxt - level) * (i + 1) / ramp for i in range(ramp)]
            truth += [nxt] * rng.randint(5, 20)
            level = nxt
        truth = truth[:windows]
        t_events, e_events = [], []
        st, se = State(), State()
        for k, v in enumerate(truth):
            st, ct = step(RULE, st, v, 0.0)
            se, ce = step(RULE, se, v + rng.gauss(0, sigma), sigma)
            if ct:
                t_events.append((k, ct.before, ct.after))
            if ce:
                e_events.append((k, ce.before, ce.after))
        n_emit += len(e_events)
        n_truth += len(t_events)
        matched_e += _matches(e_events, t_events, RULE.min_windows)
        matched_t += _matches(t_events, e_events, RULE.min_windows)
    return matched_e / max(n_emit, 1), matched_t / max(n_truth, 1), n_truth


def city_quality(trials: int) -> dict[str, float]:
    """Precision and recall on the simulated city's stadium (bench_zones' city: 9,000 devices, a
    6,000-device crowd, 30 windows), every window measured through the deployed zone path
    (privacy.release.zones.measure_zones) at the default plan with fresh keys per trial. Levels in
    devices: critical = peak / 1.25 and warning = peak / 2.5 (the truth passes both by ≥ 10%)."""
    from collections import defaultdict
    from datetime import UTC, datetime

    import numpy as np

    from api.zones import zone_cells
    from hexpulse.service_area import load_service_area
    from hexpulse.zones import OPEN_END, Zone
    from privacy.release.budget import plan_from_settings
    from privacy.release.seeds import fresh_keys
    from privacy.release.zones import measure_zones, select_disjoint, zone_rows
    from simulator import SimConfig, generate
    from simulator.geo import LocalFrame
    from simulator.places import ZONE_SETS

    settings = load_settings()
    plan = plan_from_settings(settings)
    area = load_service_area(settings)
    base = area.cells
    start_ms = 1_900_000_000_000 // 60_000 * 60_000
    sim_cfg = SimConfig(devices=9000, stadium_crowd=6000, duration_s=1800, interval_s=15,
                        start_ms=start_ms, malformed_rate=0.0, seed=1)  # fmt: skip
    frame = LocalFrame(*sim_cfg.center)
    t0 = datetime(2020, 1, 1, tzinfo=UTC)
    res = settings.base_resolution
    zones = [Zone(a.slug, 1, zs, a.name, "{}", zone_cells(a.polygon(frame), res, area.cell_set), t0, OPEN_END)
             for zs, areas in ZONE_SETS.items() for a in areas]  # fmt: skip
    measured, _ = select_disjoint(zones, plan)
    sim = generate(sim_cfg, settings)
    owner = {c: z.zone_id for z in measured if z.zone_set == "crowd" for c in z.cells}
    truth: dict[tuple[int, str], int] = defaultdict(int)
    exact: dict[int, np.ndarray] = {}
    for w, cell, devices, _, _ in sim.truth.cells:
        vec = exact.setdefault(w, np.zeros(base.size, dtype=np.int64))
        vec[int(np.searchsorted(base, np.uint64(cell)))] += devices
        if int(cell) in owner:
            truth[(w, owner[int(cell)])] += devices
    windows = sorted(exact)
    stadium = max({z for _, z in truth}, key=lambda z: max(truth[(w, z)] for w in windows))
    curve = [float(truth[(w, stadium)]) for w in windows]
    peak = max(curve)
    warn, crit = peak / 2.5, peak / 1.25
    rule = Rule((Level("warning", warn, 0.8 * warn), Level("critical", crit, 0.8 * crit)), min_windows=2,
                confidence=0.9)  # fmt: skip
    t_events: list[tuple[int, int, int]] = []
    st = State()
    for k, v in enumerate(curve):
        st, ct = step(rule, st, v, 0.0)
        if ct:
            t_events.append((k, ct.before, ct.after))
    matched_e = matched_t = n_emit = 0
    for _ in range(trials):
        se, e_events = State(), []
        for k, w in enumerate(windows):
            values = measure_zones(plan, measured, base, exact[w], fresh_keys())
            row = next(r for r in zone_rows(datetime(2030, 1, 1), values, plan=0) if r[2] == stadium)
            se, ce = step(rule, se, float(row[5]), float(row[6]))  # type: ignore[arg-type]
            if ce:
                e_events.append((k, ce.before, ce.after))
        n_emit += len(e_events)
        matched_e += _matches(e_events, t_events, rule.min_windows)
        matched_t += _matches(t_events, e_events, rule.min_windows)
    print(f"city stadium {stadium!r}: {len(windows)} windows, truth min {min(curve):.0f} peak {peak:.0f}; "
          f"truth transitions per trial {len(t_events)}: {t_events}")  # fmt: skip
    return {"city_precision": round(matched_e / max(n_emit, 1), 4),
            "city_recall": round(matched_t / max(len(t_events) * trials, 1), 4)}  # fmt: skip


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    dev = load_settings()
    # The local server's default user reads as the "API" user here (bench_api.py does the same).
    base = load_settings(metrics_port=0, alerts_metrics_port=0, api_clickhouse_user=dev.clickhouse_user,
                         api_clickhouse_password=dev.clickhouse_password)  # fmt: skip
    sigma = crowd_sigma(base)
    tag = uuid.uuid4().hex[:6]
    with scratch_database(base, clickhouse_database=f"hexpulse_bench_alerts_{tag}",
                          alerts_allow_networks=("127.0.0.0/8",)) as s:  # fmt: skip
        ms = eval_cost(s, 5 if quick else 20, sigma)
    with scratch_database(base, clickhouse_database=f"hexpulse_bench_alertslag_{tag}",
                          alerts_allow_networks=("127.0.0.0/8",)) as s:  # fmt: skip
        lags = sorted(emit_lag(s, 6 if quick else 20))
    precision, recall, n_truth = quality(sigma, 200 if quick else 2000, 120)
    city = city_quality(5 if quick else 40)
    p95 = lags[min(len(lags) - 1, math.ceil(0.95 * len(lags)) - 1)]
    print(f"sigma (crowd zone, default plan) = {sigma:.2f} devices; truth events = {n_truth}")
    print(f"emit lags (s): {[round(x, 2) for x in lags]}")
    print(json.dumps({"alerts_eval_ms_per_window": round(ms, 1), "alert_emit_lag_s_p95": round(p95, 2),
                      "alert_precision": round(precision, 4), "alert_recall": round(recall, 4),
                      **city}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
