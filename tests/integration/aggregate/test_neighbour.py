"""The neighbour test through the real broker and ClickHouse (issue #9).

D and D′ = D plus one adversarial device are produced to two topics the way a gateway would:
each record stamped with its arrival time (non-decreasing, like LogAppendTime), placed by
kafka-python's default partitioner, except the adversary's records that another partitioner put
in the wrong partition. Each is consumed by the real consumer loop into its own database, and the
partials are read as the releaser reads them (per partition, only the counted closing). Every
window must differ by at most the charged bound (tests/support/neighbour.py, ``distance``).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from hexpulse.kafka import make_producer
from hexpulse.settings import Settings
from hexpulse.store.scratch import drop_database
from privacy.release.releaser import Releaser
from tests.support.aggregate import TEST_KEY, agg_settings, run_in_process
from tests.support.neighbour import Sums, Upload, distance, home, message, ping

pytestmark = pytest.mark.integration

WPD = 2160  # of 8,640 ten-second windows a day: a device is due in one window of four


def city(t0: int, devices: int, span_ms: int) -> list[Upload]:
    """Phones with right clocks: a ping every 3 s, alone or in pairs, 0.5–2 s before arrival."""
    out = []
    for i in range(devices):
        name = f"phone-{i}"
        for k, t in enumerate(range(t0 + (i * 389) % 3000, t0 + span_ms, 3000)):
            pings = [ping(t - 500 - 700 * j, i + k // 20, 3.0 * (i % 3)) for j in range(1 + k % 2)]
            out.append(Upload(t, name, message(name, pings)))
    return out


def adversary(t0: int, partitions: int, window_ms: int) -> list[Upload]:
    """A fast and a slow clock, many cells, duplicates, a re-sent message, window edges, and
    records in both wrong partitions."""
    name = "mallory"
    wrong = [(home(name, partitions) + k) % partitions for k in (1, 2)]
    out = [
        Upload(t0 + 10_000, name, message(name, [ping(t0 + 10_000 + 290_000, 1)])),  # 290 s fast
        Upload(t0 + 12_000, name, message(name, [ping(t0 + 12_000 - 3 * 3600_000, 2)])),  # slow
        Upload(t0 + 15_000, name, message(name, [ping(t0 + 14_000 - k, k, 80.0) for k in range(6)])),
        Upload(t0 + 21_000, name, message(name, [ping(t0 + 20_000, 3), ping(t0 + 20_000, 3)])),  # dup
    ]
    edge = (t0 + 40_000) // window_ms * window_ms
    edges = message(name, [ping(edge - 1, 4), ping(edge, 5), ping(edge + 1, 6)])
    out += [Upload(edge + 2000, name, edges), Upload(edge + 30_000, name, edges)]  # re-sent later
    for i, p in enumerate(wrong):
        t = t0 + 50_000 + 5000 * i
        out.append(Upload(t, name, message(name, [ping(t - 1000, i), ping(t - 900, i + 3)]), p))
    return out


def produce(s: Settings, uploads: list[Upload]) -> int:
    producer = make_producer(s, linger_ms=5)
    for u in sorted(uploads, key=lambda u: u.arrival_ms):
        producer.send(s.topic_pings, key=u.device.encode(), value=u.value, partition=u.partition,
                      timestamp_ms=u.arrival_ms)  # fmt: skip
    producer.flush()
    producer.close()
    return len(uploads)


def released(s: Settings, windows: range) -> Sums:
    """What the releaser would noise: per (window, cell), from each partition's counted closing."""
    ring = Path(tempfile.mkdtemp()) / "keyring.bin"  # part B's releaser needs a release-noise ring
    rel = Releaser(s.model_copy(update={"master_key": SecretStr(TEST_KEY), "keyring_path": ring}))
    base = rel.tree.cells[0].tolist()
    out: Sums = {}
    for w in windows:
        exact = rel.read_exact(w // 1000)
        count, moving, speed = (exact[k].tolist() for k in ("count", "moving", "speed"))
        for i, (d, m, sp) in enumerate(zip(count, moving, speed, strict=True)):
            if d or m or sp:
                out[(w, base[i])] = (d, m, sp)
    return out


@pytest.fixture()
def pair(migrated: Settings, unique_name: str) -> Iterator[tuple[Settings, Settings]]:
    a = agg_settings(migrated, unique_name + "-d", windows_per_device_day=WPD)
    b = agg_settings(migrated, unique_name + "-e", windows_per_device_day=WPD)
    yield a, b
    drop_database(a)
    drop_database(b)


def test_neighbour_property_through_broker_and_clickhouse(pair: tuple[Settings, Settings]) -> None:
    a, b = pair
    t0 = (int(time.time()) - 600) // 10 * 10 * 1000  # ten minutes ago: keys exist for that day
    d = city(t0, devices=40, span_ms=240_000)
    extra = adversary(t0, a.topic_partitions, a.window_ms)
    n_a, n_b = produce(a, d), produce(b, d + extra)
    max_ts = max(t0 + 300_000, t0 + 10_000 + 290_000)
    run_in_process(a, None, messages=n_a, max_ts_ms=max_ts)
    run_in_process(b, None, messages=n_b, max_ts_ms=max_ts)
    windows = range(t0 // a.window_ms * a.window_ms, max_ts + a.window_ms, a.window_ms)
    base, plus = released(a, windows), released(b, windows)
    # 40 phones × ~24 windows, each due in one window of four (the day cap): ~240 device-windows.
    assert 200 <= sum(v[0] for v in base.values()) <= 280
    dist = distance(base, plus)
    assert dist.within(a), dist
    assert 1 <= dist.windows <= 4, dist  # the adversary counted, in few windows
