"""The neighbour and replay properties of the daily tourism partials, through the real ingest and
aggregate code (tests/support/neighbour.py: gateway, partitioned log, consume loop with crashes,
replays and a zombie owner; the sink's presence rows are the real sink's) and the real daily
computation (privacy/release/tourism_daily.py).

D′ = D plus one adversarial device that visits every tourism area, on both sides of 00:00 UTC
(so as two pseudonym-days), with a fast clock, duplicates, re-sent messages and records in the
wrong partition. Per pseudonym-day (the privacy unit) the daily partials of every (area, local
day) together move by at most K visitors and K dwell-bin counts, one bin per moved entry; across
the whole device at most 2K. Faults change nothing: a run with crashes gives the fault-free rows.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import h3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aggregate.presence import TourismZones
from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings, load_settings
from ingest import Ingestor
from privacy.release.tourism_daily import AreaRef, PresenceRow, day_counts, visits
from tests.support.ingest import NOW_MS, KeyedHashPseudonymizer, ListSink
from tests.support.neighbour import MemorySink, Schedule, Upload, consume, home, message, ping, place

MIDNIGHT = NOW_MS  # 00:00 UTC; 08:00 in Shanghai, so one Shanghai day holds both sides
PARTITIONS = 3
K = 3


def cell_of(k: int) -> int:
    p = ping(0, k)
    return int(h3.str_to_int(h3.latlng_to_cell(float(p["lat"]), float(p["lon"]), 9)))  # type: ignore[arg-type]


ZONES = {cell_of(k): (f"z{k}",) for k in range(6)}
# Five Shanghai areas, and two in UTC (whose local day changes at 00:00 UTC), one sharing a zone.
AREAS = [AreaRef(f"a{k}", f"z{k}", "Asia/Shanghai") for k in range(5)]
AREAS += [AreaRef("u5", "z5", "UTC"), AreaRef("u1", "z1", "UTC")]


def make_settings() -> Settings:
    return load_settings(
        topic_partitions=PARTITIONS, window_s=60, lateness_s=30, idle_timeout_s=15.0, tourism_max_areas=K
    )


def run(uploads: list[Upload], s: Settings, schedule: Schedule) -> set[tuple[int, str, int]]:
    ing = Ingestor(s, load_service_area(s), KeyedHashPseudonymizer(), ListSink())
    sink = MemorySink(s, TourismZones(lambda _w: ZONES))
    return consume(place(uploads, PARTITIONS), s, ing, schedule, sink).counted_presence()


Entry = tuple[str, date, int]  # (area, local date, UTC day of the pseudonym)


def partials(rows: set[PresenceRow]) -> dict[Entry, tuple[int, ...]]:
    """Daily partials per (area, local day), split by the pseudonym-day the visits belong to."""
    out: dict[Entry, tuple[int, ...]] = {}
    for (area, day), found in visits(rows, AREAS, K).items():
        by_day = defaultdict(list)
        for v in found:
            by_day[v.utc_day].append(v)
        for utc_day, mine in by_day.items():
            c = day_counts(mine, 60)
            out[(area, day, utc_day)] = (c.visitors, *c.dwell)
    return out


@st.composite
def honest_device(draw: st.DrawFn, name: str) -> list[Upload]:
    """A visitor walking through one or two areas around 00:00 UTC, an upload every ~30 s."""
    t = MIDNIGHT + draw(st.integers(-30, 10)) * 60_000
    stay = draw(st.integers(1, 25))
    cells = draw(st.lists(st.integers(0, 5), min_size=1, max_size=2))  # cells 0–5 are all zones
    out = []
    for i in range(stay * 2):
        k = cells[min(i * len(cells) // (stay * 2), len(cells) - 1)]
        out.append(Upload(t, name, message(name, [ping(t - 800, k)])))
        t += 30_000
    return out


def adversary(name: str = "mallory") -> list[Upload]:
    """Every area on both sides of midnight, two windows each; a fast clock, a duplicate, a
    re-sent batch, records in both wrong partitions."""
    out = []
    wrong = [(home(name, PARTITIONS) + j) % PARTITIONS for j in (1, 2)]
    for side in (-1, 1):
        for k in range(6):
            t = MIDNIGHT + side * (k + 1) * 150_000
            batch = [ping(t - 1000, k), ping(t - 900, k), ping(t - 900, k), ping(t + 59_000, k)]
            out.append(Upload(t + 60_000, name, message(name, batch)))
            out.append(Upload(t + 90_000, name, message(name, batch)))  # re-sent
    out.append(Upload(MIDNIGHT - 200_000, name, message(name, [ping(MIDNIGHT + 60_000, 5)])))  # fast
    for j, p in enumerate(wrong):
        t = MIDNIGHT + 400_000 + 10_000 * j
        out.append(Upload(t, name, message(name, [ping(t - 500, j)]), p))
    return out


def moved(a: dict[Entry, tuple[int, ...]], b: dict[Entry, tuple[int, ...]]) -> dict[Entry, tuple[int, ...]]:
    zero = (0,) * 5
    out = {}
    for key in a.keys() | b.keys():
        d = tuple(y - x for x, y in zip(a.get(key, zero), b.get(key, zero), strict=True))
        if any(d):
            out[key] = d
    return out


def assert_within_bound(base: dict[Entry, tuple[int, ...]], other: dict[Entry, tuple[int, ...]]) -> int:
    """Every moved entry moves by one visitor in one bin; ≤ K entries per pseudonym-day."""
    diff = moved(base, other)
    per_day: dict[int, int] = defaultdict(int)
    for (_, _, utc_day), d in diff.items():
        assert abs(d[0]) == 1 and sorted(abs(x) for x in d[1:]) == [0, 0, 0, 1], diff
        assert sum(d[1:]) == d[0], diff
        per_day[utc_day] += 1
    assert all(n <= K for n in per_day.values()), diff
    return len(diff)


CRASHES = st.sampled_from(["before_flush", "partials_only", "before_commit", "zombie"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(0, 10**6), min_size=1, max_size=5, unique=True).flatmap(
        lambda ids: st.tuples(*[honest_device(f"visitor-{i}") for i in ids])
    ),
    st.lists(st.tuples(st.integers(MIDNIGHT - 1_800_000, MIDNIGHT + 1_800_000), CRASHES), max_size=3),
    st.integers(1, 5),
)
def test_one_device_moves_daily_partials_by_at_most_k_per_pseudonym_day(
    honest: tuple[list[Upload], ...], crashes: list, polls: int  # type: ignore[type-arg]
) -> None:
    s = make_settings()
    schedule = Schedule(tick_ms=5_000, poll_records=polls, crashes=tuple(crashes))
    d = [u for dev in honest for u in dev]
    faulty = run(d, s, schedule)
    assert faulty == run(d, s, Schedule(poll_records=4)), "faults changed the exact presence rows"
    base = partials(faulty)
    plus = partials(run(d + adversary(), s, schedule))
    # The adversary is two pseudonym-days, each counted in its first K pairs: 2K entries move.
    assert assert_within_bound(base, plus) == 2 * K
    gone = honest[0][0].device
    minus = partials(run([u for u in d if u.device != gone], s, schedule))
    assert assert_within_bound(base, minus) >= 1  # it visited an area: its own visits go


@pytest.mark.parametrize("k", [1, 2, 6, 9])
def test_k_is_the_setting(k: int) -> None:
    # Each side of midnight offers 7 pairs (five Shanghai areas, two UTC ones); each keeps k.
    rows = run(adversary(), make_settings(), Schedule())
    assert sum(len(found) for found in visits(rows, AREAS, k).values()) == 2 * min(k, 7)
