"""One released UTC day exported as a folder ``YYYY-MM-DD/`` under the open-data root.

The folder is written under a temporary name and renamed into place, so a folder that exists is
complete: a crash mid-export leaves only a temporary folder (removed by the next export), and an
export repeated after a crash (the feed delivers at least once) finds the folder and stops.
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

from hexpulse.settings import Settings
from hexpulse.store.pool import ClickHousePool
from opendata import files
from releases.days import cells_between, day_window_starts, day_zones
from releases.tourism import day_geometries, days_of_local_date

DAY_FOLDER = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FILES = ("README.md", "datapackage.json", "cells.csv", "cells.parquet", "zones.csv", "tourism.csv",
         "tourism.parquet")
"""Every file of a day's folder (the only names ``/open-data/`` serves)."""
_TMP_PREFIX = ".partial-"
#: Windows read and written at a time: at real density (~6,000 released cells per window over three
#: resolutions) 30 one-minute windows are ~180,000 rows, so memory stays bounded whatever the day.
SLICE_WINDOWS = 30

README = """# hexpulse open data, {day} (UTC)

Crowd density released by hexpulse for every window of {day} UTC ({windows} windows).

## What the numbers are
- `cells.csv` / `cells.parquet`: per release window and H3 cell (resolutions 9, 8 and 7), the
  number of distinct devices present (`count_*`) and of moving devices (`moving_*`), and the mean
  speed of the moving ones. `cells.parquet` is GeoParquet: the same rows plus each cell's outline.
- `zones.csv`: per release window, each registered zone measured directly as one value.
- `tourism.csv`: the released tourism area-days of local date {tourism_date} (the day before this
  folder's UTC day: the newest local date that has ended in every time zone when this folder is
  written): distinct visitors per area and local day and their dwell histogram (minutes present:
  < 15, 15–60, 60–180, ≥ 180), one row per area and metric. An area-day released more than 12
  hours after its local midnight is not in any folder (read it from the API). `tourism.parquet`
  is GeoParquet: the same rows plus the polygon of each area's registered zone.
- `*_est` is an unbiased estimate with standard error `*_sigma`; `*_lo`..`*_hi` is its 95%
  interval. Add `*_est` values for sums (the error of a sum is not the sum of the sigmas:
  resolutions are reconciled, so estimates of a cell and its parent are correlated).
- `count`/`moving` are display values: the estimate rounded and clipped to zero or more. They are
  biased upward where counts are small; never add them up.
- Units: devices (phones seen by the data sources), not people. Times are UTC.

## What they are not
- Not exact: every value carries deliberate random noise (differential privacy, see the
  deployment's `/privacy` page for the budget and its guarantee). A cell with a handful of
  devices is mostly noise; read the interval, not the point.
- Not a census of people: devices without the data sources' apps or carrier are not counted,
  and one person may carry two devices.
- Not linkable: no device, trip or identifier is in these files, and the noise of a window is
  drawn once, so repeated downloads reveal nothing more.
"""


def tourism_date_of(day: date) -> date:
    """The local date whose tourism days the folder of UTC ``day`` holds: the day before. Local date
    d ends by d+1 12:00 UTC in every time zone (UTC−12 is the latest), and the folder of ``day`` is
    written after ``day`` ends, so each local date is complete, with 12 hours to spare, when its
    folder is written; one folder per local date, written once."""
    return day - timedelta(days=1)


def opendata_root(settings: Settings) -> Path:
    """Where exported days live (``HEXPULSE_OPENDATA_DIR``, default ``<state_dir>/open-data``)."""
    return settings.opendata_dir or settings.state_dir / "open-data"


def day_folder(root: Path, day: date) -> Path:
    return root / day.isoformat()


def is_exported(root: Path, day: date) -> bool:
    return day_folder(root, day).is_dir()


def export_day(pool: ClickHousePool, root: Path, day: date) -> Path:
    """Write ``day``'s folder from the released data (no-op if it exists); return its path."""
    final = day_folder(root, day)
    if final.is_dir():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{_TMP_PREFIX}{day.isoformat()}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    starts = day_window_starts(pool, day)
    windows = len(starts)
    with files.CellFiles(tmp) as cells:
        for i in range(0, windows, SLICE_WINDOWS):
            end = (
                starts[i + SLICE_WINDOWS]
                if i + SLICE_WINDOWS < windows
                else starts[-1] + timedelta(seconds=1)
            )
            cells.write(cells_between(pool, starts[i], end))
    files.write_zones_csv(tmp / "zones.csv", day_zones(pool, day))
    tourism_date = tourism_date_of(day)
    tourism = days_of_local_date(pool, tourism_date)
    files.write_tourism_csv(tmp / "tourism.csv", tourism)
    files.write_tourism_parquet(tmp / "tourism.parquet", tourism, day_geometries(pool, tourism))
    (tmp / "README.md").write_text(
        README.format(day=day.isoformat(), windows=windows, tourism_date=tourism_date.isoformat()),
        encoding="utf-8",
    )
    files.write_datapackage(tmp, day, windows, tourism_date)
    os.replace(tmp, final)
    return final


def exported_days(root: Path) -> list[date]:
    """Days with a complete folder under ``root``, newest first."""
    if not root.is_dir():
        return []
    days = [date.fromisoformat(p.name) for p in root.iterdir() if p.is_dir() and DAY_FOLDER.match(p.name)]
    return sorted(days, reverse=True)


def remove_stale(root: Path, keep_from: date) -> list[date]:
    """Delete day folders older than ``keep_from`` and leftover temporary folders; return the days."""
    removed = [d for d in exported_days(root) if d < keep_from]
    for d in removed:
        shutil.rmtree(day_folder(root, d))
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(_TMP_PREFIX) and not p.name.endswith(f"-{os.getpid()}"):
                shutil.rmtree(p, ignore_errors=True)
    return removed
