"""Tourism accuracy at real visitor numbers, end to end: the figures of issue #14 from what the
deployed code releases for one whole local day (Asia/Shanghai) of the simulated city.

Path: the streamed simulator (``simulator.stream.CityStream``, 10 windows a span) → the real
Kafka broker (a fresh CreateTime topic, librdkafka sender stamping records as the gateway would)
→ ``hexpulse consume`` × 2 (ingest, aggregate, tourism presence rows) → ``hexpulse release`` (every
window, then the daily tourism release: exact daily partials, noise once, ledger) → a fresh
ClickHouse database. Ground truth: benchmarks/tourism_truth.py (from the same pings).

The city: the scenic areas' tourists at real numbers (``tourist_share`` = the market share: 11,137
tourist devices a day, simulator/population.py) in a thin background (``--background`` other
devices, default 6,000, instead of ~759,000; they only add passers-by and residents, who are
counted like tourists when they are in a zone) and a service area cut to a 3.5 × 5.5 km box
around the scenic areas (so the releaser's ~1,450 windows of the day fit the run; the box holds
every tourist's path). Event time: 10 min before the local day's 00:00 to 2.5 min after its end.

Phases: (A) everything before the day's end, as fast as possible; wait until every window but the
last is public; (B) the last 2.5 minutes paced at real time from the day's end. The release lag is
the wall time from the start of (B) — the local midnight of a feed that keeps real time — until
the day's rows are visible: it holds the lateness (the last window closes when a record 30 s past
midnight arrives), the consumers' write, the releaser's poll, its window release, its 30 s tourism
cadence and the daily draw.

Coverage needs many area-days: the deployed release draws once per area-day; the figures add
``--draws`` redraws of the same exact partials with fresh random keys through the deployed
``add_noise`` (what ``TourismReleaser.release_day`` calls), stated as such.

Usage: .venv/bin/python benchmarks/bench_tourism.py [--background N] [--draws R] [--seed S]
(make bench-tourism). Not in ``make test``: 55 min at load ~18 (BENCHMARKS.md "Tourism").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson
from city_pipeline import register_zones
from live_city import KEY, LiveCity
from pydantic import SecretStr
from tourism_truth import AreaDayTruth, TruthAccumulator, coverage, median_rel_err

from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings, load_settings
from hexpulse.store import connect
from hexpulse.times import S_PER_DAY, naive_utc
from privacy.keys.keyring import KeyRing
from privacy.release.budget import plan_from_settings
from privacy.release.mechanisms import Z95, add_noise
from privacy.release.seeds import DrawKeys
from privacy.release.shares import TOURISM_DWELL, TOURISM_VISITORS
from privacy.release.tourism_daily import DWELL_METRICS, daily_partials, local_day_bounds
from privacy.release.tourism_release import TourismReleaser
from simulator import SCENIC_AREAS, SimConfig
from simulator.city import TOURIST
from simulator.geo import LocalFrame
from simulator.messages import Span
from simulator.places import DEFAULT_CENTER
from simulator.population import MARKET_SHARE, census
from simulator.producer import produce_spans
from simulator.stream import CityStream

TZ = "Asia/Shanghai"
LEAD_S, TAIL_S = 600, 150
BOX_M = (-1300.0, -4450.0, 2200.0, 1050.0)
"""The benchmark's service area (x0, y0, x1, y1 in m from the city centre): the scenic areas and
every tourist's path to and from them (300–1,200 m rings, simulator/motion.py) with 300 m spare."""
IDLE_S = 7200
PACED = 1.0 + 1e-9
"""Phase B's speed: paced from its first record (exactly 1.0 means "at the wall clock's time")."""


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load()}] {msg}", flush=True)


def last_local_day(now_s: float) -> date:
    """The latest local day whose end (plus the tail) is past."""
    d = datetime.fromtimestamp(now_s - TAIL_S - 120, UTC).astimezone(ZoneInfo(TZ)).date()
    return d - timedelta(days=1)


def box_geojson(frame: LocalFrame) -> dict[str, Any]:
    x0, y0, x1, y1 = BOX_M
    ring = [list(frame.point(x, y)) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))]
    feature = {"type": "Feature", "properties": {"name": "bench_tourism box"},
               "geometry": {"type": "Polygon", "coordinates": [ring]}}  # fmt: skip
    return {"type": "FeatureCollection", "features": [feature]}


