"""The neighbour test (issue #9): the proof that what is counted respects the charged bound.

For streams D and D′ = D plus one extra device with adversarial pings — a fast or slow clock,
pings in many cells, duplicates and re-sent messages, records in the wrong partition, pings at
window edges, records around idle closes — run through the real ingest and aggregate code with
crashes, replays and a zombie owner (tests/support/neighbour.py), the released partials of every
window differ by at most what the accounting charges: per metric, L2 over cells ≤ √L (speed sums
≤ √L·B; speed bins ≤ √L over every (cell, bin) entry), in at most W windows of the device-day,
namely those its pseudonym is due in. Likewise for removing a device. The windowing that issue #9
replaced (event-time watermark, kept as ``rule="event_time"`` of the plain reference) fails the
same check on the fast-clock case.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hexpulse.service_area import load_service_area
from hexpulse.settings import Settings, load_settings
from ingest import Ingestor
from tests.support.ingest import NOW_MS, KeyedHashPseudonymizer, ListSink
from tests.support.neighbour import (
    Crash,
    Schedule,
    Sums,
    Upload,
    bins_l2,
    consume,
    distance,
    home,
    message,
    ping,
    place,
    reference_sums,
)

T0 = NOW_MS + 3_600_000  # 01:00 UTC: every stream below lies within one device-day
PARTITIONS = 3
WPD = 360  # W: a device is due in one window of every four (day index ≡ pseudonym mod 4)


def make_settings(cells: int = 1, partitions: int = PARTITIONS, wpd: int = WPD) -> Settings:
    return load_settings(
        topic_partitions=partitions,
        cells_per_window=cells,
        windows_per_device_day=wpd,
        window_s=60,
        lateness_s=30,
        idle_timeout_s=15.0,
    )


def ingestor_for(s: Settings) -> Ingestor:
    return Ingestor(s, load_service_area(s), KeyedHashPseudonymizer(), ListSink())


# ---- streams -------------------------------------------------------------------------------


@st.composite
def honest_device(draw: st.DrawFn, name: str) -> list[Upload]:
    """A phone with a right clock uploading 1–3 pings every few seconds to a minute."""
    out = []
    t = T0 + draw(st.integers(0, 300_000))
    cell = draw(st.integers(0, 6))
    for _ in range(draw(st.integers(1, 6))):
        delay = draw(st.integers(0, 15_000))
        n = draw(st.integers(1, 3))
        spd = draw(st.sampled_from([None, 0.5, 3.0, 12.0]))
        out.append(Upload(t, name, message(name, [ping(t - delay - 1000 * i, cell, spd) for i in range(n)])))
        t += draw(st.integers(3_000, 60_000))
    return out


def honest_devices(max_size: int) -> st.SearchStrategy[tuple[list[Upload], ...]]:
    """1 to ``max_size`` honest phones with distinct names (:func:`honest_device`)."""
    return st.lists(st.integers(0, 10**6), min_size=1, max_size=max_size, unique=True).flatmap(
        lambda ids: st.tuples(*[honest_device(f"phone-{i}") for i in ids])
    )


EVENT_SHIFTS_MS = [
    290_000,  # a clock 290 s fast: just inside max_clock_skew_s
    150_000,
    30_000,
    0,
    -35_000,  # just past the lateness
    -600_000,
    -6 * 3600 * 1000 + 60_000,  # a slow clock: just inside max_ping_age_s
]


@st.composite
def adversary(draw: st.DrawFn, name: str = "mallory") -> list[Upload]:
    """The extra device: any clock, pings spread over many cells, at window edges, duplicated,
    re-sent later, and records a producer with another partitioner put in the wrong partition."""
    out = []
    for _ in range(draw(st.integers(1, 8))):
        t = T0 + draw(st.integers(0, 420_000))
        shift = draw(st.sampled_from(EVENT_SHIFTS_MS))
        ts = t + shift
        if draw(st.booleans()):  # on a window edge: the last or the first ms of a window
            ts = ts // 60_000 * 60_000 - draw(st.sampled_from([1, 0]))
        n = draw(st.integers(1, 4))
        speeds = st.sampled_from([None, 40.0, 89.0])
        pings = [ping(ts - 7 * i, draw(st.integers(0, 6)), draw(speeds)) for i in range(n)]
        if draw(st.booleans()):
            pings.append(dict(pings[0]))  # an exact duplicate inside the batch
        value = message(name, pings)
        wrong = draw(st.sampled_from([None, None, 1, 2]))
        part = None if wrong is None else (home(name, PARTITIONS) + wrong) % PARTITIONS
        out.append(Upload(t, name, value, part))
        if draw(st.booleans()):  # the same message re-sent later (a retry, a replay)
            out.append(Upload(t + draw(st.integers(0, 120_000)), name, value, part))
    return out


CRASHES: list[Crash] = ["before_flush", "partials_only", "before_commit", "zombie"]


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    crashes = draw(st.lists(st.tuples(st.integers(T0, T0 + 540_000), st.sampled_from(CRASHES)), max_size=3))
    return Schedule(tick_ms=5_000, poll_records=draw(st.integers(1, 5)), crashes=tuple(crashes))


# ---- the property ------------------------------------------------------------------------------


def due_windows(s: Settings, device: str) -> set[int]:
    """Day indexes (mod per_day // W) the device-day's pseudonym may contribute to."""
    modulus = (86_400 // s.window_s) // s.windows_per_device_day
    pseudonym = KeyedHashPseudonymizer().pseudonymize(device.encode(), T0 // 86_400_000)
    return {pseudonym % modulus}


def assert_neighbours(s: Settings, a: Sums, b: Sums, device: str) -> None:
    d = distance(a, b)
    assert d.within(s), d
    modulus = (86_400 // s.window_s) // s.windows_per_device_day
    due = due_windows(s, device)
    assert all(((w % 86_400_000) // s.window_ms) % modulus in due for w in d.windows_changed), d


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    honest_devices(5),
    adversary(),
    schedules(),
    st.sampled_from([1, 2]),
)
def test_adding_or_removing_a_device_moves_partials_by_at_most_the_charged_bound(
    honest: tuple[list[Upload], ...], extra: list[Upload], schedule: Schedule, cells: int
) -> None:
    s = make_settings(cells)
    ing = ingestor_for(s)
    d = [u for dev in honest for u in dev]
    root_l = math.sqrt(s.cells_per_window) + 1e-9
    run = consume(place(d, PARTITIONS), s, ing, schedule)
    base, base_bins = run.counted(), run.counted_bins()
    # Exactly once: the faults of the schedule change nothing.
    clean = consume(place(d, PARTITIONS), s, ing, Schedule(poll_records=4))
    assert base == clean.counted() and base_bins == clean.counted_bins()
    plus = consume(place(d + extra, PARTITIONS), s, ing, schedule)
    assert_neighbours(s, base, plus.counted(), "mallory")
    # Speed bins: one bin vector per cell moves by at most √L in L2 over all its entries.
    assert bins_l2(base_bins, plus.counted_bins()) <= root_l
    # Removing a device: the first honest one (its uploads all carry its name).
    gone = honest[0][0].device
    minus = consume(place([u for u in d if u.device != gone], PARTITIONS), s, ing, schedule)
    assert_neighbours(s, base, minus.counted(), gone)
    assert bins_l2(base_bins, minus.counted_bins()) <= root_l


# ---- hole 1: one fast clock -----------------------------------------------------------------------


def city(devices: int, windows: int) -> list[Upload]:
    """``devices`` phones with right clocks, one single-ping upload every 10 s for ``windows``
    minutes, each ping stamped 1 s before it reaches the gateway."""
    out = []
    for i in range(devices):
        name = f"phone-{i}"
        for k in range(windows * 6):
            t = T0 + 10_000 * k + (i * 7) % 10_000
            out.append(Upload(t, name, message(name, [ping(t - 1000, i)])))
    return out


def fast_clock(name: str = "mallory", ahead_ms: int = 290_000) -> list[Upload]:
    """A phone whose clock is ``ahead_ms`` fast: its one ping claims to be from the future."""
    t = T0 + 20_000
    return [Upload(t, name, message(name, [ping(t + ahead_ms)]))]


def per_window(sums: Sums) -> dict[int, int]:
    out: dict[int, int] = {}
    for (w, _), (devices, _, _) in sums.items():
        out[w] = out.get(w, 0) + devices
    return out


def test_fast_clock_cannot_close_other_devices_windows() -> None:
    """Hole 1 of issue #9: 1,000 devices × 6 windows in one partition, plus one device 290 s fast.
    With windows closed by record timestamps every other device's pings still count (1,000 per
    window) and the neighbours differ by the one device; with the old event-time watermark the
    same stream loses most windows, so the neighbour check fails for it."""
    s = make_settings(partitions=1, wpd=1440)
    ing = ingestor_for(s)
    d = city(1000, 6)
    d_plus = d + fast_clock()
    pings_in = len(d)
    assert pings_in == 36_000
    windows = [T0 + 60_000 * k for k in range(6)]

    base = consume(place(d, 1), s, ing, Schedule(poll_records=500)).counted()
    plus = consume(place(d_plus, 1), s, ing, Schedule(poll_records=500)).counted()
    assert [per_window(base).get(w, 0) for w in windows] == [1000] * 6
    # The fast device counts once, in the window its clock names (T0 + 310 s); nobody else moves.
    assert [per_window(plus).get(w, 0) for w in windows] == [1000] * 5 + [1001]
    assert distance(base, plus).within(s) and distance(base, plus).windows == 1
    assert base == reference_sums(place(d, 1), s, ing, "record")
    assert plus == reference_sums(place(d_plus, 1), s, ing, "record")

    old_base = reference_sums(place(d, 1), s, ing, "event_time")
    old_plus = reference_sums(place(d_plus, 1), s, ing, "event_time")
    assert old_base == base  # with right clocks the old rule counted the same...
    # ...but one fast clock emptied the three windows after its record (−1: its own ping).
    assert [1000 - per_window(old_plus).get(w, 0) for w in windows] == [0, 1000, 1000, 1000, 0, -1]
    assert not distance(old_base, old_plus).within(s)


@pytest.mark.parametrize("shift", EVENT_SHIFTS_MS)
def test_one_device_with_any_clock_moves_one_window_by_one(shift: int) -> None:
    s = make_settings(partitions=1, wpd=1440)
    ing = ingestor_for(s)
    d = city(50, 6)
    extra = fast_clock(ahead_ms=shift)
    base = consume(place(d, 1), s, ing, Schedule(poll_records=50)).counted()
    plus = consume(place(d + extra, 1), s, ing, Schedule(poll_records=50)).counted()
    dist = distance(base, plus)
    assert dist.within(s) and dist.windows <= 1
    (upload,) = extra
    ts = upload.arrival_ms + shift
    late = ts // 60_000 * 60_000 < (upload.arrival_ms - 30_000) // 60_000 * 60_000  # its own record
    assert dist.worst_count_l2 == (0.0 if late else 1.0)
    assert math.isclose(sum(v[0] for v in plus.values()) - sum(v[0] for v in base.values()), dist.windows)
