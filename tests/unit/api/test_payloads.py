"""Density payloads and the live fan-out, without services."""

from __future__ import annotations

import asyncio
import gzip
from datetime import UTC, datetime, timedelta

import h3
import orjson

from api.density import PayloadCache, build
from api.live import WindowFeed
from hexpulse.settings import load_settings
from hexpulse.store.pool import ClickHousePool
from releases.models import CellRow, Window

START = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = Window(START, START + timedelta(minutes=1), START + timedelta(minutes=1, seconds=3), 3.0, 0.002,
                "gaussian", 2)  # fmt: skip
CELLS = sorted(h3.str_to_int(c) for c in h3.grid_disk(h3.latlng_to_cell(23.13, 113.32, 9), 1))


def row(count: int, speed: float | None = None) -> CellRow:
    return CellRow(count, 10.0, max(0.0, count - 19.6), count + 19.6, 3, 5.0, 0.0, 12.8, speed,
                   None if speed is None else speed - 4, None if speed is None else speed + 4,
                   float(count), 3.0)  # fmt: skip


def test_geojson_has_the_asked_released_cells_sorted_with_uncertainty() -> None:
    settings = load_settings()
    released = {CELLS[2]: row(120, 31.234), CELLS[0]: row(-4), CELLS[5]: row(7)}
    asked = frozenset({CELLS[0], CELLS[2], CELLS[3]})  # CELLS[3] was not released: absent, not zero
    doc = orjson.loads(build(settings, WINDOW, 9, (113.3, 23.1, 113.4, 23.2), asked, released, "geojson"))
    assert doc["type"] == "FeatureCollection"
    assert doc["window"]["window_start"] == "2030-03-01T12:00:00Z"
    assert [f["id"] for f in doc["features"]] == [h3.int_to_str(CELLS[0]), h3.int_to_str(CELLS[2])]
    low, high = (f["properties"] for f in doc["features"])
    assert low["count"] == 0  # a negative unbiased estimate is shown clipped, its interval kept
    assert low["ci95"] == [0.0, 15.6]
    assert high["count"] == 120 and high["mean_speed_kmh"] == 31.23
    assert high["speed_ci95_kmh"] == [27.234, 35.234]
    area = h3.cell_area(h3.int_to_str(CELLS[2]), unit="km^2")
    assert abs(high["density_per_km2"] - 120 / area) < 1e-3
    assert doc["privacy"]["rho_window"] == 0.002


def test_rows_format_matches_its_columns() -> None:
    settings = load_settings()
    released = {CELLS[1]: row(50)}
    doc = orjson.loads(build(settings, WINDOW, 9, (0, 0, 1, 1), frozenset(CELLS), released, "rows"))
    assert dict(zip(doc["columns"], doc["rows"][0], strict=True))["count"] == 50
    assert doc["rows"][0][0] == h3.int_to_str(CELLS[1])


def test_payload_cache_serves_one_body_plain_and_gzip_under_one_tag() -> None:
    cache = PayloadCache(2)
    assert cache.get(("k",)) is None
    stored = cache.put(("k",), b'{"a":1}')
    again = cache.get(("k",))
    assert again is stored and gzip.decompress(stored.gzip) == stored.body
    assert stored.etag.startswith('W/"') and (cache.hits, cache.misses) == (1, 1)
    assert cache.put(("j",), b'{"a":1}').etag == stored.etag  # same bytes, same tag


def test_the_live_feed_fans_out_and_drops_a_subscriber_that_fell_behind() -> None:
    async def scenario() -> None:
        feed = WindowFeed(ClickHousePool(load_settings(), size=1), poll_s=1.0, queue_size=2)
        fast, slow = feed.subscribe(), feed.subscribe()
        for k in range(2):
            feed._publish(Window(START + timedelta(minutes=k), *list(vars(WINDOW).values())[1:]))
            await fast.get()
        assert feed.subscribers == 2
        feed._publish(WINDOW)  # slow now holds 2 unread windows: full, so it is dropped
        assert feed.subscribers == 1
        drained = [slow.get_nowait() for _ in range(slow.qsize())]
        assert drained[-1] is None  # the end of its stream; it may reconnect
        assert (await fast.get()) == WINDOW
        feed.unsubscribe(fast)
        assert feed.subscribers == 0

    asyncio.run(scenario())
