"""The evaluator: a release-feed follower that steps every subscription's state machine per window.

Per window it reads each subscription's state before the window (``alert_states``), steps it with
the zone's released estimate and σ (a crowd metric: ``release_zones``; ``traffic_speed``: the mean
speed of the released speed bins of the cells covering the zone, alerts/speed.py), and writes the
changed states, the events and their webhook queue rows, all keyed so that evaluating the window
again writes the same rows (ReplacingMergeTree).
The follower commits its cursor after the handler returns, so a crash at any instant repeats at most
one window, which changes nothing: no event is lost or duplicated.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

import h3

from alerts.events import DELIVERY_COLUMNS, EVENT_COLUMNS
from alerts.levels import BELOW_METRICS, State, Transition, event_id, step
from alerts.metrics import EVENTS
from alerts.speed import covering_cells, decisive, zone_speed
from alerts.subscriptions import Subscription, SubscriptionStore
from hexpulse.logs import log_event
from hexpulse.store.pool import ClickHousePool
from hexpulse.times import epoch_s, naive_utc
from hexpulse.zones import Zone, zone_versions, zones_in_effect
from releases.models import Window
from releases.traffic import CellBins, window_bins_blocking
from releases.zones import ZonePoint, window_zones

log = logging.getLogger("hexpulse.alerts.evaluator")
Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Reading:
    """A subscription's value in one window, in the metric's unit (persons, persons/m², km/h)."""

    value: float
    sigma: float


class Evaluator:
    """Handler of the ``alerts`` follower. ``expiry_s``: how long a webhook is retried;
    ``traffic_res``: the resolution of the released speed bins (``traffic_resolution``)."""

    def __init__(self, pool: ClickHousePool, expiry_s: float, traffic_res: int = 8) -> None:
        self._pool = pool
        self._subs = SubscriptionStore(pool)
        self._expiry_s = expiry_s
        self._traffic_res = traffic_res
        self._areas: dict[tuple[str, int], float] = {}
        self._covering: dict[tuple[str, int], tuple[int, ...]] = {}

    def _area_m2(self, zone_id: str, version: int) -> float:
        key = (zone_id, version)
        if key not in self._areas:
            rows = self._pool.query(*zone_versions([key]))
            cells = Zone.from_row(rows[0]).cells if rows else ()
            self._areas[key] = sum(h3.cell_area(h3.int_to_str(c), "m^2") for c in cells)
        return self._areas[key]

    def reading(self, sub: Subscription, point: ZonePoint, zone_id: str) -> Reading:
        """The released zone estimate in the subscription's metric (unbiased, with its σ)."""
        if sub.metric == "crowd_density":
            area = self._area_m2(zone_id, point.version)
            scale = sub.expansion / area if area > 0 else 0.0
            return Reading(point.count_est * scale, point.count_sigma * scale)
        return Reading(point.count_est * sub.expansion, point.count_sigma * sub.expansion)

    def _speeds(self, subs: list[Subscription], start: datetime) -> dict[str, Reading]:
        """Each speed subscription's reading in the window starting at ``start``, for those that
        have one: the zone version in effect then, its covering cells' bins pooled, and a σ small
        enough to decide (:func:`alerts.speed.decisive`); the others are left out (no decision)."""
        speed_subs = [s for s in subs if s.metric in BELOW_METRICS]
        if not speed_subs:
            return {}
        bins: dict[int, CellBins] = window_bins_blocking(self._pool, start, self._traffic_res)
        if not bins:
            return {}
        zones = {z.zone_id: z for z in map(Zone.from_row, self._pool.query(*zones_in_effect(start)))}
        out: dict[str, Reading] = {}
        for sub in speed_subs:
            zone = zones.get(sub.zone_id)
            if zone is None:
                continue
            key = (zone.zone_id, zone.version)
            if key not in self._covering:
                self._covering[key] = covering_cells(zone.cells, self._traffic_res)
            speed = zone_speed(bins, self._covering[key])
            if speed is not None and decisive(sub.rule, speed.sigma_kmh):
                out[sub.subscription_id] = Reading(speed.speed_kmh, speed.sigma_kmh)
        return out

    def _states_before(self, start: datetime) -> dict[str, State]:
        rows = self._pool.query(
            "SELECT subscription_id, argMax(level, window_start), argMax(direction, window_start),"
            " argMax(streak, window_start), argMax(target, window_start) FROM alert_states FINAL"
            " WHERE window_start < toDateTime(%(w)s) GROUP BY subscription_id",
            {"w": epoch_s(start)},
        )
        return {r[0]: State(int(r[1]), int(r[2]), int(r[3]), int(r[4])) for r in rows}

    def handle(self, window: Window) -> None:
        """Evaluate every live subscription at ``window`` (idempotent per window)."""
        started = time.perf_counter()
        subs = self._subs.active()
        points = window_zones(self._pool, window.start)
        speeds = self._speeds(subs, window.start)
        before = self._states_before(window.start)
        w = epoch_s(window.start)
        states, events, deliveries = [], [], []
        for sub in subs:
            point = points.get(sub.zone_id)
            if sub.metric in BELOW_METRICS:
                speed = speeds.get(sub.subscription_id)
                if speed is None:
                    continue  # no reading (too few moving devices to tell a speed): nothing to decide
                r = speed
            elif point is None:
                continue  # the zone was not measured in this window: nothing to decide
            else:
                r = self.reading(sub, point, sub.zone_id)
            old = before.get(sub.subscription_id, State())
            new, change = step(sub.rule, old, r.value, r.sigma)
            if new != old:
                states.append((sub.subscription_id, naive_utc(w), new.level, new.direction, new.streak,
                               new.target))  # fmt: skip
            if change is not None:
                events.append(self._event(sub, window, r, change))
                if sub.webhook_url:
                    # Expiry counts from the window's release, so a restart does not extend it.
                    t0 = window.released_at.timestamp()
                    deliveries.append((sub.subscription_id, events[-1][0], naive_utc(w), "pending", 0, t0,
                                       t0 + self._expiry_s, 0, "", 0))  # fmt: skip
        # Events and the queue first, states last: a crash in between re-derives the same rows.
        if events:
            self._pool.insert(f"INSERT INTO alert_events ({EVENT_COLUMNS}) VALUES", events)
            for e in events:
                EVENTS.labels(str(e[5])).inc()
        if deliveries:
            self._pool.insert(f"INSERT INTO alert_deliveries ({DELIVERY_COLUMNS}) VALUES", deliveries)
        if states:
            self._pool.insert("INSERT INTO alert_states (subscription_id, window_start, level, direction,"
                              " streak, target) VALUES", states)  # fmt: skip
        log_event(log, "alerts window evaluated", logging.DEBUG, window_start=w, subscriptions=len(subs),
                  events=len(events), ms=round((time.perf_counter() - started) * 1000, 2))  # fmt: skip

    @staticmethod
    def _event(sub: Subscription, window: Window, r: Reading, change: Transition) -> tuple[object, ...]:
        levels = sub.rule.levels
        name = ["normal", *(lv.name for lv in levels)]
        # The evidence names the threshold crossed: the new level's when raising, the old one's clear value.
        up = change.after > change.before
        thr = levels[change.after - 1].threshold if up else levels[change.before - 1].clear
        return (event_id(sub.subscription_id, epoch_s(window.start), change), sub.subscription_id, sub.owner,
                sub.zone_id, naive_utc(epoch_s(window.start)), change.kind, name[change.before],
                name[change.after], sub.metric, r.value, r.sigma, r.value - Z95 * r.sigma,
                r.value + Z95 * r.sigma, thr, sub.rule.beyond(r.value, r.sigma, thr),
                naive_utc(epoch_s(window.released_at)))  # fmt: skip
