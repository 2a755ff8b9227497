"""Released tourism rows written the way the daily releaser writes them (migration 0016: metric rows,
then the day's ``release_tourism_days`` row), and an area's zone released minute by minute, for the
tests of the tourism read side (the daily releaser lands separately)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from clickhouse_driver import Client
from fastapi.testclient import TestClient

from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.scratch import drop_database
from releases.tourism import DWELL_BINS, VISITORS
from tests.support.api import CENTER, api_settings, bearer, naive, seed
from tourism.hourly import Z95, local_day_bounds

# The scene of the read-side tests: one area in Asia/Shanghai, six released days.
TZ = "Asia/Shanghai"
DAY = datetime.now(ZoneInfo(TZ)).date() - timedelta(days=2)
RELEASED = [DAY - timedelta(days=k) for k in range(5, -1, -1)]  # six released days, DAY last
UNPUBLISHED = DAY + timedelta(days=1)  # metric rows written, no day row: never served
CAPACITY = 5000
SIGMA = 30.0
RETENTION = 60


def occupancy(local_hour: int, minute: int) -> float:
    """Devices in the zone: 1,000 + 100 per local hour, 4,100 at 10:00, ± a minute's wiggle."""
    return (4100.0 if local_hour == 10 else 1000.0 + 100 * local_hour) + (minute % 5) - 2


def visitors(d: date) -> float:
    return 6000.0 + 100 * (d - RELEASED[0]).days


def square(half: float = 0.003) -> dict[str, Any]:
    lat, lon = CENTER
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
            [lon - half, lat + half], [lon - half, lat - half]]  # fmt: skip
    return {"type": "Polygon", "coordinates": [ring]}


#: Dwell shares of a released day's visitors, shortest stay first (they add up to 1).
DWELL_SHARES = (0.4, 0.3, 0.2, 0.1)


def day_rows(area_id: str, local_date: date, visitors: float, sigma: float = 25.0,
             plan: int = 7) -> list[Any]:  # fmt: skip
    """The metric rows of one area-day: visitors and a dwell histogram adding up to them."""
    values = {VISITORS: visitors} | {m: visitors * s for m, s in zip(DWELL_BINS, DWELL_SHARES, strict=True)}
    return [(area_id, local_date, metric, est, sigma, est - Z95 * sigma, est + Z95 * sigma,
             max(0, round(est)), plan) for metric, est in values.items()]  # fmt: skip


def release_days(client: Client, area_id: str, timezone: str, days: Iterable[tuple[date, float]],
                 lag_s: float = 1800.0, k_areas: int = 3, publish_day: bool = True) -> None:  # fmt: skip
    """Write each (local date, visitors) day's metric rows, then (``publish_day``) its day row."""
    days = list(days)
    client.execute(
        "INSERT INTO release_tourism_daily (area_id, local_date, metric, estimate, sigma, lo, hi, display,"
        " plan) VALUES",
        [r for d, v in days for r in day_rows(area_id, d, v)],
    )
    if not publish_day:
        return
    rows = []
    for d, _ in days:
        start, end = local_day_bounds(d, timezone)
        rows.append((area_id, d, timezone, naive(start), naive(end), k_areas, 7,
                     naive(end + timedelta(seconds=lag_s))))  # fmt: skip
    client.execute(
        "INSERT INTO release_tourism_days (area_id, local_date, timezone, day_start, day_end, k_areas, plan,"
        " released_at) VALUES",
        rows,
    )


def release_zone_minutes(client: Client, zone_id: str, minutes: Iterable[tuple[datetime, float, float]],
                         zone_set: str = "crowd") -> None:  # fmt: skip
    """Release the zone's value in each (window start, estimate, σ) minute and publish the window."""
    minutes = list(minutes)
    client.execute(
        "INSERT INTO release_zones (window_start, zone_set, zone_id, version, count, count_est, count_sigma,"
        " count_lo, count_hi, cells, plan) VALUES",
        [(naive(w), zone_set, zone_id, 1, max(0, round(est)), est, sigma, est - Z95 * sigma,
          est + Z95 * sigma, 7, 7) for w, est, sigma in minutes],
    )  # fmt: skip
    # The rows publish() writes, in one insert (a day is 1,440 windows).
    client.execute(
        "INSERT INTO release_windows (window_start, window_end, released_at, base_cells, rho, mechanism,"
        " lag_s) VALUES",
        [(naive(w), naive(w + timedelta(seconds=60)), naive(w + timedelta(seconds=61)), 0, 0.001, "gaussian",
          1.0) for w, _, _ in minutes],
    )  # fmt: skip


def read_side(migrated: Settings, suffix: str, **update: Any) -> Iterator[dict[str, Any]]:
    """The body of the read-side tests' module fixture: a seeded private database with a
    ``tourism:read`` key ``tourism``; dropped afterwards."""
    settings = api_settings(migrated, suffix + uuid.uuid4().hex[:4], **update)
    seeded = seed(settings)
    seeded["tokens"]["tourism"] = seeded["store"].create("bureau", ["tourism:read"])[1]
    yield seeded
    drop_database(settings)


def release_baiyun(api: TestClient, data: dict[str, Any]) -> dict[str, Any]:
    """Register area ``baiyun`` through the API and release its days and its zone's minutes of DAY
    (14:30–15:00 local not released; one unpublished zone row)."""
    body = {"id": "baiyun", "name": "Baiyun Mountain", "geometry": square(), "capacity": CAPACITY}
    resp = api.post("/v1/tourism/areas", json=body, headers=bearer(data, "admin"))
    assert resp.status_code == 201, resp.text
    created: dict[str, Any] = resp.json()
    client = connect(data["settings"])
    release_days(client, "baiyun", TZ, [(d, visitors(d)) for d in RELEASED])
    release_days(client, "baiyun", TZ, [(UNPUBLISHED, 99.0)], publish_day=False)
    start, end = local_day_bounds(DAY, TZ)
    minutes = []
    t = start
    while t < end:
        local = t.astimezone(ZoneInfo(TZ))
        if local.hour != 14 or local.minute < 30:  # half of 14:00 not released
            minutes.append((t, occupancy(local.hour, local.minute), SIGMA))
        t += timedelta(minutes=1)
    release_zone_minutes(client, created["zone"], minutes)
    # A zone row of a window that was never published: not read.
    client.execute(
        "INSERT INTO release_zones (window_start, zone_set, zone_id, version, count, count_est, count_sigma,"
        " count_lo, count_hi, cells, plan) VALUES",
        [(naive(end) - timedelta(seconds=30), "crowd", created["zone"], 1, 1, 1e6, 1.0, 1e6, 1e6, 7, 7)],
    )  # fmt: skip
    client.disconnect()
    return created
