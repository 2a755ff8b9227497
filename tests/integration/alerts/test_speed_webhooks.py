"""``traffic_speed`` end to end against the real ClickHouse and a real HTTP receiver: a zone drawn
over two res-8 cells slows down and recovers, window by window, in released speed bins (a third,
fast cell beside it must not count); slow, then jam, then lowered, then cleared arrive in order,
each once by id, signed, within min_windows of the true crossings; windows whose bins hold too
few moving devices decide nothing."""

from __future__ import annotations

import calendar
import math
import random
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import h3
import orjson
import pytest

from alerts.levels import Level, Rule
from alerts.service import AlertsService
from alerts.signing import new_secret
from alerts.subscriptions import SubscriptionStore
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import scratch_database
from hexpulse.zones import OPEN_END, ZONE_COLUMNS, Zone
from tests.integration.alerts.support import Receiver, wait_for
from tests.support.clickhouse_users import allow_api
from tests.support.release import recent_window, ts

pytestmark = pytest.mark.integration

N = 30
MIN_WINDOWS = 2
MIDS = (10.0, 30.0, 55.0, 95.0)  # km/h, one per bin of a four-bin plan (edges 20, 40, 70)
SIGMA = 3.0  # devices per released bin entry
MOVING = (240.0, 160.0)  # moving devices in the zone's two cells
# Windows whose zone cells hold (almost) nobody moving: 13 falls inside the jam's min_windows streak
# (12, 14), which it must neither break nor extend; 15 in the jam's plateau.
QUIET = frozenset({13, 15})
SLOW, JAM = 30.0, 15.0
RULE = Rule((Level("slow", SLOW, 36.0), Level("jam", JAM, 18.0)), min_windows=MIN_WINDOWS, confidence=0.9,
            below=True)  # fmt: skip
EXPECTED = [("raised", "slow"), ("raised", "jam"), ("lowered", "slow"), ("cleared", "normal")]
PARENTS = [h3.latlng_to_cell(23.13, 113.32, 8)]
PARENTS.append(sorted(h3.grid_ring(PARENTS[0], 1))[0])
FAST = sorted(h3.grid_ring(PARENTS[0], 1))[1]  # beside the zone, at free flow throughout


def true_speed(k: int) -> float:
    """The zone's speed (km/h) in window k: 50, down to 10 at the middle, back to 50."""
    return 50.0 - 40.0 * math.sin(math.pi * k / (N - 1)) ** 2


def exact_bins(speed: float, moving: float) -> list[float]:
    """Moving devices per bin whose mean speed is ``speed`` (split between two adjacent bins)."""
    i = max(j for j in range(len(MIDS) - 1) if MIDS[j] <= speed)
    f = (speed - MIDS[i]) / (MIDS[i + 1] - MIDS[i])
    out = [0.0] * len(MIDS)
    out[i], out[i + 1] = moving * (1 - f), moving * f
    return out


@pytest.fixture()
def speed_settings(migrated: Settings) -> Iterator[Settings]:
    tag = uuid.uuid4().hex[:6]
    with scratch_database(migrated, clickhouse_database=f"{migrated.clickhouse_database}_as{tag}",
                          alerts_allow_networks=("127.0.0.0/8",), alerts_poll_s=0.2,
                          alerts_lease_term_s=2.0, alerts_metrics_port=0) as s:  # fmt: skip
        allow_api(s)
        yield s


def register_zone(s: Settings) -> None:
    """A zone of 7 base cells in the first res-8 cell and 3 in the second (a road across both)."""
    kids = [sorted(h3.cell_to_children(p, s.base_resolution)) for p in PARENTS]
    cells = tuple(sorted(h3.str_to_int(c) for c in kids[0] + kids[1][:3]))
    zone = Zone("corridor", 1, "crowd", "Ring road east", orjson.dumps({"type": "Polygon"}).decode(), cells,
                datetime(2020, 1, 1, tzinfo=UTC), OPEN_END, 1)  # fmt: skip
    client = connect(s)
    try:
        client.execute(f"INSERT INTO zones ({ZONE_COLUMNS}) VALUES", [zone.row()])
    finally:
        client.disconnect()


