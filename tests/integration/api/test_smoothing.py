"""``GET /v1/density?smooth=true`` against real ClickHouse: the smoothed count is labeled, the raw
one stays, it reads only the windows up to the asked one, and the cache keeps the two apart."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import h3
import pytest
from fastapi.testclient import TestClient

from api.density import ROW_COLUMNS, SMOOTHED_COLUMNS
from hexpulse.settings import Settings
from tests.support.api import CELLS9, N_WINDOWS, app_client, bbox_of, seeded

pytestmark = pytest.mark.integration

WIDE = bbox_of(CELLS9, 0.02)
SPAN = 10


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    # Without process noise the filter is the inverse-variance mean of the windows it reads: the
    # seed's σ is constant per cell, so that is the plain mean (checked by hand below).
    yield from seeded(migrated, "apism", smoothing_windows=SPAN, smoothing_process_abs=0.0,
                      smoothing_process_rel=0.0, smoothing_jump_z=math.inf)  # fmt: skip


@pytest.fixture(scope="module")
def api(data: dict[str, Any]) -> Iterator[TestClient]:
    yield from app_client(data)


def get(api: TestClient, data: dict[str, Any], **params: Any) -> Any:
    resp = api.get("/v1/density", params={"bbox": WIDE, "res": 9, **params},
                   headers={"Authorization": f"Bearer {data['tokens']['density']}"})  # fmt: skip
    assert resp.status_code == 200, resp.text
    return resp


def iso(t: Any) -> str:
    return str(t.strftime("%Y-%m-%dT%H:%M:%SZ"))


def test_smoothed_counts_are_labeled_next_to_the_raw_ones(api: TestClient, data: dict[str, Any]) -> None:
    doc = get(api, data, smooth="true").json()
    assert doc["smoothing"]["smoothed"] is True and doc["smoothing"]["windows_used"] == SPAN
    assert doc["smoothing"]["from_window_start"] == iso(data["windows"][SPAN - 1])
    by_cell = {f["properties"]["cell"]: f["properties"] for f in doc["features"]}
    for i, cell in enumerate(CELLS9):
        props = by_cell[h3.int_to_str(cell)]
        assert props["count"] == 100 + i  # the raw estimate of the latest window is still there
        # The seed releases 100 + i + k in the window k minutes before the latest, σ = 10 + i.
        mean = 100 + i + (SPAN - 1) / 2
        half = 1.96 * (10 + i) / math.sqrt(SPAN)
        assert props["smoothed"] is True
        assert props["count_smoothed"] == pytest.approx(mean, abs=0.05)
        assert props["count_smoothed_ci95"] == pytest.approx([mean - half, mean + half], abs=0.01)
    plain = get(api, data).json()
    assert "smoothing" not in plain and "smoothed" not in plain["features"][0]["properties"]


def test_an_older_window_is_smoothed_from_the_windows_up_to_it(api: TestClient, data: dict[str, Any]) -> None:
    k0 = 5
    doc = get(api, data, smooth="true", at=iso(data["windows"][k0])).json()
    used = N_WINDOWS - k0  # only windows k0 … N_WINDOWS − 1 are at or before it
    assert doc["smoothing"]["windows_used"] == used
    props = next(
        f["properties"] for f in doc["features"] if f["properties"]["cell"] == h3.int_to_str(CELLS9[0])
    )
    assert props["count"] == 100 + k0
    assert props["count_smoothed"] == pytest.approx(100 + k0 + (used - 1) / 2, abs=0.05)


def test_rows_and_the_cache_keep_raw_and_smoothed_apart(api: TestClient, data: dict[str, Any]) -> None:
    rows = get(api, data, smooth="true", format="rows").json()
    assert rows["columns"] == ROW_COLUMNS + SMOOTHED_COLUMNS
    assert all(len(r) == len(rows["columns"]) for r in rows["rows"])
    at = iso(data["windows"][1])
    raw, smooth = get(api, data, at=at), get(api, data, at=at, smooth="true")
    assert raw.headers["ETag"] != smooth.headers["ETag"]
    again = get(api, data, at=at, smooth="true")
    assert again.headers["X-Cache"] == "hit" and again.content == smooth.content
    assert get(api, data, at=at).content == raw.content
