"""Budget-first configuration: from the operator's daily ρ to one noise scale per release.

Privacy unit: a device-day (the pseudonym key rotates at 00:00 UTC, so days are unlinkable).
A device contributes to at most ``windows_per_device_day`` (W) windows a day and to at most
``cells_per_window`` (L) base cells per window (the aggregate layer enforces both). Each window
therefore gets ρ_day / W, split across metrics (count, moving, speed) and across the resolutions
that are *measured*; resolutions that are not measured are derived by summing children, which is
post-processing and costs nothing. zCDP composes additively, so the per-device-day spend is
W × Σ ρ(draw) ≤ ρ_day, refused otherwise.

The one budget plan (``HEXPULSE_BUDGET_PLAN``) splits ρ_day between *products*: ``cells`` (the
live map, split further by metric and resolution as above) and one ``zones.<set>`` per set of
registered zones, each a window product that gets share·ρ_day / W per window. A zone set is one
draw over its zones' totals; its zones are disjoint at the base resolution, so a device changes
one zone's total by at most L (L2 and L1 sensitivity L). The ``traffic`` product is one draw per
window of the moving devices per speed bin and cell at ``traffic_resolution`` (cells × bins): a
device-window has one speed, so it falls in one bin of each of its ≤ L base cells, and summed to
the coarser resolution it moves the vector by at most L in total — all in one entry when its cells
share a parent — so the draw takes sensitivity L (bound L over one entry; √L only if each entry
moved by at most 1, which summing children does not ensure). The shares add up to at most 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hexpulse.settings import Settings
from hexpulse.times import windows_per_day
from hexpulse.units import whole_kmh
from privacy.release.accounting import eps_from_rho
from privacy.release.exceptions import BudgetError
from privacy.release.mechanisms import Mechanism, NoiseParams, params_for_rho
from privacy.release.shares import CELLS, SLACK, TRAFFIC, ZONES_PREFIX, parse_plan, parse_shares

METRICS = ("count", "moving", "speed")



def speed_bound_kmh(speed_clamp_mps: float) -> int:
    """Largest whole km/h one moving device adds to a cell's speed_sum."""
    return whole_kmh(speed_clamp_mps)


