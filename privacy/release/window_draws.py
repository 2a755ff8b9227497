"""Every window draw's sensitivity and noise, from its product's share of ρ.

Each window product of the budget plan spends ``share · ρ_day / W`` (zCDP) per window, where W is
the number of windows of a device-day the product can count it in: ``windows_per_device_day`` for
the cells and zones, the traffic bound W_t (``Settings.traffic_window_bound``: a device-day's first
W_t moving windows, :mod:`privacy.release.traffic_bound`) for ``traffic`` and ``traffic.<set>``
(:mod:`privacy.release.budget` turns the parameters into ledger charges).

- ``cells``: split by metric (``budget_count_share``) and measured resolution; at the base a
  device moves L entries by at most ``bound`` each (L2 √L·bound); a coarser level is a sum of base
  cells whose parents a device's L cells may share, so one entry moves by L·bound.

Every other draw has bound L (``cells_per_window``) over one entry, because summing a device's
≤ L base cells into a coarser unit may put all of them in one entry:

- ``zones.<set>``: one zone set's devices per zone. Zones of a set are disjoint at the base
  resolution; a device's L cells may all fall in one zone.
- ``traffic``: moving devices per (cell, speed bin) at the traffic resolution. A device-window has
  one speed, so one bin of each of its ≤ L base cells; summed to the traffic resolution, all of
  them may land in one entry.
- ``traffic.<set>``: moving devices per (zone, speed bin) of one zone set (road corridors): the
  zones are disjoint, the device has one bin, so its L cells move one (zone, bin) entry by ≤ L
  (or up to L entries by 1 each: L2 ≤ L either way). σ = L / √(2 ρ_share,window) per entry, whatever
  the zone's size: a corridor pools many cells' devices under one draw's σ.

Pure: settings in, parameters out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hexpulse.settings import Settings
from hexpulse.units import whole_kmh
from privacy.release.exceptions import BudgetError
from privacy.release.mechanisms import NoiseParams, params_for_rho
from privacy.release.shares import TRAFFIC, TRAFFIC_PREFIX, ZONES_PREFIX, set_of

#: (product or metric, resolution, noise) of one window draw.
WindowDraw = tuple[str, int, NoiseParams]


def cell_draws(
    settings: Settings, metrics: Sequence[str], res_shares: Mapping[int, float], share: float
) -> list[WindowDraw]:
    """The cells' draws, metric-major, finest resolution first: ``share`` of ρ_day per window split
    between the metrics and the measured resolutions ``res_shares``."""
    others = [m for m in metrics if m != "count"]
    count_share = settings.budget_count_share if others else 1.0
    if others and count_share >= 1.0:
        raise BudgetError("budget_count_share must leave a share for the other released metrics")
    metric_shares = {"count": count_share} | {m: (1 - count_share) / len(others) for m in others}
    rho_window = settings.budget_rho_per_day / settings.windows_per_device_day * share
    bounds = {"count": 1, "moving": 1, "speed": whole_kmh(settings.speed_clamp_mps)}
    l_cells = settings.cells_per_window
    out: list[WindowDraw] = []
    for metric in metrics:
        for res, res_share in sorted(res_shares.items(), reverse=True):
            target = rho_window * metric_shares[metric] * res_share
            at_base = res == settings.base_resolution
            bound, entries = (bounds[metric], l_cells) if at_base else (bounds[metric] * l_cells, 1)
            try:
                params = params_for_rho(settings.noise_mechanism, bound, entries, target)
            except ValueError as exc:
                raise BudgetError(f"cannot derive noise for {metric} at resolution {res}: {exc}") from None
            out.append((metric, res, params))
    return out


def _params(settings: Settings, share: float, windows: int) -> NoiseParams:
    """Noise of a draw of bound L over one entry that spends ``share`` of ρ_day over the
    ``windows`` windows a device-day can be counted in."""
    target = settings.budget_rho_per_day / windows * share
    return params_for_rho(settings.noise_mechanism, settings.cells_per_window, 1, target)


def product_windows(settings: Settings, product: str) -> int:
    """How many windows of a device-day ``product`` can count the device in: W_t for the traffic
    products (speed bins), W for every other window product."""
    traffic = product == TRAFFIC or product.startswith(TRAFFIC_PREFIX)
    return settings.traffic_window_bound if traffic else settings.windows_per_device_day


def set_draws(settings: Settings, products: Mapping[str, float], prefix: str) -> list[WindowDraw]:
    """One draw per funded product ``<prefix><set>`` (``zones.`` or ``traffic.``), at the base
    resolution, in plan order."""
    return [
        (product, settings.base_resolution, _params(settings, share, product_windows(settings, product)))
        for product, share in products.items()
        if share > 0 and product.startswith(prefix) and set_of(product) is not None
    ]


def zone_draws(settings: Settings, products: Mapping[str, float]) -> list[WindowDraw]:
    """The ``zones.<set>`` draws: devices per zone."""
    return set_draws(settings, products, ZONES_PREFIX)


def zone_traffic_draws(settings: Settings, products: Mapping[str, float]) -> list[WindowDraw]:
    """The ``traffic.<set>`` draws: moving devices per (zone, speed bin)."""
    return set_draws(settings, products, TRAFFIC_PREFIX)


def traffic_draw(settings: Settings, products: Mapping[str, float]) -> WindowDraw | None:
    """The ``traffic`` draw at ``traffic_resolution`` (None: unfunded), or BudgetError when that
    resolution is finer than the base (the bins are summed from the base cells' exact bins)."""
    share = products.get(TRAFFIC, 0.0)
    if share <= 0:
        return None
    if settings.traffic_resolution > settings.base_resolution:
        raise BudgetError(
            f"HEXPULSE_TRAFFIC_RESOLUTION {settings.traffic_resolution} is finer than the base resolution "
            f"{settings.base_resolution}, so the speed bins the budget plan funds cannot be measured"
        )
    return (TRAFFIC, settings.traffic_resolution, _params(settings, share, settings.traffic_window_bound))


def speed_edges_kmh(settings: Settings) -> tuple[float, ...]:
    """The speed bins' edges (km/h): the moving threshold, the configured edges, the speed cap."""
    low = round(settings.moving_speed_mps * 3.6, 3)
    cap = float(whole_kmh(settings.speed_clamp_mps))
    return (low, *map(float, settings.traffic_speed_edges_kmh), cap)
