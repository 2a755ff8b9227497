"""The budget settings parsed: the budget plan's products and the cells' resolution shares.

``HEXPULSE_BUDGET_PLAN`` names *products* with a share of the device-day ρ: ``cells`` (the live
map), ``traffic`` (moving devices per speed bin and cell), ``zones.<set>`` (devices per zone of
one set of registered zones) and ``traffic.<set>`` (moving devices per speed bin and zone of one
set, e.g. road corridors), all per window, and the daily ``tourism.visitors`` and ``tourism.dwell``
(distinct visitors and the dwell histogram per tourism area and local day).
``HEXPULSE_BUDGET_RESOLUTION_SHARES``
splits the cells' share between the measured resolutions. Both are refused with one sentence
(:class:`BudgetError`) when malformed or when they spend more than the whole. Pure: no store, so
the API may use it to know the funded zone sets (:mod:`privacy.release.budget` derives the noise).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from privacy.release.exceptions import BudgetError

CELLS = "cells"
TRAFFIC = "traffic"
ZONES_PREFIX = "zones."
TRAFFIC_PREFIX = "traffic."
SET_PREFIXES = (ZONES_PREFIX, TRAFFIC_PREFIX)  # products that measure a zone set
TOURISM_VISITORS = "tourism.visitors"
TOURISM_DWELL = "tourism.dwell"
DAILY_PRODUCTS = (TOURISM_VISITORS, TOURISM_DWELL)
_SET_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

#: Measured default (benchmarks/bench_utility.py, PRIVACY.md "Where the budget goes"): the base
#: resolution and its parent are both measured and reconciled by least squares.
DEFAULT_RESOLUTION_SHARES: Mapping[int, float] = {0: 0.6, 1: 0.4}  # offsets below the base

SLACK = 1e-9  # relative float slack when comparing spends with the budget


def parse_shares(raw: tuple[str, ...], resolutions: tuple[int, ...], base: int) -> dict[int, float]:
    """``("9:0.6", "8:0.4")`` → {9: 0.6, 8: 0.4}; empty → the measured default for ``base``."""
    if not raw:
        shares = {base - off: s for off, s in DEFAULT_RESOLUTION_SHARES.items()}
        shares = {r: s for r, s in shares.items() if r in resolutions}
    else:
        shares = {}
        for item in raw:
            res_s, _, share_s = item.partition(":")
            try:
                shares[int(res_s)] = float(share_s)
            except ValueError:
                raise BudgetError(
                    f"HEXPULSE_BUDGET_RESOLUTION_SHARES item {item!r} is not 'resolution:share'"
                ) from None
    if any(r not in resolutions for r in shares):
        raise BudgetError(f"budget shares name resolutions {sorted(shares)} outside {list(resolutions)}")
    if base not in shares or shares[base] <= 0:
        raise BudgetError("the base resolution must receive a positive share of the budget")
    if any(not (s >= 0 and math.isfinite(s)) for s in shares.values()):
        raise BudgetError("budget shares must be finite and non-negative")
    total = sum(shares.values())
    if total > 1 + SLACK:
        raise BudgetError(f"budget shares across resolutions add up to {total:g}, more than the whole budget")
    return {r: s for r, s in shares.items() if s > 0}  # a sum below 1 leaves budget unspent


def parse_plan(raw: tuple[str, ...]) -> dict[str, float]:
    """``("cells:0.7", "zones.crowd:0.25")`` → {product: share of ρ_day}, or BudgetError.

    Products: ``cells`` (required, positive), ``traffic`` (the speed bins), ``zones.<set>`` and
    ``traffic.<set>`` (``<set>``: lower case letters, digits and ``_``, 32 at most) and the daily
    ``tourism.visitors`` and ``tourism.dwell``. Shares are finite, ≥ 0 and add up to at most 1."""
    shares: dict[str, float] = {}
    for item in raw:
        product, _, share_s = item.rpartition(":")
        product = product.strip()
        try:
            share = float(share_s)
        except ValueError:
            raise BudgetError(f"HEXPULSE_BUDGET_PLAN item {item!r} is not 'product:share'") from None
        if product not in (CELLS, TRAFFIC, *DAILY_PRODUCTS) and set_of(product) is None:
            raise BudgetError(
                f"HEXPULSE_BUDGET_PLAN names an unknown product {product!r}; products are 'cells', "
                "'traffic', 'zones.<set>', 'traffic.<set>' (set: lower case letters, digits, '_'), "
                "'tourism.visitors' and 'tourism.dwell'"
            )
        if product in shares:
            raise BudgetError(f"HEXPULSE_BUDGET_PLAN names {product!r} twice")
        if not (math.isfinite(share) and share >= 0):
            raise BudgetError(f"HEXPULSE_BUDGET_PLAN share of {product!r} must be a finite number >= 0")
        shares[product] = share
    if shares.get(CELLS, 0.0) <= 0:
        raise BudgetError("HEXPULSE_BUDGET_PLAN must give 'cells' (the live map) a positive share")
    total = sum(shares.values())
    if total > 1 + SLACK:
        raise BudgetError(f"HEXPULSE_BUDGET_PLAN shares add up to {total:g}, more than the whole budget")
    return shares


def set_of(product: str) -> str | None:
    """The zone set a ``zones.<set>`` or ``traffic.<set>`` product measures (None: another product)."""
    for prefix in SET_PREFIXES:
        name = product.removeprefix(prefix)
        if product.startswith(prefix) and _SET_NAME.match(name):
            return name
    return None


def funded_sets(raw: tuple[str, ...]) -> tuple[str, ...]:
    """The zone sets the budget plan ``raw`` gives a positive share, by ``zones.<set>`` or
    ``traffic.<set>`` (names without the prefix, in plan order, each once): the sets whose zones
    are registered and measured."""
    sets = (set_of(p) for p, s in parse_plan(raw).items() if s > 0)
    return tuple(dict.fromkeys(s for s in sets if s is not None))
