"""Where a consumer's memory goes: one real consume loop driven by a paced feed, sampled per window.

Runs ``hexpulse simulate`` (a subprocess, ``--speed`` times faster than real time, so a few hours
of *event* time pass in minutes; record timestamps follow event time, so windows close at that
pace) and, in this process, the consume loop of ``hexpulse consume`` owning every partition, on
the shared services with a fresh database, topics and group (benchmarks/live_city.py). Every time
the loop's horizon passes a window it records one ``sample`` line (``--out``, JSON lines):

- ``rss_mb`` (the process's resident set, MB) and, with ``--tracemalloc N``, ``traced_mb``: what
  Python's allocators hold for live objects (numpy's array buffers included), so RSS − traced is
  what the C allocator keeps beyond live objects (free lists, fragmentation, arenas);
- ``gc_objects`` (objects tracked by the cycle collector) and the loop's own state sizes;
- with ``--trim-every K``, every K windows ``rss_trimmed_mb``: RSS right after glibc's
  ``malloc_trim(0)`` gave free heap pages back (fragmentation vs live objects).

With ``--tracemalloc N`` (frames per traceback) a snapshot is compared with the one taken after
warm-up every ``--snapshot-windows`` windows: the top growth by traceback goes to the same file
(``growth`` lines). Run alone (one consumer + the feed ≈ one core); not part of ``make test``.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import json
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any, TextIO

import psutil
from kafka import KafkaAdminClient
from live_city import HEXPULSE, LiveCity, load_average, rss_slope_mb_per_h

from hexpulse.kafka import ensure_topics
from hexpulse.settings import Settings, get_settings, load_settings
from hexpulse.store.scratch import create_database, drop_database

MB = 2**20


def _malloc_trim() -> bool:
    """glibc's ``malloc_trim(0)``: give free heap memory back to the kernel (False if unavailable)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    libc.malloc_trim(0)
    return True


class Sampler:
    """The loop's ``stop_when`` hook: one sample per window the horizon passes (see module doc)."""

    def __init__(self, out: TextIO, args: argparse.Namespace, window_ms: int) -> None:
        self.out, self.args, self.window_ms = out, args, window_ms
        self.proc = psutil.Process()
        self.t0 = time.monotonic()
        self.last_window: int | None = None
        self.windows = 0
        self.baseline: tracemalloc.Snapshot | None = None
        self.rows: list[dict[str, Any]] = []

    def __call__(self, loop: Any) -> bool:
        parts = loop.agg.partitions
        if not parts:
            return False
        horizon = min(pw.horizon_ms for pw in parts.values())
        if horizon <= 0 or (self.last_window is not None and horizon - self.last_window < self.window_ms):
            return False
        self.last_window = horizon
        self.windows += 1
        self.sample(loop, horizon)
        return False

    def sample(self, loop: Any, horizon: int) -> None:
        args = self.args
        ingestor = loop.ingestor
        row: dict[str, Any] = {
            "sample": "window",
            "n": self.windows,
            "wall_s": round(time.monotonic() - self.t0, 1),
            "horizon_ms": horizon,
            "rss_mb": round(self.proc.memory_info().rss / MB, 1),
            "gc_objects": len(gc.get_objects()),
            "buffered_pings": sum(pw.buffered for pw in loop.agg.partitions.values()),
            "buffered_mb": round(sum(pw.nbytes for pw in loop.agg.partitions.values()) / MB, 1),
            "pending_closings": len(loop.agg.pending),
            "partition_keys": ingestor._partitions._size,
            "binner_extra_cells": len(ingestor._binner._extra),
            "dlq_pending": len(getattr(ingestor._dlq, "_pending", ())),
            "records": loop.stats.records,
            "pings": loop.stats.pings,
        }
        if tracemalloc.is_tracing():
            row["traced_mb"] = round(tracemalloc.get_traced_memory()[0] / MB, 1)
            row["tracemalloc_own_mb"] = round(tracemalloc.get_tracemalloc_memory() / MB, 1)
        if args.trim_every and self.windows % args.trim_every == 0 and _malloc_trim():
            row["rss_trimmed_mb"] = round(self.proc.memory_info().rss / MB, 1)
        self.rows.append(row)
        self.out.write(json.dumps(row) + "\n")
        self.out.flush()
        if not tracemalloc.is_tracing():
            return
        if self.windows == args.warmup_windows:
            gc.collect()
            self.baseline = tracemalloc.take_snapshot()
        elif self.baseline is not None and (self.windows - args.warmup_windows) % args.snapshot_windows == 0:
            self.growth(tracemalloc.take_snapshot())

    def growth(self, snap: tracemalloc.Snapshot) -> None:
        assert self.baseline is not None
        for stat in snap.compare_to(self.baseline, "traceback")[: self.args.top]:
            frames = [f"{f.filename.split('site-packages/')[-1]}:{f.lineno}" for f in stat.traceback]
            row = {
                "sample": "growth",
                "n": self.windows,
                "size_diff_kb": round(stat.size_diff / 1024, 1),
                "size_kb": round(stat.size / 1024, 1),
                "count_diff": stat.count_diff,
                "traceback": frames,
            }
            self.out.write(json.dumps(row) + "\n")
        self.out.flush()


