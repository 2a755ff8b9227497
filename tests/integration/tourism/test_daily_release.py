"""The daily tourism release over a real ClickHouse (privacy/release/tourism_release.py): a day is
released only once ended and its windows public, once (a rerun redraws the very same values), with
unbiased estimates near the exact partials, ledger charges counted once per UTC day however many
local days touch it, and a changed exact input refused rather than drawn again."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from clickhouse_driver import Client

from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.scratch import scratch_database
from hexpulse.times import S_PER_DAY, naive_utc
from privacy.keys.keyring import KeyRing
from privacy.release.budget import plan_from_settings
from privacy.release.exceptions import DoubleDrawError
from privacy.release.ledger import spent_on
from privacy.release.tourism_daily import AreaRef, day_counts, local_date_of, local_day_bounds, visits
from privacy.release.tourism_release import TourismReleaser
from tests.support.release import release_settings

pytestmark = pytest.mark.integration

PLAN = ("cells:0.65", "zones.crowd:0.25", "zones.district:0.05", "tourism.visitors:0.03",
        "tourism.dwell:0.02")  # fmt: skip
PRESENCE = "tourism_presence (window_start, zone_id, partition, closing, device) VALUES"
AREAS = [AreaRef("peak", "zp", "Asia/Shanghai"), AreaRef("lake", "zl", "Asia/Shanghai"),
         AreaRef("pier", "zp", "UTC")]  # fmt: skip
NOW = int(__import__("time").time())
SH_DAY = local_date_of(NOW, "Asia/Shanghai") - timedelta(days=1)  # ended (it ends ≤ 16:00 UTC today)
UTC_DAY = local_date_of(NOW, "UTC") - timedelta(days=1)


@pytest.fixture()
def rs(migrated: Settings, unique_name: str, tmp_path: Path) -> Iterator[Settings]:
    db = f"{migrated.clickhouse_database}_td{unique_name[-6:]}"
    s = release_settings(migrated, db, tmp_path / "keyring.bin", budget_plan=PLAN, window_s=600)
    with scratch_database(s) as s:
        yield s


def seed(client: Client, s: Settings, public_until: int) -> list[tuple[int, str, int]]:
    """Areas (registered in 1970), presence rows of ~600 pseudonyms of three UTC days under one
    closing per partition whose progress row covers them, and the public windows up to
    ``public_until`` (epoch s). Returns the presence rows."""
    client.execute(
        f"INSERT INTO {s.clickhouse_database}.tourism_areas (area_id, name, zone_id, capacity, timezone, "
        "created_at, deleted, revision) VALUES",
        [(a.area_id, a.area_id, a.zone_id, 0, a.timezone, naive_utc(0), 0, 1) for a in AREAS],
    )
    rng = random.Random(5)
    first = local_day_bounds(SH_DAY, "Asia/Shanghai")[0] // S_PER_DAY * S_PER_DAY
    end = local_day_bounds(UTC_DAY, "UTC")[1]
    rows = []
    for device in range(600):
        t = first + rng.randrange(0, end - first - 6 * 3600) // 600 * 600
        zone = rng.choice(["zp", "zl"])
        for i in range(rng.randint(1, 30)):  # up to 5 h in ten-minute windows
            rows.append((t + 600 * i, zone, device % 3, 77, 10_000 + device))
    client.execute(
        f"INSERT INTO {s.exact_database}.{PRESENCE}",
        [(naive_utc(w), z, p, c, d) for w, z, p, c, d in rows],
    )
    client.execute(
        f"INSERT INTO {s.exact_database}.progress (topic, partition, horizon, from_horizon, watermark_ms, "
        "close_offset, closed_by, closing, epoch, generation, written_at) VALUES",
        [(s.topic_pings, p, naive_utc(NOW + 3600), naive_utc(0), 0, 0, "watermark", 77, 1, 1, naive_utc(NOW))
         for p in range(3)],
    )  # fmt: skip
    earliest = min(local_day_bounds(SH_DAY, "Asia/Shanghai")[0], local_day_bounds(UTC_DAY, "UTC")[0])
    publish(client, s, earliest, public_until)
    return [(w, z, d) for w, z, _, _, d in rows]


def publish(client: Client, s: Settings, start: int, end: int) -> None:
    """Public windows (release_windows rows) starting in [start, end), epoch s."""
    client.execute(
        f"INSERT INTO {s.clickhouse_database}.release_windows (window_start, window_end, released_at, "
        "base_cells, rho, mechanism, lag_s) VALUES",
        [(naive_utc(w), naive_utc(w + 600), naive_utc(NOW), 0, 0.0, "gaussian", 1.0)
         for w in range(start, end, 600)],  # fmt: skip
    )


def released(client: Client, s: Settings) -> dict[tuple[str, date, str], tuple[float, float, int]]:
    rows = client.execute(
        f"SELECT area_id, local_date, metric, estimate, sigma, display "
        f"FROM {s.clickhouse_database}.release_tourism_daily FINAL"
    )
    return {(a, d, m): (float(e), float(sg), int(x)) for a, d, m, e, sg, x in rows}


def test_release_once_unbiased_and_charged_once_per_utc_day(rs: Settings) -> None:
    s = rs
    client = connect(s)
    plan = plan_from_settings(s)
    tr = TourismReleaser(s, client, KeyRing.from_settings(s), plan)
    sh_end = local_day_bounds(SH_DAY, "Asia/Shanghai")[1]
    rows = seed(client, s, public_until=sh_end - 1200)  # the Shanghai day's last window is not public
    now = max(NOW, sh_end + 60)  # the lateness (30 s) after the Shanghai day's end has passed
    assert ("Asia/Shanghai", SH_DAY) not in tr.due(now)  # its last windows are not public yet
    publish(client, s, sh_end - 1200, NOW // 600 * 600)  # sh_end is a window start ≤ NOW
    due = tr.due(now)
    assert sorted(due) == [("Asia/Shanghai", SH_DAY), ("UTC", UTC_DAY)]  # days before the data are partial
    assert tr.run_once(now) == len(due)
    first = released(client, s)
    assert tr.due(now) == [] and tr.run_once(now) == 0
    # Noise once: releasing again (a crash before the day rows, say) redraws the same values.
    tr.release_day("Asia/Shanghai", SH_DAY)
    assert released(client, s) == first
    # Unbiased and near the exact partials (σ ≈ 7 and 8.7 devices; 5σ: false alarm < 1e-5 overall).
    k = s.tourism_max_areas
    found = visits(rows, AREAS, k)
    for area, day in [("peak", SH_DAY), ("lake", SH_DAY), ("pier", UTC_DAY)]:
        exact = day_counts(found.get((area, day), []), s.window_s)
        assert exact.visitors > 20, (area, exact)
        for metric, want in zip(("visitors", "dwell_lt_15m", "dwell_15_60m", "dwell_1_3h", "dwell_ge_3h"),
                                (exact.visitors, *exact.dwell), strict=True):  # fmt: skip
            est, sigma, display = first[(area, day, metric)]
            assert abs(est - want) <= 5 * sigma and display == max(0, round(est))
    v, d = plan.daily_draw("tourism.visitors"), plan.daily_draw("tourism.dwell")
    assert v is not None and d is not None
    assert abs(v.rho - 0.03 * s.budget_rho_per_day) < 1e-9 and abs(d.rho - 0.02 * s.budget_rho_per_day) < 1e-9
    # The Shanghai day and the UTC day both touch UTC day UTC_DAY: charged once for it.
    assert spent_on(client, s.clickhouse_database, UTC_DAY) == pytest.approx(v.rho + d.rho)
    days = client.execute(
        "SELECT area_id, local_date, timezone, k_areas "
        f"FROM {s.clickhouse_database}.release_tourism_days FINAL ORDER BY area_id"
    )
    assert [(a, str(tz), int(kk)) for a, _, tz, kk in days] == [
        ("lake", "Asia/Shanghai", k), ("peak", "Asia/Shanghai", k), ("pier", "UTC", k)]  # fmt: skip
    # A changed exact input after release is refused, never drawn a second time.
    start = local_day_bounds(SH_DAY, "Asia/Shanghai")[0]
    client.execute(
        f"INSERT INTO {s.exact_database}.{PRESENCE}",
        [(naive_utc(start + 7200), "zl", 0, 77, 99)],
    )
    with pytest.raises(DoubleDrawError):
        tr.release_day("Asia/Shanghai", SH_DAY)
    assert released(client, s) == first
    client.disconnect()