@dataclass(frozen=True)
class Draw:
    """One noise draw family per window: (metric, resolution) with its parameters.

    ``rho`` is the zCDP cost of the draw to a device in the window; ``charge`` is the share of the
    device-day budget the ledger records per window (ρ·W / windows per day), so that the sum of
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

    @property
    def every_draw(self) -> tuple[Draw, ...]:
        """The cells' draws, then every zone set's, then the traffic draw."""
        return (*self.draws, *self.zone_draws, *((self.traffic_draw,) if self.traffic_draw else ()))

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
        without the ``zones.`` prefix: a set with no zones in the window draws nothing) and, if
        ``traffic`` and the plan funds it, the speed bins."""
        drawn = {ZONES_PREFIX + s for s in zone_sets}
        bins = self.traffic_draw.charge if traffic and self.traffic_draw else 0.0
        zones = sum(d.charge for d in self.zone_draws if d.metric in drawn)
        return sum(d.charge for d in self.draws) + zones + bins

    @property
    def traffic_mids_kmh(self) -> tuple[float, ...]:
        """Each speed bin's representative speed (km/h): the middle of its edges."""
        e = self.traffic_edges_kmh
        return tuple((a + b) / 2 for a, b in zip(e, e[1:], strict=False))

    def zone_draw(self, zone_set: str) -> Draw | None:
        """The draw of zone set ``zone_set`` (None: the plan gives the set no budget)."""
        return next((d for d in self.zone_draws if d.metric == ZONES_PREFIX + zone_set), None)

    @property
    def zone_sets(self) -> tuple[str, ...]:
        return tuple(d.metric.removeprefix(ZONES_PREFIX) for d in self.zone_draws)

    @property
    def rho_per_device_day(self) -> float:
        """Worst-case spend of one device-day: W windows × ρ per window."""
        return self.windows_per_device_day * self.rho_per_window

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
    others = [m for m in metrics if m != "count"]
    count_share = settings.budget_count_share if others else 1.0
    if others and count_share >= 1.0:
        raise BudgetError("budget_count_share must leave a share for the other released metrics")
    metric_shares = {"count": count_share} | {m: (1 - count_share) / len(others) for m in others}

    products = parse_plan(tuple(settings.budget_plan))
    per_day = windows_per_day(settings.window_s)
    w = settings.windows_per_device_day
    rho_window = settings.budget_rho_per_day / w * products[CELLS]
    bounds = {"count": 1, "moving": 1, "speed": speed_bound_kmh(settings.speed_clamp_mps)}
    draws: list[Draw] = []
    for metric in metrics:
        for res, share in sorted(res_shares.items(), reverse=True):
            target = rho_window * metric_shares[metric] * share
            # At the base a device moves L entries by at most `bound` each (L2 √L·bound). A coarser
            # level is a sum of base cells, and a device's L cells may share one parent: one entry
            # then moves by L·bound, so its L2 sensitivity is L·bound, not √L·bound.
            l_cells = settings.cells_per_window
            bound, entries = (bounds[metric], l_cells) if res == base else (bounds[metric] * l_cells, 1)
            try:
                params = params_for_rho(settings.noise_mechanism, bound, entries, target)
            except ValueError as exc:
                raise BudgetError(f"cannot derive noise for {metric} at resolution {res}: {exc}") from None
            rho = params.rho
            draws.append(Draw(metric, res, params, rho, rho * w / per_day))
    zone_draws: list[Draw] = []
    for product, share in products.items():
        if not product.startswith(ZONES_PREFIX) or share <= 0:
            continue
        target = settings.budget_rho_per_day / w * share
        # Disjoint zones: a device's L cells may all fall in one zone, so one entry moves by L.
        params = params_for_rho(settings.noise_mechanism, settings.cells_per_window, 1, target)
        zone_draws.append(Draw(product, base, params, params.rho, params.rho * w / per_day))
    traffic: Draw | None = None
    edges: tuple[float, ...] = ()
    if products.get(TRAFFIC, 0.0) > 0:
        # The bins are summed from the base cells' exact bins, so any resolution up to the base
        # can be measured whichever density resolutions are released.
        if settings.traffic_resolution > base:
            raise BudgetError(
                f"HEXPULSE_TRAFFIC_RESOLUTION {settings.traffic_resolution} is finer than the base "
                f"resolution {base}, so the speed bins the budget plan funds cannot be measured"
            )
        target = settings.budget_rho_per_day / w * products[TRAFFIC]
        params = params_for_rho(settings.noise_mechanism, settings.cells_per_window, 1, target)
        traffic = Draw(TRAFFIC, settings.traffic_resolution, params, params.rho, params.rho * w / per_day)
        low = round(settings.moving_speed_mps * 3.6, 3)
        cap = float(speed_bound_kmh(settings.speed_clamp_mps))
        edges = (low, *map(float, settings.traffic_speed_edges_kmh), cap)
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
        zone_draws=tuple(zone_draws),
        shares=tuple(products.items()),
        traffic_draw=traffic,
        traffic_edges_kmh=edges,
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
}


def plan_rows(plan: ReleasePlan) -> list[dict[str, Any]]:
    """The budget plan as ``GET /v1/privacy`` publishes it: one row per product with its share, the
    ρ (zCDP) and ε (zCDP conversion at the plan's δ) per device-day it costs alone, and σ (devices)
    of one released count: the base-resolution count for ``cells``, one zone for a zone set, one
    (cell, bin) entry for ``traffic``."""
    rows: list[dict[str, Any]] = []
    w = plan.windows_per_device_day
    for product, share in plan.shares:
        if product == CELLS:
            draws: tuple[Draw, ...] = plan.draws
            base = plan.measured("count").get(plan.base_resolution)
            sigma = base.params.sigma if base else None
            res = ", ".join(map(str, plan.resolutions))
            what = _WHAT[CELLS].format(res=res, metrics=", ".join(plan.metrics))
        elif product == TRAFFIC:
            draws = (plan.traffic_draw,) if plan.traffic_draw else ()
            sigma = plan.traffic_draw.params.sigma if plan.traffic_draw else None
            e = plan.traffic_edges_kmh
            bins = ", ".join(f"{a:g}–{b:g}" for a, b in zip(e, e[1:], strict=False))
            res_t = plan.traffic_draw.res if plan.traffic_draw else "-"
            what = _WHAT[TRAFFIC].format(bins=bins, res=res_t)
        else:
            zone = plan.zone_draw(product.removeprefix(ZONES_PREFIX))
            draws = (zone,) if zone else ()
            sigma = zone.params.sigma if zone else None
            what = _WHAT[ZONES_PREFIX].format(set=product.removeprefix(ZONES_PREFIX))
        rho = w * sum(d.rho for d in draws)
        rows.append({
            "product": product, "per": "window", "share": share, "rho_per_device_day": rho,
            "epsilon_per_device_day": eps_from_rho(rho, plan.delta), "sigma": sigma, "what": what,
        })  # fmt: skip
    return rows


def unallocated_share(plan: ReleasePlan) -> float:
    """The share of ρ_day no product spends (≥ 0)."""
    return max(0.0, 1.0 - sum(share for _, share in plan.shares))