def register_areas(s: Settings, ids: list[str]) -> None:
    """Tourism areas on the scenic zones, written as if registered in 2020 (a zone counts for
    presence only after its area's revision, aggregate/presence.py; this is a backfill)."""
    since = datetime(2020, 1, 1, tzinfo=UTC)
    rows = [(i, i, i, 0, TZ, naive_utc(since.timestamp()), 0, int(since.timestamp()) * 10**9) for i in ids]
    client = connect(s)
    try:
        client.execute("INSERT INTO tourism_areas (area_id, name, zone_id, capacity, timezone, created_at, "
                       "deleted, revision) VALUES", rows)  # fmt: skip
    finally:
        client.disconnect()


def public_windows(s: Settings, a: int, b: int) -> int:
    client = connect(s)
    try:
        ((n,),) = client.execute(
            "SELECT uniqExact(window_start) FROM release_windows WHERE window_start >= %(a)s "
            "AND window_start < %(b)s", {"a": naive_utc(a), "b": naive_utc(b)})  # fmt: skip
        return int(n)
    finally:
        client.disconnect()


def wait_public(live: LiveCity, a: int, b: int, timeout_s: float) -> float:
    """Wait until every window starting in ``[a, b)`` (epoch s) is public; seconds waited."""
    t0, want, next_log = time.monotonic(), (b - a) // live.settings.window_s, 0.0
    while (n := public_windows(live.settings, a, b)) < want:
        if time.monotonic() - t0 > timeout_s or not all(live.alive().values()):
            raise RuntimeError(f"{n} of {want} windows public after {time.monotonic() - t0:.0f} s; "
                               f"processes alive: {live.alive()} (logs in {live.state})")  # fmt: skip
        if time.monotonic() >= next_log:
            log(f"public windows {n}/{want}")
            next_log = time.monotonic() + 60
        time.sleep(2)
    return time.monotonic() - t0


def wait_day(s: Settings, day: date, n_areas: int, t0: float, timeout_s: float) -> tuple[float, float]:
    """Poll until the day's rows exist: (seen − t0, max released_at − t0) in s (t0: wall clock)."""
    client = connect(s)
    try:
        while time.time() - t0 < timeout_s:
            rows = client.execute(
                "SELECT count(), toUInt32(max(released_at)) FROM release_tourism_days FINAL "
                "WHERE local_date = %(d)s AND timezone = %(tz)s", {"d": day, "tz": TZ})  # fmt: skip
            if rows[0][0] >= n_areas:
                return time.time() - t0, rows[0][1] - t0
            time.sleep(0.5)
        raise RuntimeError(f"the tourism day {day} was not released within {timeout_s:.0f} s")
    finally:
        client.disconnect()


class Every:
    """The producer's progress lines, one per ``period_s``."""

    def __init__(self, period_s: float) -> None:
        self.period_s, self.next = period_s, 0.0

    def __call__(self, line: str) -> None:
        if time.monotonic() >= self.next:
            log(line)
            self.next = time.monotonic() + self.period_s


