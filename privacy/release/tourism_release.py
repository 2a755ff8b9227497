"""The daily tourism release: per (time zone, local day), once, DP visitors and dwell histogram of
every tourism area into ``release_tourism_daily`` and ``release_tourism_days`` (migration 0016).

A local day of zone ``tz`` is due once it has ended, ``lateness`` has passed, and every window of
it is public (``release_windows``; a window is public only when complete, so its presence rows are
the counted closings'; a day the pipeline did not cover whole, such as the one it started in, is
never released). Its areas are those registered, not deleted, at the local day's start;
each pseudonym-day is ranked over the areas registered at its own 00:00 UTC (deleted ones
included), so every release touching a UTC day ranks its pseudonyms alike
(privacy/release/tourism_daily.py: the K bound holds across releases).

Noise once. The noise of a day's two vectors (visitors per area; dwell bins per area) is keyed by
the release-noise key of the UTC day in which the local day ends, the zone, the date, the day's
plan hash and a digest of the exact input (as :mod:`privacy.release.seeds` does for windows), so a
rerun after a crash at any point redraws the very same values. The ledger gets, before anything is
published, one *draw* row per vector (ρ 0; window_start = the local day's start; fingerprint of
the noisy integers) and one *charge* row per product and UTC day the local day touches (window_start
= that day's 00:00, fingerprint = :func:`measurement_hash`, ρ = the product's daily ρ): every
release of the same UTC day writes the same charge key, which the spend counts once. The release is refused
(DoubleDrawError) if the ledger already holds another draw of that day; then metric rows, then the
day rows (readers serve a day only once its row exists).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import orjson
from clickhouse_driver import Client

from hexpulse.logs import log_event
from hexpulse.settings import Settings
from hexpulse.times import S_PER_DAY, naive_utc
from privacy.keys.keyring import PURPOSE_RELEASE_NOISE, KeyRing
from privacy.release.budget import Draw, ReleasePlan
from privacy.release.exceptions import DoubleDrawError
from privacy.release.ledger import fingerprint, write_ledger
from privacy.release.mechanisms import Z95, add_noise
from privacy.release.seeds import DrawKeys
from privacy.release.shares import TOURISM_DWELL, TOURISM_VISITORS
from privacy.release.tourism_daily import (
    DWELL_EDGES_MIN,
    DWELL_METRICS,
    AreaRef,
    PresenceReader,
    daily_partials,
    local_date_of,
    local_day_bounds,
)

log = logging.getLogger(__name__)
ROW_RULES = 1  # version of what a day's rows mean; part of the plan hash


@dataclass(frozen=True)
class DayRelease:
    """What one (zone, local day) released: per area, visitors then the four dwell bins as
    (estimate, σ) pairs (devices; the estimate is unbiased, never clipped)."""

    timezone: str
    local_date: date
    plan: int
    values: dict[str, list[tuple[float, float]]]


def _hash64(doc: object) -> int:
    digest = hashlib.blake2b(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def measurement_hash(plan: ReleasePlan) -> int:
    """64-bit hash of the daily measurement a UTC day is charged for (the daily draws and K): the
    charge rows' fingerprint, equal in every release that touches the day."""
    draws = [[d.metric, d.params.mechanism, d.params.entries, d.params.scale] for d in plan.daily_draws]
    return _hash64({"draws": draws, "k": plan.tourism_max_areas, "rules": ROW_RULES})


def day_plan_hash(plan: ReleasePlan, window_s: int, areas: list[AreaRef]) -> int:
    """64-bit hash of what a day's release depends on besides the data: the daily draws, K, the
    window length, the dwell edges, the areas released and the row rules."""
    doc = {
        "draws": [[d.metric, d.params.mechanism, d.params.entries, d.params.scale] for d in plan.daily_draws],
        "k": plan.tourism_max_areas, "window_s": window_s, "dwell_edges_min": list(DWELL_EDGES_MIN),
        "areas": [[a.area_id, a.zone_id] for a in areas], "rules": ROW_RULES,
    }  # fmt: skip
    return _hash64(doc)