def curve(rows: list[dict[str, Any]], warmup_windows: int = 10) -> dict[str, Any]:
    """The RSS curve of ``window`` samples: first/last/peak MB, and least-squares slopes in MB per
    hour of *event* time after ``warmup_windows``, over the whole rest and over each half of it."""
    win = [r for r in rows if r.get("sample") == "window"]
    if not win:
        return {"windows": 0}
    t0 = win[0]["horizon_ms"]
    pts = [((r["horizon_ms"] - t0) / 1000, r["rss_mb"]) for r in win]
    rest = pts[warmup_windows:]
    half = len(rest) // 2
    skip = rest[0][0] if rest else 0.0
    gc_at = win[min(warmup_windows, len(win) - 1)]["gc_objects"]
    trimmed = [(r["n"], r["rss_mb"], r["rss_trimmed_mb"]) for r in win if "rss_trimmed_mb" in r]
    return {
        "windows": len(win),
        "rss_first_mb": pts[0][1],
        "rss_after_warmup_mb": rest[0][1] if rest else None,
        "rss_last_mb": pts[-1][1],
        "rss_peak_mb": max(m for _, m in pts),
        "slope_mb_per_event_h": round(rss_slope_mb_per_h(pts, skip), 1),
        "slope_first_half": round(rss_slope_mb_per_h(rest[:half], skip), 1),
        "slope_second_half": round(rss_slope_mb_per_h(rest[half:], skip), 1),
        "gc_objects_after_warmup_last": [gc_at, win[-1]["gc_objects"]],
        "trims_window_before_after_mb": trimmed,
    }


def _drop(settings: Settings) -> None:
    drop_database(settings)
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","))
    with contextlib.suppress(Exception):  # retention empties a topic left behind within a day
        admin.delete_topics([settings.topic_pings, settings.topic_dlq])
    admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=77_000, help="a tenth of the real density")
    parser.add_argument("--hours", type=float, default=2.0, help="event time of the feed")
    parser.add_argument("--speed", type=float, default=8.0, help="event time per wall second")
    parser.add_argument("--tracemalloc", type=int, default=0, help="frames per traceback; 0: off")
    parser.add_argument("--warmup-windows", type=int, default=10, help="the baseline snapshot's window")
    parser.add_argument("--snapshot-windows", type=int, default=30, help="windows between comparisons")
    parser.add_argument("--top", type=int, default=12, help="growth lines per comparison")
    parser.add_argument("--trim-every", type=int, default=0, help="malloc_trim every K windows; 0: never")
    parser.add_argument("--out", type=Path, default=Path(".local/consumer-memory.jsonl"))
    parser.add_argument("--summarize", type=Path, help="print the curve of a run's samples and exit")
    args = parser.parse_args()
    if args.summarize:
        print(json.dumps(curve([json.loads(line) for line in args.summarize.read_text().splitlines()])))
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    state = args.out.parent / "consumer-memory"
    live = LiveCity(load_settings(), minutes=args.hours * 60, state=state)
    settings = live.settings.model_copy(update={"metrics_port": 0})
    state.mkdir(parents=True, exist_ok=True)
    # A partition quiet at the start would be idle-closed up to the wall clock, hours past this
    # replay's event times, making all of it late: no idle close during the run.
    os.environ.update(live.env() | {"HEXPULSE_IDLE_TIMEOUT_S": "86400"})
    get_settings.cache_clear()
    create_database(settings)
    ensure_topics(settings, [settings.topic_pings, settings.topic_dlq])
    try:
        _run(args, live, settings, state)
    finally:
        _drop(settings)


def _run(args: argparse.Namespace, live: LiveCity, settings: Settings, state: Path) -> None:
    from aggregate.cli import _build_loop

    stop = threading.Event()
    loop = _build_loop(stop, idle_exit_s=60.0)  # warms the binning table before the feed starts
    if args.tracemalloc:  # after that warm-up, which tracing would slow tenfold
        tracemalloc.start(args.tracemalloc)
    duration_s = int(args.hours * 3600)
    start_ms = (int(time.time()) - duration_s) * 1000  # the feed ends near now in event time
    feed_log = (state / "simulator.log").open("wb")
    feed = subprocess.Popen(
        [HEXPULSE, "simulate", "--devices", str(args.devices), "--duration", f"{duration_s}s",
         "--start", str(start_ms), "--speed", f"{args.speed:g}", "--seed", "2", "--skip-truth",
         "--topic", settings.topic_pings],
        env=live.env(), stdout=feed_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    with args.out.open("w") as out:
        sampler = Sampler(out, args, settings.window_ms)
        done = loop.stop_when
        loop.stop_when = lambda lp: sampler(lp) or (done is not None and done(lp))
        try:
            stats = loop.run()
        finally:
            for close in loop.closers:
                with contextlib.suppress(Exception):
                    close()
            if feed.poll() is None:
                feed.terminate()
            feed.wait(timeout=30)
        summary = {
            "devices": args.devices,
            "hours": args.hours,
            "speed": args.speed,
            "pings": stats.pings,
            "feed_exit": feed.returncode,
            **curve(sampler.rows),
            "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX"),
            "load_average": load_average(),
        }
        out.write(json.dumps({"summary": summary}) + "\n")
    print(json.dumps(summary))
    sys.exit(0 if feed.returncode == 0 else 1)


if __name__ == "__main__":
    main()