def draws(v_in: np.ndarray, d_in: np.ndarray, tr: TourismReleaser, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` redraws of the day's two vectors with fresh random keys (rows: draws)."""
    assert tr.visitors is not None and tr.dwell is not None
    vs, ds = [], []
    for r in range(n):
        keys = DrawKeys(os.urandom(32), b"bench-tourism|draw=%d" % r)
        vs.append(add_noise(v_in, tr.visitors.params, keys.key(TOURISM_VISITORS, 0)))
        ds.append(add_noise(d_in, tr.dwell.params, keys.key(TOURISM_DWELL, 0)))
    return np.array(vs, float), np.array(ds, float)


def score(s: Settings, day: date, ids: list[str], truths: list[AreaDayTruth], n_draws: int) -> dict[str, Any]:
    client = connect(s)
    try:
        plan = plan_from_settings(s)
        tr = TourismReleaser(s, client, KeyRing.from_settings(s), plan)
        k = plan.tourism_max_areas
        ranking = lambda d: [a for a, _ in tr.areas_as_of(d * S_PER_DAY)]  # noqa: E731 (the releaser's rule)
        exact = daily_partials(tr.reader, ranking, day, TZ, k, ids)
        got = client.execute("SELECT area_id, metric, estimate, sigma FROM release_tourism_daily FINAL "
                             "WHERE local_date = %(d)s", {"d": day})  # fmt: skip
    finally:
        client.disconnect()
    assert tr.visitors is not None and tr.dwell is not None
    released = {(str(a), str(m)): (float(e), float(sg)) for a, m, e, sg in got}
    sv, sd = tr.visitors.params.sigma, tr.dwell.params.sigma
    v_in = np.array([exact[i].visitors for i in ids], np.int64)
    d_in = np.array([exact[i].dwell for i in ids], np.int64).reshape(-1)
    v_true = np.array([t.visitors for t in truths], float)
    d_true_int = np.array([t.dwell for t in truths], np.int64).reshape(-1)
    d_true = d_true_int.astype(float)
    v_real = np.array([[released[(i, "visitors")][0] for i in ids]])
    d_real = np.array([[released[(i, m)][0] for i in ids for m in DWELL_METRICS]])
    v_more, d_more = draws(v_in, d_in, tr, n_draws)
    v_all, d_all = np.vstack([v_real, v_more]), np.vstack([d_real, d_more])
    big = v_true >= 2000
    zone_dev = np.array([t.zone_devices for t in truths], float)
    poly = np.array([t.polygon_devices for t in truths], float)
    return {
        "tourism_visitors_ci95_coverage": round(coverage(v_all, sv, v_true[None, :], Z95), 4),
        "tourism_visitors_median_rel_err": round(median_rel_err(v_all[:, big], v_true[None, big]), 5)
        if big.any() else None,
        "tourism_dwell_ci95_coverage": round(coverage(d_all, sd, d_true[None, :], Z95), 4),
        "area_days": int(v_all.size), "dwell_bin_draws": int(d_all.size), "sigma_visitors": round(sv, 3),
        "sigma_dwell": round(sd, 3), "k_areas": k,
        "released_once": {i: {"visitors": released[(i, "visitors")],
                              "dwell": [released[(i, m)][0] for m in DWELL_METRICS]} for i in ids},
        "exact_minus_truth": {i: {"visitors": int(v_in[j] - v_true[j]),
                                  "dwell": (d_in - d_true_int)[4 * j: 4 * j + 4].tolist()}
                              for j, i in enumerate(ids)},
        "truth": {i: t.__dict__ for i, t in zip(ids, truths, strict=True)},
        "double_count_share": {i: round(t.double_counted / max(t.zone_devices, 1), 4)
                               for i, t in zip(ids, truths, strict=True)},
        "coverage_vs_zone_devices": round(coverage(v_all, sv, zone_dev[None, :], Z95), 4),
        "coverage_vs_polygon_devices": round(coverage(v_all, sv, poly[None, :], Z95), 4),
        "median_rel_err_vs_polygon_devices": round(median_rel_err(v_all[:, big], poly[None, big]), 4)
        if big.any() else None,
    }  # fmt: skip


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--background", type=int, default=6000, help="other devices than tourists (6000)")
    ap.add_argument("--draws", type=int, default=4000, help="redraws over the same partials (default 4000)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tourist-share", type=float, default=MARKET_SHARE,
                    help=f"devices per tourist (default {MARKET_SHARE}: real numbers; less for a smoke run)")
    ap.add_argument("--consumers", type=int, default=2)
    ap.add_argument("--day", type=date.fromisoformat, default=None, help="local day (default: last ended)")
    args = ap.parse_args(argv)
    t_start, cpu0 = time.monotonic(), time.process_time()
    state = Path(tempfile.mkdtemp(prefix="tourismbench-"))
    frame = LocalFrame(*DEFAULT_CENTER)
    area_path = state / "service_area.geojson"
    area_path.write_bytes(orjson.dumps(box_geojson(frame)))
    age = 2 * S_PER_DAY  # a backfill of yesterday: records are stamped as the gateway would have
    base = load_settings(master_key=SecretStr(KEY), state_dir=state, service_area_path=area_path,
                         max_ping_age_s=age, idle_timeout_s=IDLE_S, metrics_port=0)  # fmt: skip
    # No idle close by wall clock (HEXPULSE_IDLE_TIMEOUT_S): a backfill's partitions are quiet while
    # the city is set up and between the phases, and a wall-clock close would make its pings late.
    env = {"HEXPULSE_SERVICE_AREA_PATH": str(area_path), "HEXPULSE_MAX_PING_AGE_S": str(age),
           "HEXPULSE_IDLE_TIMEOUT_S": str(IDLE_S)}  # fmt: skip
    day = args.day or last_local_day(time.time())
    day_start, day_end = local_day_bounds(day, TZ)
    start_ms, duration = (day_start - LEAD_S) * 1000, LEAD_S + day_end - day_start + TAIL_S
    tourists = census(1, duration, start_ms, args.tourist_share).tourists
    cfg = SimConfig(devices=tourists + args.background, duration_s=duration, start_ms=start_ms,
                    tourist_share=args.tourist_share, seed=args.seed)  # fmt: skip
    ids = sorted(a.slug for a in SCENIC_AREAS)
    scenic = sorted(SCENIC_AREAS, key=lambda a: a.slug)
    log(f"local day {day} ({TZ}); {tourists} tourist + {args.background} other devices; plan "
        f"{','.join(base.budget_plan)}; state {state}")  # fmt: skip
    with LiveCity(base, minutes=0, consumers=args.consumers, state=state, feed=False, env=env) as live:
        s = live.settings
        area = load_service_area(s)
        zones = {z.zone_id: z for z in register_zones(s, area, frame)}
        register_areas(s, ids)
        stream = CityStream(cfg, s, span_windows=10, area=area, truth=False)
        cells = [np.array(sorted(zones[i].cells), np.uint64) for i in ids]
        is_tourist = stream.city.device_kind == TOURIST
        truth = TruthAccumulator(s, area, frame, scenic, cells, stream.home, is_tourist)
        spans, held = stream.spans(), []
        log(f"city set up: {stream.devices} devices, zones {[len(c) for c in cells]} cells")

        def head() -> Iterator[Span]:
            for sp in spans:
                truth.add(sp)
                if sp.start_ms >= day_end * 1000:
                    held.append(sp)
                    return
                yield sp

        def tail() -> Iterator[Span]:
            yield from held
            for sp in spans:
                truth.add(sp)
                yield sp

        common = {"home": stream.home, "devices": stream.devices, "topic": s.topic_pings,
                  "progress": Every(30)}  # fmt: skip
        a = produce_spans(s, head(), start_ms=start_ms, end_ms=day_end * 1000, speed=math.inf, **common)
        t_a = time.monotonic() - t_start
        log(f"phase A sent: {a.messages:,} messages, {a.pings:,} pings in {a.seconds:.0f} s")
        waited = wait_public(live, start_ms // 1000, day_end - s.window_s, 3600)
        log(f"every window but the last public after {waited:.0f} s more")
        t0 = time.time()
        sent: list[Any] = []
        feed = threading.Thread(target=lambda: sent.append(produce_spans(
            s, tail(), start_ms=day_end * 1000, end_ms=stream.end_ms, speed=PACED, **common)))  # fmt: skip
        feed.start()
        seen_s, server_s = wait_day(s, day, len(ids), t0, TAIL_S + 600)
        log(f"tourism day released {seen_s:.1f} s after the paced local midnight")
        feed.join()
        truths = truth.day(day, TZ, plan_from_settings(s).tourism_max_areas)
        figures = score(s, day, ids, truths, args.draws)
    shutil.rmtree(state, ignore_errors=True)
    figures |= {
        "tourism_release_lag_s": round(seen_s, 1), "release_lag_server_s": round(server_s, 1),
        "local_day": day.isoformat(), "tourist_devices": tourists, "background_devices": args.background,
        "pings": truth.pings, "messages": a.messages + sent[0].messages, "phase_a_s": round(t_a),
        "wait_public_s": round(waited), "wall_s": round(time.monotonic() - t_start),
        "cpu_s_bench_process": round(time.process_time() - cpu0), "load_avg_end": load(),
        "budget_plan": ",".join(base.budget_plan),
    }  # fmt: skip
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
