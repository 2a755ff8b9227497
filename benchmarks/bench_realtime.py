"""realtime_lag_s_p95: does the pipeline keep up in real time next to the city at real density?

Runs the simulated city (default: real density, docs/SIMULATOR.md) in real time for
``--minutes`` with two consumers and the releaser on the shared services (fresh database, topics
and group: benchmarks/live_city.py), and measures for every window the time from its end until
its release is visible in ``release_windows``. Issue #12's bound: window + lateness + 5 s.
Windows whose event time ends within the first ``--warmup-min`` (consumers joining, the first
minutes of the feed) are left out of the figure and reported apart.

Last line: JSON with ``realtime_lag_s_p95``, ``realtime_lag_s_max``, ``realtime_lag_bound_s``,
``windows``, ``sim_devices``, ``feed_pings_per_s``, ``feed_behind_s_p95``, ``consumer_lag_max``
(messages), ``load_average`` (1/5/15 min at the end).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

from live_city import LiveCity, load_average, pct

from hexpulse.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=6.0, help="event-time minutes (default 6)")
    parser.add_argument("--devices", type=int, default=None, help="default: real density")
    parser.add_argument("--lead-s", type=int, default=120, help="set-up time before the feed's start")
    parser.add_argument("--skip-truth", action="store_true", help="the feed computes no ground truth")
    parser.add_argument("--warmup-min", type=float, default=2.0, help="windows left out at the start")
    args = parser.parse_args()
    settings = load_settings()
    with tempfile.TemporaryDirectory(prefix="bench-realtime-") as tmp:
        state = Path(tmp)
        live = LiveCity(
            settings, minutes=args.minutes, devices=args.devices, lead_s=args.lead_s, state=state,
            sample_s=1.0, skip_truth=args.skip_truth,
        )
        with live:
            rc = live.wait_feed(timeout_s=args.minutes * 60 + live.lead_s + 600)
            # The last windows close once the lateness has passed and the consumers idle-close them.
            time.sleep(settings.window_s + settings.lateness_s + 30)
            feed_log = (state / "simulator.log").read_text()
        if rc != 0:
            print(feed_log[-3000:], file=sys.stderr)
            raise SystemExit(f"the simulator exited with {rc}")
    s = live.samples
    first_ms = live.feed_start_ms + int(args.warmup_min * 60_000)
    w = settings.window_s
    lags = [lag for start, lag in sorted(s.release_seen_lag_s.items()) if (start + w) * 1000 > first_ms]
    warm = [lag for start, lag in sorted(s.release_seen_lag_s.items()) if (start + w) * 1000 <= first_ms]
    done = re.search(r"([\d,]+) devices, ([\d,]+) pings/s sustained.*p95 ([\d.]+) s", feed_log)
    print(feed_log.strip().splitlines()[-1])
    print(f"windows released {len(lags)} (+{len(warm)} in warm-up, lags {[round(x, 1) for x in warm]})")
    print(
        json.dumps(
            {
                "realtime_lag_s_p95": round(pct(lags, 95), 1),
                "realtime_lag_s_max": round(max(lags), 1) if lags else None,
                "realtime_lag_s_median": round(pct(lags, 50), 1),
                "realtime_lag_bound_s": w + settings.lateness_s + 5,
                "server_lag_s_p95": round(pct(list(s.release_server_lag_s.values()), 95), 1),
                "windows": len(lags),
                "sim_devices": int(done.group(1).replace(",", "")) if done else None,
                "feed_pings_per_s": int(done.group(2).replace(",", "")) if done else None,
                "feed_behind_s_p95": float(done.group(3)) if done else None,
                "consumer_lag_max": max((n for _, n in s.consumer_lag), default=None),
                "load_average": load_average(),
            }
        )
    )


if __name__ == "__main__":
    main()
