"""Open data: the cost of exporting one released UTC day at the service area's real size.

Data: a scratch database holding one day of released windows over every cell of the bundled
service area at every released resolution (9, 8, 7; ~6,000 cells per window), with plausible
values (the export's cost does not depend on them), plus one window of the next day so the day is
complete. The export is the deployed one (``opendata.dataset.export_day``: slices of
``SLICE_WINDOWS`` windows → cells.csv + cells.parquet + zones.csv + datapackage.json), run in a
fresh process so its peak memory is its own.

Figures (last line, JSON): ``opendata_export_s`` (wall seconds for the day), ``rows``,
``rows_per_s``, ``export_peak_rss_mb`` (peak resident memory of the exporting process),
``cells_csv_mb``, ``cells_parquet_mb``, ``windows``.

Usage: ``.venv/bin/python benchmarks/bench_opendata.py [--quick]`` (quick: 60 windows instead of 1,440).
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import h3
import numpy as np

from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings, load_settings
from hexpulse.store import connect
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import scratch_database

QUICK = "--quick" in sys.argv
WINDOWS = 60 if QUICK else 1440
DAY = date(2026, 1, 15)  # any day: the export reads what is released, whatever its date
COLUMNS = ("window_start, res, cell, count, count_sigma, count_lo, count_hi, moving, moving_sigma, moving_lo,"
           " moving_hi, speed_kmh, speed_lo_kmh, speed_hi_kmh, count_est, moving_est")  # fmt: skip


def _cells(settings: Settings) -> list[tuple[int, int]]:
    base = sorted(load_service_area(settings).cell_set)
    out = [(9, c) for c in base]
    for res in (8, 7):
        parents = {h3.str_to_int(h3.cell_to_parent(h3.int_to_str(c), res)) for c in base}
        out += [(res, c) for c in sorted(parents)]
    return out


def _fill(settings: Settings, windows: int) -> int:
    client = connect(settings)
    cells = _cells(settings)
    res = [r for r, _ in cells]
    ids = [c for _, c in cells]
    rng = np.random.default_rng(1)
    start = datetime(DAY.year, DAY.month, DAY.day)
    n = len(cells)
    for w in range(windows + 1):  # + the first window of the next day
        t = start + timedelta(minutes=w)
        est = rng.normal(40.0, 30.0, n)
        count = np.maximum(np.rint(est), 0).astype(int).tolist()
        speed = [None if i % 3 else 31.5 for i in range(n)]
        data = [[t] * n, res, ids, count, [26.8] * n, (est - 52.6).clip(0).tolist(), (est + 52.6).tolist(),
                count, [26.8] * n, [0.0] * n, (est + 52.6).tolist(), speed,
                [None if s is None else s - 9 for s in speed], [None if s is None else s + 9 for s in speed],
                est.tolist(), est.tolist()]  # fmt: skip
        client.execute(f"INSERT INTO release_cells ({COLUMNS}) VALUES", data, columnar=True)
    client.execute(
        "INSERT INTO release_windows (window_start, window_end, released_at, base_cells, rho, mechanism,"
        " lag_s) VALUES",
        [(start + timedelta(minutes=w), start + timedelta(minutes=w + 1), start + timedelta(minutes=w + 2),
          len(ids), 0.001, "gaussian", 2.0) for w in range(windows + 1)],
    )  # fmt: skip
    client.disconnect()
    return windows * n


def _export(settings: Settings, root: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from opendata.dataset import export_day

    t0 = time.perf_counter()
    export_day(ClickHousePool(settings, size=1), Path(root), DAY)
    out.put((time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def main() -> None:
    base = load_settings()
    tag = uuid.uuid4().hex[:6]
    # The pipeline user reads the scratch database; access control is not what this measures.
    with scratch_database(base, clickhouse_database=f"bench_opendata_{tag}",
                          api_clickhouse_user=base.clickhouse_user,
                          api_clickhouse_password=base.clickhouse_password) as settings:  # fmt: skip
        t0 = time.perf_counter()
        rows = _fill(settings, WINDOWS)
        print(f"filled {rows:,} rows in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        with tempfile.TemporaryDirectory() as root:
            ctx = multiprocessing.get_context("spawn")
            queue = ctx.Queue()
            proc = ctx.Process(target=_export, args=(settings, root, queue))
            proc.start()
            seconds, rss_mb = queue.get()
            proc.join()
            folder = Path(root) / DAY.isoformat()
            figures = {
                "windows": WINDOWS,
                "rows": rows,
                "opendata_export_s": round(seconds, 1),
                "rows_per_s": round(rows / seconds),
                "export_peak_rss_mb": round(rss_mb),
                "cells_csv_mb": round((folder / "cells.csv").stat().st_size / 1e6, 1),
                "cells_parquet_mb": round((folder / "cells.parquet").stat().st_size / 1e6, 1),
                "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            print(json.dumps(figures), flush=True)  # before the scratch database is dropped


if __name__ == "__main__":
    main()
