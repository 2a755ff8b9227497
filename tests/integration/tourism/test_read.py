"""The tourism read side against the real ClickHouse: released days (only with their day row),
``/daily`` as JSON and CSV, ``/hourly`` from the zone's minute releases (mean, σ = √Σσ²/n, peak,
warning at 80% of capacity), the expansion factor (labelled, bounded), the report page, and bad
input as a 4xx with the reason. Release rows are written as the daily releaser and the window
releaser write them (tests/support/tourism.py)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hexpulse.settings import Settings
from hexpulse.store.pool import ClickHousePool
from releases.tourism import DWELL_BINS, area_days_sync, days_of_local_date
from tests.support.api import app_client, bearer
from tests.support.tourism import (
    CAPACITY,
    DAY,
    RELEASED,
    RETENTION,
    SIGMA,
    TZ,
    UNPUBLISHED,
    read_side,
    release_baiyun,
    visitors,
)
from tourism.hourly import local_day_bounds

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    yield from read_side(migrated, "tread", release_retention_days=RETENTION)


@pytest.fixture(scope="module")
def api(data: dict[str, Any]) -> Iterator[TestClient]:
    yield from app_client(data)


@pytest.fixture(scope="module")
def area(api: TestClient, data: dict[str, Any]) -> dict[str, Any]:
    return release_baiyun(api, data)


def tourism(data: dict[str, Any]) -> dict[str, str]:
    return bearer(data, "tourism")


def test_released_days_are_read_with_their_metrics(area: dict[str, Any], data: dict[str, Any]) -> None:
    pool = ClickHousePool(data["settings"], size=1)
    days = area_days_sync(pool, "baiyun", UNPUBLISHED - timedelta(days=10), UNPUBLISHED)
    assert [d.local_date for d in days] == RELEASED  # the unpublished day is not served
    last = days[-1]
    assert last.values["visitors"].estimate == pytest.approx(visitors(DAY))
    assert set(last.values) == {"visitors", *DWELL_BINS} and last.k_areas == 3
    assert last.lag_s == pytest.approx(1800) and last.day_end - last.day_start == timedelta(hours=24)
    assert [d.area_id for d in days_of_local_date(pool, DAY)] == ["baiyun"]
    assert days_of_local_date(pool, UNPUBLISHED) == []
    pool.close()


def test_daily_json(api: TestClient, area: dict[str, Any], data: dict[str, Any]) -> None:
    resp = api.get("/v1/tourism/areas/baiyun/daily",
                   params={"from": RELEASED[0].isoformat(), "to": UNPUBLISHED.isoformat()},
                   headers=tourism(data))  # fmt: skip
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    assert doc["unit"] == "devices" and doc["expansion"] is None and doc["timezone"] == TZ
    assert [d["local_date"] for d in doc["days"]] == [d.isoformat() for d in RELEASED]
    day = doc["days"][-1]
    assert day["visitors"]["estimate"] == pytest.approx(visitors(DAY)) and day["visitors"]["sigma"] == 25.0
    assert sum(day["dwell"][m]["estimate"] for m in DWELL_BINS) == pytest.approx(visitors(DAY))
    assert day["lag_s"] == pytest.approx(1800)
    scaled = api.get("/v1/tourism/areas/baiyun/daily", params={"from": DAY.isoformat(), "to": DAY.isoformat(),
                     "expansion": 2.5}, headers=tourism(data)).json()  # fmt: skip
    assert scaled["expansion"] == 2.5 and scaled["unit"].startswith("visitors (devices × 2.5")
    assert scaled["days"][0]["visitors"]["estimate"] == pytest.approx(2.5 * visitors(DAY))
    assert scaled["days"][0]["visitors"]["sigma"] == pytest.approx(2.5 * 25.0)


def test_daily_csv(api: TestClient, area: dict[str, Any], data: dict[str, Any]) -> None:
    resp = api.get("/v1/tourism/areas/baiyun/daily",
                   params={"from": RELEASED[0].isoformat(), "to": DAY.isoformat()},
                   headers={**tourism(data), "Accept": "text/csv"})  # fmt: skip
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert [r["local_date"] for r in rows] == [d.isoformat() for d in RELEASED]
    assert float(rows[-1]["visitors_estimate"]) == pytest.approx(visitors(DAY))
    assert rows[-1]["unit"] == "devices" and "dwell_ge_3h_sigma" in rows[0]


def test_hourly_curve(api: TestClient, area: dict[str, Any], data: dict[str, Any]) -> None:
    resp = api.get("/v1/tourism/areas/baiyun/hourly", params={"date": DAY.isoformat()}, headers=tourism(data))
    assert resp.status_code == 200, resp.text
    doc = resp.json()
    hours = doc["hours"]
    assert len(hours) == 24 and hours[0]["start"].startswith(f"{DAY.isoformat()}T00:00:00+08:00")
    assert [h["windows"] for h in hours] == [30 if i == 14 else 60 for i in range(24)]
    h3 = hours[3]
    assert h3["estimate"] == pytest.approx(1300.0)
    assert h3["sigma"] == pytest.approx(SIGMA * math.sqrt(60) / 60)
    assert hours[14]["sigma"] == pytest.approx(SIGMA / math.sqrt(30))
    assert doc["peak"]["start"] == hours[10]["start"] and doc["peak"]["estimate"] == pytest.approx(4100.0)
    assert doc["capacity"] == CAPACITY and doc["capacity_warning_at"] == pytest.approx(4000)
    assert doc["warning"] is True and doc["peak_vs_capacity"][0] == pytest.approx(0.82)
    scaled = api.get("/v1/tourism/areas/baiyun/hourly", params={"date": DAY.isoformat(), "expansion": 3},
                     headers=tourism(data)).json()  # fmt: skip
    assert scaled["hours"][3]["estimate"] == pytest.approx(3900.0) and "visitors" in scaled["unit"]



def test_hourly_curve_as_csv(api: TestClient, area: dict[str, Any], data: dict[str, Any]) -> None:
    resp = api.get("/v1/tourism/areas/baiyun/hourly", params={"date": DAY.isoformat()},
                   headers=tourism(data) | {"Accept": "text/csv"})  # fmt: skip
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert f'filename="baiyun-{DAY.isoformat()}-hourly.csv"' in resp.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert len(rows) == 24 and rows[0]["start"] == f"{DAY.isoformat()}T00:00:00+08:00"
    assert float(rows[3]["estimate"]) == pytest.approx(1300.0)
    assert float(rows[3]["sigma"]) == pytest.approx(SIGMA * math.sqrt(60) / 60, abs=1e-6)
    assert [int(r["windows"]) for r in rows] == [30 if i == 14 else 60 for i in range(24)]
    assert rows[0]["unit"] == "devices" and rows[0]["capacity"] == str(CAPACITY)


def test_the_report_page(api: TestClient, area: dict[str, Any], data: dict[str, Any]) -> None:
    resp = api.get("/v1/tourism/areas/baiyun/report", params={"date": DAY.isoformat()}, headers=tourism(data))
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    html = resp.text
    assert html.count("<svg") == 3 and "<script" not in html and "at or above the 80% warning" in html
    assert "σ = 25 devices" in html and "Baiyun Mountain" in html


@pytest.mark.parametrize(
    ("path", "params", "status", "reason"),
    [
        ("nowhere/daily", {}, 404, "no tourism area with id 'nowhere'"),
        ("baiyun/daily", {"from": "2026-05-02", "to": "2026-05-01"}, 400, "is after 'to'"),
        ("baiyun/daily", {"from": "2024-01-01", "to": "2025-12-31"}, 400, "at most 366 days"),
        ("baiyun/daily", {"from": (DAY - timedelta(days=RETENTION + 5)).isoformat()}, 400,
         f"beyond the release retention of {RETENTION} days"),
        ("baiyun/daily", {"from": "2026-13-01"}, 422, "from"),
        ("baiyun/daily", {"to": "0001-01-01"}, 400, "to 0001-01-01 is beyond the release retention"),
        ("baiyun/daily", {"to": "9999-12-31"}, 400, "to 9999-12-31 is in the future"),
        ("baiyun/hourly", {"date": "9999-12-31"}, 400, "is in the future: nothing is released"),
        ("baiyun/hourly", {"date": "0001-01-01"}, 400, "beyond the release retention"),
        ("baiyun/hourly", {"date": "yesterday"}, 422, "date"),
        ("baiyun/hourly", {}, 422, "date"),
        ("baiyun/hourly", {"date": DAY.isoformat(), "expansion": 0.5}, 400, "expansion must be a factor"),
        ("baiyun/report", {"date": (DAY - timedelta(days=RETENTION + 1)).isoformat()}, 400, "retention"),
        ("nowhere/report", {"date": DAY.isoformat()}, 404, "no tourism area"),
    ],
)  # fmt: skip
def test_bad_input_is_a_4xx_with_the_reason(
    api: TestClient, area: dict[str, Any], data: dict[str, Any], path: str, params: dict[str, Any],
    status: int, reason: str,
) -> None:  # fmt: skip
    resp = api.get(f"/v1/tourism/areas/{path}", params=params, headers=tourism(data))
    assert resp.status_code == status, resp.text
    assert reason in resp.json()["detail"]


def test_scope_is_tourism_read(api: TestClient, area: dict[str, Any], data: dict[str, Any]) -> None:
    url, params = "/v1/tourism/areas/baiyun/hourly", {"date": DAY.isoformat()}
    assert api.get(url, params=params).status_code == 401
    assert api.get(url, params=params, headers=bearer(data, "density")).status_code == 403
    assert datetime.now(UTC) > local_day_bounds(DAY, TZ)[1]  # the test's day is over
