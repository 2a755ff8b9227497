"""The release feed against the real ClickHouse and the real releaser: two followers, one of them
restarted mid-stream, each see every released window once, in order; the cursor's commit is
at-least-once; a new follower may start at the newest window; a window published behind a cursor
is reported, not delivered."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from clickhouse_driver import Client
from pydantic import SecretStr

from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.pool import ClickHousePool
from hexpulse.store.scratch import scratch_database
from hexpulse.times import naive_utc, utc_from_ms
from privacy.release.releaser import Releaser
from releases.follower import Follower
from releases.models import Window
from tests.support.aggregate import TEST_KEY
from tests.support.clickhouse_users import allow_api
from tests.support.release import recent_window

pytestmark = pytest.mark.integration

# Recent windows: the releaser draws with the day's release-noise key, which the key ring holds
# only for recent days; the scratch database keeps them apart from anything else.
W0 = recent_window(hours_ago=1.0)
N = 8
RESTART_AFTER = 3
EXPECTED = [utc_from_ms((W0 + 60 * k) * 1000) for k in range(N)]


@pytest.fixture(scope="module")
def feed_settings(migrated: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    tag = uuid.uuid4().hex[:6]
    ring = tmp_path_factory.mktemp("feed") / "keyring.bin"  # the releaser's day noise keys
    with scratch_database(migrated, clickhouse_database=f"{migrated.clickhouse_database}_feed{tag}",
                          topic_pings=f"pings-feed-{tag}", topic_partitions=1,
                          master_key=SecretStr(TEST_KEY), keyring_path=ring) as settings:  # fmt: skip
        allow_api(settings)  # the followers read as the API user, like every product
        client = connect(settings)
        cell = int(Releaser(settings, client=client).tree.cells[0][0])
        client.execute(
            f"INSERT INTO {settings.exact_database}.partials "
            "(window_start, cell, partition, devices, moving, speed_sum, close_offset) VALUES",
            [(naive_utc(W0 + 60 * k), cell, 0, 500 + k, 0, 0, k) for k in range(N)],
        )
        client.disconnect()
        yield settings


def release_through(client: Client, rel: Releaser, s: Settings, k: int) -> int:
    """Close windows 0..k-1 of the single partition and run the real releaser once."""
    horizon = W0 + 60 * k
    client.execute(
        f"INSERT INTO {s.exact_database}.progress "
        "(topic, partition, horizon, watermark_ms, close_offset, closed_by, written_at) VALUES",
        [(s.topic_pings, 0, naive_utc(horizon), horizon * 1000, k, "watermark", naive_utc(horizon))],
    )
    return rel.run_once()


def release_all(s: Settings) -> Settings:
    """Make every window of the stream public (a no-op when an earlier test already did)."""
    client = connect(s)
    release_through(client, Releaser(s, client=client), s, N)
    client.disconnect()
    return s


def wait_for(cond: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting for the followers"
        time.sleep(0.02)


class Run:
    """One follower process stand-in: its own pool, its own thread, a list of what it handled."""

    def __init__(self, s: Settings, name: str, seen: list[datetime], stop_after: int | None = None) -> None:
        self.pool = ClickHousePool(s, size=1)
        self.follower = Follower(self.pool, name, poll_s=0.02)
        self.stop = threading.Event()
        self.seen = seen
        self.handled = 0
        self.stop_after = stop_after
        self.thread = threading.Thread(target=self.follower.run, args=(self.handle, self.stop), daemon=True)
        self.thread.start()

    def handle(self, window: Window) -> None:
        self.seen.append(window.start)
        self.handled += 1
        if self.stop_after is not None and self.handled >= self.stop_after:
            self.stop.set()  # the loop stops before the next window: a restart mid-stream

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.pool.close()


def test_two_followers_one_restarted_each_see_every_window_once_in_order(feed_settings: Settings) -> None:
    s = feed_settings
    client = connect(s)
    rel = Releaser(s, client=client)
    seen_a: list[datetime] = []
    seen_b: list[datetime] = []
    a = Run(s, "alerts", seen_a)
    b = Run(s, "tourism", seen_b, stop_after=RESTART_AFTER)
    for k in range(1, RESTART_AFTER + 3):  # b stops after its 4th window while more are public
        assert release_through(client, rel, s, k) == 1
        time.sleep(0.05)
    wait_for(lambda: b.stop.is_set() and len(seen_a) >= RESTART_AFTER + 2)
    b.close()
    assert seen_b == EXPECTED[:RESTART_AFTER]
    assert release_through(client, rel, s, RESTART_AFTER + 4) == 2  # published while b is down
    b = Run(s, "tourism", seen_b)  # a new process: nothing but its cursor in ClickHouse
    for k in range(RESTART_AFTER + 5, N + 1):
        assert release_through(client, rel, s, k) == 1
        time.sleep(0.05)
    wait_for(lambda: len(seen_a) >= N and len(seen_b) >= N)
    time.sleep(0.2)  # a duplicate would arrive within a few polls
    a.close()
    b.close()
    assert seen_a == EXPECTED
    assert seen_b == EXPECTED
    rows = client.execute(
        "SELECT follower, max(window_start) FROM feed_cursors GROUP BY follower ORDER BY follower"
    )
    assert rows == [("alerts", EXPECTED[-1]), ("tourism", EXPECTED[-1])]
    client.disconnect()


def test_a_window_whose_handler_failed_comes_again_after_a_restart(feed_settings: Settings) -> None:
    s = release_all(feed_settings)
    seen: list[datetime] = []

    def flaky(window: Window) -> None:
        if window.start == EXPECTED[2]:
            raise RuntimeError("the product's own store is down")
        seen.append(window.start)

    pool = ClickHousePool(s, size=1)
    with pytest.raises(RuntimeError):
        Follower(pool, "exports").poll_once(flaky)
    assert seen == EXPECTED[:2]
    restarted = Follower(pool, "exports")  # at-least-once: the failed window is handed over again
    assert restarted.poll_once(lambda w: seen.append(w.start)) == N - 2
    assert seen == EXPECTED
    assert restarted.poll_once(lambda w: seen.append(w.start)) == 0
    pool.close()


def test_a_new_follower_can_start_at_the_newest_window(feed_settings: Settings) -> None:
    s = release_all(feed_settings)
    pool = ClickHousePool(s, size=1)
    seen: list[datetime] = []
    follower = Follower(pool, "live-board", start="latest")
    assert follower.poll_once(lambda w: seen.append(w.start)) == 1
    assert follower.poll_once(lambda w: seen.append(w.start)) == 0
    assert seen == EXPECTED[-1:]
    pool.close()


def test_a_window_published_behind_the_cursor_is_reported_not_delivered(feed_settings: Settings) -> None:
    s = release_all(feed_settings)
    client = connect(s)
    pool = ClickHousePool(s, size=1)
    seen: list[datetime] = []
    follower = Follower(pool, "open-data")
    follower.poll_once(lambda w: seen.append(w.start))
    assert seen == EXPECTED
    assert follower.behind() == []
    time.sleep(1.1)  # released_at is whole seconds: the stray row must be visibly later
    late = W0 - 60  # what only a second releaser or a manual insert could do
    client.execute(
        "INSERT INTO release_windows"
        " (window_start, window_end, released_at, base_cells, rho, mechanism, lag_s) VALUES",
        [(naive_utc(late), naive_utc(late + 60), naive_utc(time.time()), 0, 0.001, "gaussian", 0.0)],
    )
    assert follower.poll_once(lambda w: seen.append(w.start)) == 0
    assert follower.behind() == [utc_from_ms(late * 1000)]
    assert seen == EXPECTED
    client.disconnect()
    pool.close()
