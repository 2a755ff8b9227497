"""`make soak`: the whole system for SOAK_MINUTES (default 30) next to the city in real time.

Runs the feed (``hexpulse simulate --speed realtime``; default the city at real density), two
consumers, the releaser, the API, the alert evaluator and the open-data exporter on the shared
services (fresh database, topics and group: benchmarks/live_city.py), samples every process's RSS,
the consumer group's lag and each window's release lag, and reports per process the RSS slope
(MB/h, least squares after ``--warmup-min``), first/last/peak RSS, and the bounds of both lags.

The load is the city itself: at real density it needs ~10,000 pings/s, which is below half of
the pipeline's measured capacity (BENCHMARKS.md "Pipeline": ≥ 100,000 pings/s per consumer
process on an idle machine), so "half the measured capacity" is met by the real city; ``--devices``
scales it down. Figures go to ``--out`` (JSON lines: one ``sample`` per 10 s, then the
``summary``) and the summary is printed last (one JSON line).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from live_city import LiveCity, load_average, pct, rss_slope_mb_per_h

from hexpulse.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "30")))
    parser.add_argument("--devices", type=int, default=None, help="default: real density")
    parser.add_argument("--lead-s", type=int, default=120, help="set-up time before the feed's start")
    parser.add_argument("--skip-truth", action="store_true", help="the feed computes no ground truth")
    parser.add_argument("--warmup-min", type=float, default=3.0, help="left out of slopes and bounds")
    parser.add_argument("--out", type=Path, default=Path(".local/soak.jsonl"))
    args = parser.parse_args()
    settings = load_settings()
    state = args.out.parent / "soak"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    live = LiveCity(
        settings,
        minutes=args.minutes,
        devices=args.devices,
        lead_s=args.lead_s,
        products=True,
        state=state,
        sample_s=10.0,
        skip_truth=args.skip_truth,
    )
    with live:
        print(f"soak: {args.minutes:g} min of the city from {live.feed_start_ms} ms; logs in {state}",
              flush=True)  # fmt: skip
        deadline = time.monotonic() + args.minutes * 60 + live.lead_s + 900
        while live.alive()["simulator"] and time.monotonic() < deadline:
            time.sleep(30)
            s = live.samples
            rss = {n: round(v[-1][1]) for n, v in s.rss_mb.items() if v}
            lag = s.consumer_lag[-1][1] if s.consumer_lag else None
            recent = list(s.release_seen_lag_s.values())[-1:] or [None]
            print(f"soak: {time.time() - started:5.0f} s  rss MB {rss}  consumer lag {lag}  "
                  f"last release lag {recent[0]}", flush=True)  # fmt: skip
        time.sleep(settings.window_s + settings.lateness_s + 30)
        alive = live.alive()
        rc = live.procs["simulator"].poll()
    feed_log = (state / "simulator.log").read_text().strip().splitlines()
    s = live.samples
    skip = args.warmup_min * 60 + live.lead_s
    first_ms = live.feed_start_ms + int(args.warmup_min * 60_000)
    lags = [v for k, v in s.release_seen_lag_s.items() if (k + settings.window_s) * 1000 > first_ms]
    cons = [n for t, n in s.consumer_lag if t >= skip]
    summary = {
        "soak_minutes": args.minutes,
        "feed": feed_log[-1] if feed_log else "",
        "feed_exit": rc,
        "processes_alive_at_end": alive,
        "rss": {
            name: {
                "slope_mb_per_h": round(rss_slope_mb_per_h(pts, skip), 1),
                "first_mb": round(pts[0][1], 1),
                "after_warmup_mb": round(next((m for t, m in pts if t >= skip), pts[-1][1]), 1),
                "last_mb": round(pts[-1][1], 1),
                "peak_mb": round(max(m for _, m in pts), 1),
            }
            for name, pts in s.rss_mb.items()
            if pts
        },
        "consumer_lag_messages": {"p95": pct(cons, 95), "max": max(cons, default=None)},
        "release_lag_s": {
            "windows": len(lags),
            "p50": round(pct(lags, 50), 1),
            "p95": round(pct(lags, 95), 1),
            "max": round(max(lags), 1) if lags else None,
            "bound": settings.window_s + settings.lateness_s + 5,
        },
        "load_average": load_average(),
    }
    with args.out.open("w") as f:
        for name, pts in s.rss_mb.items():
            for t, m in pts:
                row = {"sample": "rss", "process": name, "t_s": round(t, 1), "mb": round(m, 1)}
                f.write(json.dumps(row) + "\n")
        for t, n in s.consumer_lag:
            f.write(json.dumps({"sample": "consumer_lag", "t_s": round(t, 1), "messages": n}) + "\n")
        for k, v in sorted(s.release_seen_lag_s.items()):
            f.write(json.dumps({"sample": "release_lag", "window_start_s": k, "lag_s": round(v, 1)}) + "\n")
        f.write(json.dumps({"summary": summary}) + "\n")
    print(json.dumps(summary))
    if rc != 0:
        print(f"soak: the simulator exited with {rc}; see {state / 'simulator.log'}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