def publish(s: Settings, w0: int, windows: range, rng: random.Random) -> None:
    client = connect(s)
    try:
        for k in windows:
            w = w0 + 60 * k
            rows = []
            for cell, moving in [*zip(PARENTS, MOVING, strict=True), (FAST, 300.0)]:
                moving = 0.3 if k in QUIET and cell != FAST else moving
                speed = 90.0 if cell == FAST else true_speed(k)
                est = [b + rng.gauss(0.0, SIGMA) for b in exact_bins(speed, moving)]
                if k in QUIET and cell != FAST:
                    est = [0.1] * len(MIDS)  # Σ bins below one device: no speed
                rows.append((ts(w), 8, h3.str_to_int(cell), est, SIGMA, sum(est), list(MIDS), 1))
            client.execute("INSERT INTO release_traffic (window_start, res, cell, bins_est, bins_sigma,"
                           " moving_est, mids_kmh, plan) VALUES", rows)  # fmt: skip
            client.execute(
                "INSERT INTO release_windows (window_start, window_end, released_at, base_cells, rho,"
                " mechanism, lag_s, plan) VALUES",
                [(ts(w), ts(w + 60), ts(int(time.time())), 100, 0.001, "gaussian", 1.0, 1)],
            )
    finally:
        client.disconnect()


def expected_windows() -> list[int]:
    """Window indexes of the true crossings, in EXPECTED's order."""
    v = [true_speed(k) for k in range(N)]
    down1 = next(k for k in range(N) if v[k] < SLOW)
    down2 = next(k for k in range(N) if v[k] < JAM)
    up2 = next(k for k in range(down2, N) if v[k] > 18.0)
    up1 = next(k for k in range(up2, N) if v[k] > 36.0)
    return [down1, down2, up2, up1]


def test_a_slowing_then_recovering_zone_raises_and_clears_in_order_once_and_signed(
    speed_settings: Settings,
) -> None:
    secret = new_secret()
    rx = Receiver(secret)
    w0 = recent_window(hours_ago=1.0)
    register_zone(speed_settings)
    pool = ClickHousePool(speed_settings, size=1)
    try:
        sub = SubscriptionStore(pool).create("owner-a", "ring road east", "corridor", "traffic_speed", 1.0,
                                             RULE, rx.url, (secret,))  # fmt: skip
    finally:
        pool.close()
    svc = AlertsService(speed_settings, holder="speed")
    stop = threading.Event()
    thread = threading.Thread(target=svc.run, args=(stop,), daemon=True)
    thread.start()
    rng = random.Random(11)
    try:
        for k in range(0, N, 5):
            publish(speed_settings, w0, range(k, k + 5), rng)
            time.sleep(0.3)
        assert wait_for(lambda: len(rx.accepted) >= 4, 60), rx.accepted
        time.sleep(1.0)  # nothing more may arrive
    finally:
        stop.set()
        thread.join(30)
        rx.close()
    got = [(m["data"]["kind"], m["data"]["level_after"]) for m in rx.accepted]
    assert got == EXPECTED
    assert len(set(rx.ids)) == len(rx.ids) == 4 and rx.bad_signatures == 0
    for msg, k in zip(rx.accepted, expected_windows(), strict=True):
        d = msg["data"]
        index = (calendar.timegm(time.strptime(d["window_start"], "%Y-%m-%dT%H:%M:%SZ")) - w0) // 60
        assert k <= index <= k + MIN_WINDOWS, (d, k)
        assert index not in QUIET  # a window without a reading decides nothing
        assert d["subscription_id"] == sub.subscription_id and d["metric"] == "traffic_speed"
        assert abs(d["value"] - true_speed(index)) < 4 * d["sigma"] + 0.5  # the fast cell is not mixed in
        # The evidence: P(true speed < the threshold crossed) — high when raised, low when it clears.
        assert (d["probability"] >= 0.9) == (d["kind"] == "raised"), d
    jam = rx.accepted[1]["data"]["window_start"]
    assert (calendar.timegm(time.strptime(jam, "%Y-%m-%dT%H:%M:%SZ")) - w0) // 60 == 14  # 12, (13), 14