class TourismReleaser:
    """Releases due tourism days of one deployment (pipeline user: reads the exact database)."""

    def __init__(self, settings: Settings, client: Client, ring: KeyRing, plan: ReleasePlan) -> None:
        self.settings = settings
        self.client = client
        self.ring = ring
        self.plan = plan
        self.db = settings.clickhouse_database
        self.reader = PresenceReader(settings, client)
        self.visitors = plan.daily_draw(TOURISM_VISITORS)
        self.dwell = plan.daily_draw(TOURISM_DWELL)
        self._as_of: dict[int, list[tuple[AreaRef, bool]]] = {}

    @property
    def funded(self) -> bool:
        return self.visitors is not None and self.dwell is not None

    def areas_as_of(self, at_s: int) -> list[tuple[AreaRef, bool]]:
        """Every area as registered before ``at_s`` (epoch s): (area, deleted), newest revision."""
        got = self._as_of.get(at_s)
        if got is None:
            rows = self.client.execute(
                "SELECT area_id, argMax(zone_id, revision), argMax(timezone, revision), "
                f"argMax(deleted, revision) FROM {self.db}.tourism_areas WHERE revision < %(ns)s "
                "GROUP BY area_id ORDER BY area_id",
                {"ns": at_s * 1_000_000_000},
            )
            got = [(AreaRef(str(a), str(z), str(tz)), bool(d)) for a, z, tz, d in rows]
            if at_s < time.time() - 60:  # the past only ever gains revisions written later
                self._as_of[at_s] = got
        return got

    def _ranking(self, day: int) -> list[AreaRef]:
        return [a for a, _ in self.areas_as_of(day * S_PER_DAY)]

    def public_windows(self, start_s: int, end_s: int) -> int:
        """How many windows starting in ``[start_s, end_s)`` are public."""
        ((n,),) = self.client.execute(
            f"SELECT uniqExact(window_start) FROM {self.db}.release_windows "
            "WHERE window_start >= %(a)s AND window_start < %(b)s",
            {"a": naive_utc(start_s), "b": naive_utc(end_s)},
        )
        return int(n)

    def released(self, tz: str, local_date: date) -> set[str]:
        rows = self.client.execute(
            f"SELECT area_id FROM {self.db}.release_tourism_days FINAL "
            "WHERE local_date = %(d)s AND timezone = %(tz)s",
            {"d": local_date, "tz": tz},
        )
        return {str(r[0]) for r in rows}

    def due(self, now_s: int) -> list[tuple[str, date]]:
        """(zone, local date) pairs ready and not yet released, oldest first, over the last days
        the noise keys still cover."""
        if not self.funded:
            return []
        out = []
        zones = sorted({a.timezone for a, deleted in self.areas_as_of(now_s) if not deleted})
        oldest = self.ring.oldest_allowed() * S_PER_DAY
        for tz in zones:
            today = local_date_of(now_s, tz)
            for back in range(self.settings.key_retention_days + 1, 0, -1):
                day = today - timedelta(days=back)
                start, end = local_day_bounds(day, tz)
                if end - 1 < oldest or end + self.settings.lateness_s > now_s:
                    continue
                if self.public_windows(start, end) < (end - start) // self.settings.window_s:
                    continue  # a window of the day is not public (yet, or ever: a partial day)
                areas = self._released_areas(tz, start)
                if areas and not {a.area_id for a in areas} <= self.released(tz, day):
                    out.append((tz, day))
        return sorted(out, key=lambda p: local_day_bounds(p[1], p[0])[1])

    def _released_areas(self, tz: str, start_s: int) -> list[AreaRef]:
        return [a for a, deleted in self.areas_as_of(start_s) if not deleted and a.timezone == tz]

    def release_day(self, tz: str, local_date: date, now_s: int | None = None) -> DayRelease:
        """Draw (or redraw identically) and publish one (zone, local day)."""
        if self.visitors is None or self.dwell is None:
            raise ValueError("the budget plan funds no tourism.visitors and tourism.dwell")
        start, end = local_day_bounds(local_date, tz)
        areas = self._released_areas(tz, start)
        ids = [a.area_id for a in areas]
        k = self.plan.tourism_max_areas
        exact = daily_partials(self.reader, self._ranking, local_date, tz, k, released=ids)
        plan_hash = day_plan_hash(self.plan, self.settings.window_s, areas)
        v_in = np.array([exact[i].visitors for i in ids], np.int64)
        d_in = np.array([exact[i].dwell for i in ids], np.int64).reshape(-1)
        keys = self._keys(tz, local_date, end, plan_hash, v_in, d_in)
        v_out = add_noise(v_in, self.visitors.params, keys.key(TOURISM_VISITORS, 0))
        d_out = add_noise(d_in, self.dwell.params, keys.key(TOURISM_DWELL, 0))
        self._ledger(tz, start, end, plan_hash, {TOURISM_VISITORS: v_out, TOURISM_DWELL: d_out})
        sigmas = (self.visitors.params.sigma, self.dwell.params.sigma)
        values = self._write(tz, local_date, (start, end), plan_hash, ids, (v_out, d_out), sigmas, now_s)
        log_event(log, "tourism day released", timezone=tz, local_date=local_date.isoformat(), areas=len(ids))
        return DayRelease(tz, local_date, plan_hash, values)

    def _keys(self, tz: str, day: date, end: int, plan: int, v: np.ndarray, d: np.ndarray) -> DrawKeys:
        h = hashlib.blake2b(digest_size=32, person=b"hexpulse-tourism")
        h.update(np.ascontiguousarray(v, dtype="<i8").tobytes() + b"|")
        h.update(np.ascontiguousarray(d, dtype="<i8").tobytes())
        root = self.ring.derive(PURPOSE_RELEASE_NOISE, (end - 1) // S_PER_DAY)
        context = b"tourism|tz=%s|date=%s|plan=%016x|input=%s" % (
            tz.encode(), day.isoformat().encode(), plan, h.hexdigest().encode())  # fmt: skip
        return DrawKeys(root, context)

    def _ledger(self, tz: str, start: int, end: int, plan: int, noisy: dict[str, np.ndarray]) -> None:
        draws: dict[str, Draw] = {d.metric: d for d in self.plan.daily_draws}
        at = naive_utc(start)
        stored = self.client.execute(
            f"SELECT metric, groupUniqArray(fingerprint) FROM {self.db}.release_ledger "
            "WHERE window_start = %(w)s AND metric IN %(m)s GROUP BY metric",
            {"w": at, "m": tuple(f"{m}@{tz}" for m in noisy)},
        )
        mine = {f"{m}@{tz}": fingerprint(v) for m, v in noisy.items()}
        for metric, prints in stored:
            if {int(p) for p in prints} - {mine[str(metric)]}:
                raise DoubleDrawError(
                    f"the tourism day starting {at:%Y-%m-%d %H:%M} UTC ({tz}) already has another draw "
                    f"of {metric} (the exact input or the areas changed?); not publishing it"
                )
        who, now, charged = "tourism", naive_utc(int(time.time())), measurement_hash(self.plan)
        rows: list[tuple[object, ...]] = []
        for metric, v in noisy.items():
            p = draws[metric].params
            rows.append((at.date(), at, 0, f"{metric}@{tz}", plan, fingerprint(v), p.mechanism,
                         p.sensitivity, p.scale, 0.0, who, now))  # fmt: skip
            for day in range(start // S_PER_DAY, (end - 1) // S_PER_DAY + 1):
                d0 = naive_utc(day * S_PER_DAY)
                rows.append((d0.date(), d0, 0, metric, charged, charged, p.mechanism, p.sensitivity,
                             p.scale, draws[metric].charge, who, now))  # fmt: skip
        write_ledger(self.client, self.db, rows)

    def _write(
        self, tz: str, day: date, bounds: tuple[int, int], plan: int, ids: list[str],
        noisy: tuple[np.ndarray, np.ndarray], sigmas: tuple[float, float], now_s: int | None,
    ) -> dict[str, list[tuple[float, float]]]:  # fmt: skip
        """Metric rows, then the day rows; returns per area the (estimate, σ) pairs written."""
        (v, d), (sv, sd), (start, end) = noisy, sigmas, bounds
        rows: list[tuple[object, ...]] = []
        values: dict[str, list[tuple[float, float]]] = {}
        for i, area in enumerate(ids):
            mine = [(float(v[i]), sv)] + [(float(x), sd) for x in d[4 * i : 4 * i + 4].tolist()]
            values[area] = mine
            for metric, (est, sigma) in zip(("visitors", *DWELL_METRICS), mine, strict=True):
                rows.append((area, day, metric, est, sigma, est - Z95 * sigma, est + Z95 * sigma,
                             max(0, round(est)), plan))  # fmt: skip
        if rows:
            self.client.execute(
                f"INSERT INTO {self.db}.release_tourism_daily (area_id, local_date, metric, estimate, "
                "sigma, lo, hi, display, plan) VALUES",
                rows,
            )
            released_at = naive_utc(now_s if now_s is not None else int(time.time()))
            k = self.plan.tourism_max_areas
            self.client.execute(
                f"INSERT INTO {self.db}.release_tourism_days (area_id, local_date, timezone, day_start, "
                "day_end, k_areas, plan, released_at) VALUES",
                [(a, day, tz, naive_utc(start), naive_utc(end), k, plan, released_at) for a in ids],
            )
        return values

    def run_once(self, now_s: int | None = None) -> int:
        """Release every due day; return how many (zone, local day) pairs were published."""
        now = now_s if now_s is not None else int(datetime.now(UTC).timestamp())
        n = 0
        for tz, day in self.due(now):
            try:
                self.release_day(tz, day)
                n += 1
            except DoubleDrawError as exc:
                log_event(log, "tourism day not released", logging.ERROR, reason=str(exc))
        return n
