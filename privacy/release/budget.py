"""Budget-first configuration: from the operator's daily ρ to one noise scale per release.

Privacy unit: a device-day (the pseudonym key rotates at 00:00 UTC, so days are unlinkable).
A device contributes to at most ``windows_per_device_day`` (W) windows a day and to at most
``cells_per_window`` (L) base cells per window (the aggregate layer enforces both). Each window
therefore gets ρ_day / W, split across metrics (count, moving, speed) and across the resolutions
that are *measured*; resolutions that are not measured are derived by summing children, which is
post-processing and costs nothing. zCDP composes additively, so the per-device-day spend is
W × Σ ρ(draw) ≤ ρ_day, refused otherwise. The traffic products (speed bins) count a device-day in
its first W_t moving windows only (:mod:`privacy.release.traffic_bound`), so their draws get
share·ρ_day / W_t per window and cost W_t × ρ(draw) per device-day.

The one budget plan (``HEXPULSE_BUDGET_PLAN``) splits ρ_day between *products*: ``cells`` (the
live map, split further by metric and resolution as above), ``traffic`` (speed bins per cell),
one ``zones.<set>`` (devices per zone) and one ``traffic.<set>`` (speed bins per zone) per set
of registered zones, each a window product that gets share·ρ_day / W per window; every window
draw's sensitivity and noise is derived in :mod:`privacy.release.window_draws`. The shares add up
to at most 1.

The daily products ``tourism.visitors`` and ``tourism.dwell`` are measured once per UTC day, not
per window: a device-UTC-day keeps at most K (area, local day) pairs
(privacy/release/tourism_daily.py), and every release of a local day it touches is a piece of one
Gaussian measurement in which it moves ≤ K visitor entries by 1 (L2 √K), and ≤ K dwell bins by 1
(one bin per pair, L2 √K). Each costs its share·ρ_day per device-day, however many local days the
UTC day is split over.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hexpulse.settings import Settings
from hexpulse.times import windows_per_day
from hexpulse.units import whole_kmh
from privacy.release.accounting import eps_from_rho
from privacy.release.exceptions import BudgetError
from privacy.release.mechanisms import Mechanism, NoiseParams, params_for_rho
from privacy.release.shares import (
    CELLS,
    DAILY_PRODUCTS,
    SLACK,
    TRAFFIC,
    TRAFFIC_PREFIX,
    ZONES_PREFIX,
    parse_plan,
    parse_shares,
)
from privacy.release.window_draws import (
    cell_draws,
    product_windows,
    speed_edges_kmh,
    traffic_draw,
    zone_draws,
    zone_traffic_draws,
)

METRICS = ("count", "moving", "speed")



def speed_bound_kmh(speed_clamp_mps: float) -> int:
    """Largest whole km/h one moving device adds to a cell's speed_sum."""
    return whole_kmh(speed_clamp_mps)


@dataclass(frozen=True)
class Draw:
    """One noise draw family per window: (metric, resolution) with its parameters.

    ``rho`` is the zCDP cost of the draw to a device in the window; ``charge`` is the share of the
    device-day budget the ledger records per window (ρ·W / windows per day, W the windows of a
    device-day the draw's product can count it in: W_t for speed bins), so that the sum of
    ``charge`` over a day's windows is the per-device-day spend.
    """

    metric: str
    res: int
    params: NoiseParams
    rho: float
    charge: float


