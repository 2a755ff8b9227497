"""Exact daily tourism partials over the real broker and ClickHouse: ``kill -9`` of ``hexpulse
consume`` mid-stream, restarts, and the presence rows the daily releaser counts (hence the daily
partials of every area) are identical to a fault-free run's; and every counted presence row is a
device the counted partials count in a cell of the zone (L = 1: one row per device-window)."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import h3
import pytest

from hexpulse.kafka import ensure_topics
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.scratch import drop_database
from hexpulse.times import naive_utc
from privacy.release.tourism_daily import AreaRef, DayCounts, PresenceReader, daily_partials, local_date_of
from tests.integration.aggregate.test_crash import kill_rounds
from tests.support.aggregate import (
    Stream,
    agg_settings,
    produce_stream,
    read_rows,
    run_in_process,
)

pytestmark = pytest.mark.integration

# Two tourism zones over the stream's box (23.09–23.17 N, 113.26–113.39 E); one area each, in two
# time zones, and a third area on the first zone (areas may share a zone).
BOXES = {"zw": (23.09, 23.17, 113.26, 113.32), "ze": (23.12, 23.17, 113.32, 113.39)}
AREAS = [AreaRef("west", "zw", "Asia/Shanghai"), AreaRef("east", "ze", "UTC"),
         AreaRef("west-utc", "zw", "UTC")]  # fmt: skip
Rows = list[tuple[int, str, int]]  # counted presence rows: (window start s, zone, pseudonym)


def box_cells(lat0: float, lat1: float, lon0: float, lon1: float) -> list[int]:
    poly = h3.LatLngPoly([(lat0, lon0), (lat0, lon1), (lat1, lon1), (lat1, lon0)])
    return sorted(h3.str_to_int(c) for c in h3.h3shape_to_cells(poly, 9))


def register(s: Settings) -> None:
    """The zones and areas, written as if long before the stream (revision 1 ns after 1970)."""
    client = connect(s)
    far = naive_utc(4_102_444_800)  # 2100-01-01
    zones = [(z, 1, "tourism", z, "{}", box_cells(*b), naive_utc(0), far, 1) for z, b in BOXES.items()]
    client.execute(
        "INSERT INTO zones (zone_id, version, zone_set, name, geometry, cells, valid_from, valid_to, "
        "revision) VALUES",
        zones,
    )
    client.execute(
        "INSERT INTO tourism_areas (area_id, name, zone_id, capacity, timezone, created_at, deleted, "
        "revision) VALUES",
        [(a.area_id, a.area_id, a.zone_id, 0, a.timezone, naive_utc(0), 0, 1) for a in AREAS],
    )
    client.disconnect()


def presence(s: Settings, stream: Stream) -> Rows:
    client = connect(s)
    try:
        end = stream.max_ts_ms // 1000 + 3600
        return sorted(PresenceReader(s, client).rows(0, end, ["zw", "ze"]))
    finally:
        client.disconnect()


def daily(s: Settings, stream: Stream) -> dict[str, DayCounts]:
    client = connect(s)
    try:
        reader = PresenceReader(s, client)
        out: dict[str, DayCounts] = {}
        for tz in ("Asia/Shanghai", "UTC"):
            day: date = local_date_of(stream.max_ts_ms // 1000, tz)
            out.update(daily_partials(reader, AREAS, day, tz, s.tourism_max_areas))
        return out
    finally:
        client.disconnect()


def fault_free(s: Settings, stream: Stream, unique: str) -> tuple[Rows, dict[str, DayCounts]]:
    ref = agg_settings(s, unique + "-ref", state_dir=s.state_dir, consumer_max_poll_records=200)
    ref = ref.model_copy(update={"topic_pings": s.topic_pings, "topic_dlq": s.topic_dlq + ".ref"})
    ensure_topics(ref, [ref.topic_dlq])
    register(ref)
    try:
        run_in_process(ref, stream, timeout_s=300)
        return presence(ref, stream), daily(ref, stream)
    finally:
        drop_database(ref)


@pytest.fixture()
def setup(migrated: Settings, unique_name: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    s = agg_settings(
        migrated, unique_name, state_dir=tmp_path, consumer_max_poll_records=8, shutdown_timeout_s=10.0
    )
    register(s)
    stream = produce_stream(s, devices=300, span_s=300, seed=hash(unique_name) % 1000)
    yield s, stream, unique_name, tmp_path
    drop_database(s)


def test_kill9_restart_gives_fault_free_daily_partials(setup) -> None:  # type: ignore[no-untyped-def]
    s, stream, unique, tmp = setup
    kill_rounds(s, stream, tmp / "consume.log", random.Random(11))
    got = presence(s, stream)
    # Every counted presence row is one device of the counted partials in a cell of its zone.
    cells = {z: set(box_cells(*b)) for z, b in BOXES.items()}
    per_window: dict[tuple[int, str], int] = {}
    for w, z, _ in got:
        per_window[(w, z)] = per_window.get((w, z), 0) + 1
    want: dict[tuple[int, str], int] = {}
    for (w_ms, cell, _), row in read_rows(s).items():
        for z, mine in cells.items():
            if cell in mine:
                want[(w_ms // 1000, z)] = want.get((w_ms // 1000, z), 0) + row[0]
    assert per_window == want and len(got) > 500
    ref_rows, ref_daily = fault_free(s, stream, unique)
    assert got == ref_rows
    assert daily(s, stream) == ref_daily
    assert all(c.visitors >= 20 for c in ref_daily.values()), ref_daily
