"""Exact daily tourism partials: per (area, local day) the visits of distinct pseudonyms, each with
its dwell (windows present), first and last window, bounded to K areas per device-day.

Input: the counted rows of ``tourism_presence`` (aggregate/presence.py; only rows of the closing
that ``progress`` vouches for per partition and window, hexpulse/store/progress.py).

**Local day vs the UTC pseudonym day** (PRIVACY.md "Tourism daily"). An area's local day is the
calendar day of its IANA time zone, ``[local 00:00, next local 00:00)``, in UTC. Pseudonyms rotate
at 00:00 UTC, so a local day that is not a UTC day spans two pseudonym days, and a device present on
both sides of 00:00 UTC is two unlinkable pseudonyms: it is counted as two visitors (each a
*pseudonym segment*), with its dwell split between them. The privacy unit stays the device-UTC-day:
each pseudonym-day keeps its first K (area, local day) pairs, ranked by the pair's first window,
then area id, then local date — a function of its own rows and public area definitions only. So
the releases of every local day a pseudonym-day touches together change by at most K visitors and
K dwell-bin counts (one bin per kept pair): one Gaussian measurement of L2 sensitivity √K per
metric, charged once per UTC day however many local days it is split over.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from clickhouse_driver import Client

from hexpulse.settings import Settings
from hexpulse.store.progress import CLAIM, COLUMNS, Coverage, ProgressRow
from hexpulse.times import S_PER_DAY, naive_utc

DWELL_METRICS = ("dwell_lt_15m", "dwell_15_60m", "dwell_1_3h", "dwell_ge_3h")
"""The dwell histogram's bins, as ``release_tourism_daily.metric`` names them."""
DWELL_EDGES_MIN = (15, 60, 180)
"""Bin edges (minutes): < 15, 15–60, 60–180, ≥ 180 (the 3-hour stay threshold)."""

PresenceRow = tuple[int, str, int]
"""(window start epoch s, zone id, pseudonym) of one counted presence row."""
PairKey = tuple[str, date]
"""(area id, local date)."""
AreasOf = Callable[[int], Sequence["AreaRef"]]
"""UTC day number → the areas a pseudonym-day of that day is ranked over."""


@dataclass(frozen=True)
class AreaRef:
    """What the daily partials need of a tourism area: its id, zone and IANA time zone."""

    area_id: str
    zone_id: str
    timezone: str


@dataclass(frozen=True)
class Visit:
    """One pseudonym-day's presence in one area on one local day. ``windows`` present (dwell =
    windows × window length), ``first_s``/``last_s`` the first and last window start (epoch s)."""

    utc_day: int
    device: int
    windows: int
    first_s: int
    last_s: int


@dataclass(frozen=True)
class DayCounts:
    """Exact daily partials of one (area, local day): distinct pseudonym segments and the dwell
    histogram (visitors per :data:`DWELL_METRICS` bin; the bins sum to ``visitors``)."""

    visitors: int
    dwell: tuple[int, int, int, int]


@lru_cache(maxsize=64)
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def local_day_bounds(local_date: date, tz: str) -> tuple[int, int]:
    """``[start, end)`` of ``local_date`` in zone ``tz``, epoch s (23 or 25 h on DST changes)."""
    z = _zone(tz)
    start = datetime(local_date.year, local_date.month, local_date.day, tzinfo=z)
    nxt = local_date + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=z)
    return int(start.timestamp()), int(end.timestamp())


def local_date_of(epoch_s: int, tz: str) -> date:
    """The calendar date in ``tz`` of an instant (epoch s)."""
    return datetime.fromtimestamp(epoch_s, UTC).astimezone(_zone(tz)).date()


def read_span(local_date: date, tz: str) -> tuple[int, int]:
    """The presence rows one local day's partials need (epoch s): from 00:00 UTC of the UTC day its
    start falls in (a pseudonym-day's earlier pairs decide its ranking) to the local day's end."""
    start, end = local_day_bounds(local_date, tz)
    return start // S_PER_DAY * S_PER_DAY, end


def dwell_bin(minutes: float) -> int:
    """Index into :data:`DWELL_METRICS` of a dwell of ``minutes``."""
    return sum(minutes >= e for e in DWELL_EDGES_MIN)