@dataclass(frozen=True)
class ReleasePlan:
    """What each window releases and what it costs. Units: ρ in zCDP, δ a probability."""

    mechanism: Mechanism
    rho_per_day: float
    delta: float
    window_s: int
    windows_per_day: int
    windows_per_device_day: int
    base_resolution: int
    resolutions: tuple[int, ...]  # finest first
    metrics: tuple[str, ...]
    draws: tuple[Draw, ...]  # the cells' draws
    #: One draw per zone set (metric ``zones.<set>``, res = base), drawn only in windows that
    #: have zones of the set.
    zone_draws: tuple[Draw, ...] = ()
    #: The budget plan: (product, share of ρ_day), in configuration order.
    shares: tuple[tuple[str, float], ...] = ()
    #: The speed-bin draw (metric ``traffic``, res = the traffic resolution), None if unfunded.
    traffic_draw: Draw | None = None
    #: The speed bins' edges (whole km/h): [low, e1), …, [e_last, cap], low = moving threshold.
    traffic_edges_kmh: tuple[float, ...] = ()
    #: One speed-bin draw per zone set (metric ``traffic.<set>``, res = base), drawn only in
    #: windows that have zones of the set and speed bins.
    zone_traffic_draws: tuple[Draw, ...] = ()
    #: The daily draws (metric ``tourism.visitors`` / ``tourism.dwell``, res 0): ρ and charge are
    #: per device-UTC-day. Not part of a window's draws nor of its plan record (so not compared).
    daily_draws: tuple[Draw, ...] = field(default=(), compare=False)
    #: K: the (area, local day) pairs one device-UTC-day counts in.
    tourism_max_areas: int = field(default=1, compare=False)
    #: W_t: the moving windows of a device-day the speed-bin draws count (0: W, as before the bound).
    traffic_windows: int = 0

    @property
    def traffic_window_bound(self) -> int:
        """W_t in effect for the speed-bin draws (W when the plan predates the bound)."""
        return self.traffic_windows or self.windows_per_device_day

    def windows_of(self, draw: Draw) -> int:
        """How many windows of a device-day ``draw`` can count a device in (W_t or W)."""
        bins = draw.metric == TRAFFIC or draw.metric.startswith(TRAFFIC_PREFIX)
        return self.traffic_window_bound if bins else self.windows_per_device_day

    def daily_draw(self, product: str) -> Draw | None:
        """The daily draw of ``product`` (None: unfunded)."""
        return next((d for d in self.daily_draws if d.metric == product), None)

    @property
    def every_draw(self) -> tuple[Draw, ...]:
        """The cells' draws, every zone set's, the traffic draw, then every zone set's speed bins."""
        traffic = (self.traffic_draw,) if self.traffic_draw else ()
        return (*self.draws, *self.zone_draws, *traffic, *self.zone_traffic_draws)

    @property
    def rho_per_window(self) -> float:
        """zCDP ρ of one window's draws (every zone set drawn) for a device present in it."""
        return sum(d.rho for d in self.every_draw)

    @property
    def rho_cells_per_window(self) -> float:
        """zCDP ρ of one window's cell draws alone (what an audit of the cells release claims)."""
        return sum(d.rho for d in self.draws)

    @property
    def charge_per_window(self) -> float:
        """The most one window charges each device-day (cells and every zone set)."""
        return sum(d.charge for d in self.every_draw)

    def window_charge(self, zone_sets: Iterable[str], traffic: bool = True) -> float:
        """What a window charges when it draws the cells, the zone sets ``zone_sets`` (names
        without a prefix: a set with no zones in the window draws nothing) and, if ``traffic``
        (the window has speed bins), the speed-bin draws the plan funds: ``traffic`` and the
        ``traffic.<set>`` of those sets."""
        sets = set(zone_sets)
        zones = sum(d.charge for d in self.zone_draws if d.metric.removeprefix(ZONES_PREFIX) in sets)
        bins = 0.0
        if traffic:
            bins = self.traffic_draw.charge if self.traffic_draw else 0.0
            bins += sum(d.charge for d in self.zone_traffic_draws
                        if d.metric.removeprefix(TRAFFIC_PREFIX) in sets)  # fmt: skip
        return sum(d.charge for d in self.draws) + zones + bins

    @property
    def funds_bins(self) -> bool:
        """Whether any draw reads the partials' speed bins (``traffic`` or a ``traffic.<set>``)."""
        return self.traffic_draw is not None or bool(self.zone_traffic_draws)

    def zone_traffic_draw(self, zone_set: str) -> Draw | None:
        """The speed-bin draw of zone set ``zone_set`` (None: no ``traffic.<set>`` budget)."""
        return next((d for d in self.zone_traffic_draws if d.metric == TRAFFIC_PREFIX + zone_set), None)

    def measures_set(self, zone_set: str) -> bool:
        """Whether the plan measures zone set ``zone_set`` at all (devices or speed bins)."""
        return self.zone_draw(zone_set) is not None or self.zone_traffic_draw(zone_set) is not None

    @property
    def traffic_mids_kmh(self) -> tuple[float, ...]:
        """Each speed bin's representative speed (km/h): the middle of its edges, except the top bin's.

        The top bin runs from the last configured edge to the speed cap (180 km/h by default), and
        its middle (125 km/h) put every car on an expressway flowing at 90 at 125 (found by the
        city benchmark, BENCHMARKS.md "City at real density, corridors"). It is represented as if it
        were as wide as the bin below it (70 + 30/2 = 85 km/h by default): public, data-independent
        and closer to the speeds that fill it, never above its own middle."""
        e = self.traffic_edges_kmh
        mids = [(a + b) / 2 for a, b in zip(e, e[1:], strict=False)]
        if len(e) >= 3:
            mids[-1] = min(mids[-1], e[-2] + (e[-2] - e[-3]) / 2)
        return tuple(mids)

    def zone_draw(self, zone_set: str) -> Draw | None:
        """The draw of zone set ``zone_set`` (None: the plan gives the set no budget)."""
        return next((d for d in self.zone_draws if d.metric == ZONES_PREFIX + zone_set), None)

    @property
    def zone_sets(self) -> tuple[str, ...]:
        return tuple(d.metric.removeprefix(ZONES_PREFIX) for d in self.zone_draws)

    @property
    def rho_per_device_day(self) -> float:
        """Worst-case spend of one device-day: per window draw, the windows it can count the device
        in (W, or W_t for speed bins) × its ρ, plus the daily draws."""
        window = sum(self.windows_of(d) * d.rho for d in self.every_draw)
        return window + sum(d.rho for d in self.daily_draws)

    @property
    def eps_per_device_day(self) -> float:
        return eps_from_rho(self.rho_per_device_day, self.delta)

    def measured(self, metric: str) -> dict[int, Draw]:
        """The draws of ``metric`` by resolution (resolutions absent here are derived)."""
        return {d.res: d for d in self.draws if d.metric == metric}