def visits(
    rows: Iterable[PresenceRow], areas: Sequence[AreaRef] | AreasOf, k: int
) -> dict[PairKey, list[Visit]]:
    """Every kept visit per (area, local day): each pseudonym-day's first ``k`` pairs (see the
    module docstring). Rows may repeat (a window is present once however often it is listed).

    ``areas``: the areas every pseudonym-day is ranked over, or a function of the UTC day giving
    them (the releaser passes the areas as registered at that day's 00:00 UTC, so every release
    that touches the day ranks its pseudonyms alike)."""
    areas_of = areas if callable(areas) else (lambda _day: areas)
    zone_maps: dict[int, dict[str, list[AreaRef]]] = {}
    seen: dict[tuple[int, int], dict[PairKey, set[int]]] = defaultdict(lambda: defaultdict(set))
    for w, zone, device in rows:
        day = w // S_PER_DAY
        by_zone = zone_maps.get(day)
        if by_zone is None:
            by_zone = defaultdict(list)
            for a in areas_of(day):
                by_zone[a.zone_id].append(a)
            zone_maps[day] = by_zone
        for a in by_zone.get(zone, ()):
            seen[(day, device)][(a.area_id, local_date_of(w, a.timezone))].add(w)
    out: dict[PairKey, list[Visit]] = defaultdict(list)
    for (day, device), pairs in seen.items():
        ranked = sorted(pairs.items(), key=lambda kv: (min(kv[1]), kv[0][0], kv[0][1]))
        for key, wins in ranked[:k]:
            out[key].append(Visit(day, device, len(wins), min(wins), max(wins)))
    return dict(out)


def day_counts(found: list[Visit], window_s: int) -> DayCounts:
    """The exact partials of one (area, local day) from its kept visits."""
    dwell = [0, 0, 0, 0]
    for v in found:
        dwell[dwell_bin(v.windows * window_s / 60)] += 1
    return DayCounts(len(found), (dwell[0], dwell[1], dwell[2], dwell[3]))


class PresenceReader:
    """Reads counted presence rows from the exact database (the pipeline user's connection)."""

    def __init__(self, settings: Settings, client: Client) -> None:
        self.settings = settings
        self.client = client
        self.exact = settings.exact_database

    def coverage(self, after_s: int) -> Coverage:
        rows = self.client.execute(
            f"SELECT {COLUMNS} FROM {self.exact}.progress FINAL WHERE topic = %(topic)s "
            "AND (closed_by = %(claim)s OR horizon > %(after)s)",
            {"topic": self.settings.topic_pings, "claim": CLAIM, "after": naive_utc(max(after_s, 0))},
        )
        return Coverage([ProgressRow.of(r) for r in rows])

    def complete_before(self, after_s: int) -> int | None:
        """Epoch s before which every window is complete (every partition has a counted closing)."""
        cov = self.coverage(after_s)
        hs = [cov.horizon(p) for p in range(self.settings.topic_partitions)]
        return None if any(h is None for h in hs) else min(h for h in hs if h is not None) // 1000

    def rows(self, start_s: int, end_s: int, zone_ids: list[str]) -> list[PresenceRow]:
        """Counted presence rows of windows in ``[start_s, end_s)`` for ``zone_ids``."""
        cov = self.coverage(start_s)
        got = self.client.execute(
            "SELECT toUInt32(window_start), zone_id, partition, closing, device "
            f"FROM {self.exact}.tourism_presence FINAL WHERE window_start >= %(a)s "
            "AND window_start < %(b)s AND zone_id IN %(z)s",
            {"a": naive_utc(start_s), "b": naive_utc(end_s), "z": tuple(zone_ids) or ("",)},
        )
        out: list[PresenceRow] = []
        for w, zone, p, closing, device in got:
            c = cov.counted(int(p), int(w) * 1000)
            if c is not None and c.closing == int(closing):
                out.append((int(w), str(zone), int(device)))
        return out


def daily_partials(
    reader: PresenceReader,
    areas: Sequence[AreaRef] | AreasOf,
    local_date: date,
    tz: str,
    k: int,
    released: Sequence[str] | None = None,
) -> dict[str, DayCounts]:
    """Exact daily partials of ``local_date`` in zone ``tz``: for the area ids ``released``
    (default: every area of ``areas`` in ``tz``), ranking each pseudonym-day over ``areas`` (so its
    pairs elsewhere count against its K)."""
    start, end = read_span(local_date, tz)
    days = range(start // S_PER_DAY, (end - 1) // S_PER_DAY + 1)
    every = [a for d in days for a in (areas(d) if callable(areas) else areas)]
    rows = reader.rows(start, end, sorted({a.zone_id for a in every}))
    found = visits(rows, areas, k)
    window_s = reader.settings.window_s
    ids = released if released is not None else sorted({a.area_id for a in every if a.timezone == tz})
    return {i: day_counts(found.get((i, local_date), []), window_s) for i in ids}