def plan_from_settings(settings: Settings) -> ReleasePlan:
    """Derive every noise scale from the daily budget, or refuse with one sentence."""
    metrics = tuple(settings.release_metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or "count" not in metrics:
        raise BudgetError(
            f"release metrics must include 'count' and be among {list(METRICS)}, not {list(metrics)}"
        )
    if "speed" in metrics and "moving" not in metrics:
        raise BudgetError("releasing 'speed' needs 'moving' too (mean speed = speed sum / moving count)")
    resolutions = tuple(sorted(set(settings.release_resolutions), reverse=True))
    base = settings.base_resolution
    res_shares = parse_shares(tuple(settings.budget_resolution_shares), resolutions, base)
    products = parse_plan(tuple(settings.budget_plan))
    per_day = windows_per_day(settings.window_s)
    w, w_t = settings.windows_per_device_day, settings.traffic_window_bound
    cells = cell_draws(settings, metrics, res_shares, products[CELLS])
    draws = [Draw(m, r, q, q.rho, q.rho * w / per_day) for m, r, q in cells]
    per_window = [*zone_draws(settings, products), *zone_traffic_draws(settings, products)]
    traffic_t = traffic_draw(settings, products)
    if traffic_t is not None:
        per_window.append(traffic_t)
    window = {m: Draw(m, r, q, q.rho, q.rho * product_windows(settings, m) / per_day)
              for m, r, q in per_window}  # fmt: skip
    funds_bins = any(m == TRAFFIC or m.startswith(TRAFFIC_PREFIX) for m in window)
    daily: list[Draw] = []
    for product in DAILY_PRODUCTS:
        share = products.get(product, 0.0)
        if share > 0:
            target = settings.budget_rho_per_day * share
            params = params_for_rho(settings.noise_mechanism, 1, settings.tourism_max_areas, target)
            daily.append(Draw(product, 0, params, params.rho, params.rho))
    plan = ReleasePlan(
        mechanism=settings.noise_mechanism,
        rho_per_day=settings.budget_rho_per_day,
        delta=settings.report_delta,
        window_s=settings.window_s,
        windows_per_day=per_day,
        windows_per_device_day=w,
        base_resolution=base,
        resolutions=resolutions,
        metrics=metrics,
        draws=tuple(draws),
        zone_draws=tuple(d for m, d in window.items() if m.startswith(ZONES_PREFIX)),
        shares=tuple(products.items()),
        traffic_draw=window.get(TRAFFIC),
        traffic_edges_kmh=speed_edges_kmh(settings) if funds_bins else (),
        zone_traffic_draws=tuple(d for m, d in window.items() if m.startswith(TRAFFIC_PREFIX)),
        daily_draws=tuple(daily),
        tourism_max_areas=settings.tourism_max_areas,
        # 0 unless the bound binds, so a plan without it keeps the record (and hash) it always had.
        traffic_windows=w_t if funds_bins and w_t < w else 0,
    )
    check_plan(plan)
    return plan


def check_plan(plan: ReleasePlan) -> None:
    """Refuse a plan whose per-device-day spend exceeds the daily budget."""
    if plan.rho_per_device_day > plan.rho_per_day * (1 + SLACK):
        raise BudgetError(
            f"the configured releases cost rho={plan.rho_per_device_day:.6g} per device-day, more than "
            f"the budget HEXPULSE_BUDGET_RHO_PER_DAY={plan.rho_per_day:g}"
        )


def fits_day(spent_charge: float, charge: float, rho_per_day: float) -> bool:
    """Whether one more window charging ``charge`` fits in a day already charged ``spent_charge``
    under the daily budget ``rho_per_day`` (all ρ in zCDP per device-day)."""
    return spent_charge + charge <= rho_per_day * (1 + SLACK)


_WHAT = {
    CELLS: "live map: devices per H3 cell every window at resolutions {res} ({metrics})",
    ZONES_PREFIX: "registered zones of set {set!r}: devices per zone every window, measured directly",
    TRAFFIC: "traffic: moving devices per speed bin ({bins} km/h) and H3 cell every window at "
    "resolution {res}",
    TRAFFIC_PREFIX: "traffic of zone set {set!r}: moving devices per speed bin ({bins} km/h) and zone "
    "every window, measured directly",
    "tourism.visitors": "tourism: distinct visitors per tourism area and local day (a device-day in "
    "at most {k} area-days)",
    "tourism.dwell": "tourism: visitors per dwell bin (<15 min, 15-60 min, 1-3 h, >=3 h) per tourism "
    "area and local day (a device-day in at most {k} area-days)",
}


def plan_rows(plan: ReleasePlan) -> list[dict[str, Any]]:
    """The budget plan as ``GET /v1/privacy`` publishes it: one row per product with its share, the
    ρ (zCDP) and ε (zCDP conversion at the plan's δ) per device-day it costs alone, and σ (devices)
    of one released count: the base-resolution count for ``cells``, one zone for a zone set, one
    (cell, bin) entry for ``traffic``, one (zone, bin) entry for ``traffic.<set>``."""
    rows: list[dict[str, Any]] = []
    for product, share in plan.shares:
        if product in DAILY_PRODUCTS:
            daily = plan.daily_draw(product)
            rho_d = daily.rho if daily else 0.0
            rows.append({
                "product": product, "per": "day", "share": share, "rho_per_device_day": rho_d,
                "epsilon_per_device_day": eps_from_rho(rho_d, plan.delta),
                "sigma": daily.params.sigma if daily else None,
                "what": _WHAT[product].format(k=plan.tourism_max_areas),
            })  # fmt: skip
            continue
        if product == CELLS:
            draws: tuple[Draw, ...] = plan.draws
            base = plan.measured("count").get(plan.base_resolution)
            sigma = base.params.sigma if base else None
            res = ", ".join(map(str, plan.resolutions))
            what = _WHAT[CELLS].format(res=res, metrics=", ".join(plan.metrics))
        elif product == TRAFFIC or product.startswith(TRAFFIC_PREFIX):
            one = plan.traffic_draw if product == TRAFFIC else plan.zone_traffic_draw(
                product.removeprefix(TRAFFIC_PREFIX))  # fmt: skip
            draws = (one,) if one else ()
            sigma = one.params.sigma if one else None
            e = plan.traffic_edges_kmh
            bins = ", ".join(f"{a:g}–{b:g}" for a, b in zip(e, e[1:], strict=False))
            what = _WHAT[TRAFFIC].format(bins=bins, res=one.res if one else "-") if product == TRAFFIC else \
                _WHAT[TRAFFIC_PREFIX].format(set=product.removeprefix(TRAFFIC_PREFIX), bins=bins)
        else:
            zone = plan.zone_draw(product.removeprefix(ZONES_PREFIX))
            draws = (zone,) if zone else ()
            sigma = zone.params.sigma if zone else None
            what = _WHAT[ZONES_PREFIX].format(set=product.removeprefix(ZONES_PREFIX))
        rho = sum(plan.windows_of(d) * d.rho for d in draws)
        rows.append({
            "product": product, "per": "window", "share": share, "rho_per_device_day": rho,
            "epsilon_per_device_day": eps_from_rho(rho, plan.delta), "sigma": sigma, "what": what,
        })  # fmt: skip
    return rows


def unallocated_share(plan: ReleasePlan) -> float:
    """The share of ρ_day no product spends (≥ 0)."""
    return max(0.0, 1.0 - sum(share for _, share in plan.shares))
