"""The standard error of a sum of released estimates, computed from the plan it was drawn under.

Released cells are reconciled across resolutions, so their errors are correlated: Σσ² of the cells
is not the variance of their sum. The exact variance depends only on the release plan (which levels
are measured, with which noise) and the service area's tree (privacy.release.covariance), so it is
computed here from the plan's JSON (kept on ``release_intents``), never from data. Plans, trees and
variances are cached per process: a released plan never changes.

A window whose plan is not on record (rows released before plans were, or a plan whose tree is not
this service area's) falls back to Σσ², and the answer says so (``sigma_method``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import anyio.to_thread
import numpy as np

from hexpulse.service_area import ServiceArea, load_service_area
from hexpulse.settings import Settings
from privacy.release.consistency import Hierarchy, build_hierarchy
from privacy.release.covariance import level_variances, selection_variance
from privacy.release.exceptions import ReleaseError
from privacy.release.plans import PlanRecord, area_digest, record_from_json
from releases.cache import Lru
from releases.models import WindowSum
from releases.reader import ReleaseReader

Selection = Mapping[int, frozenset[int]]  # resolution → cells (UInt64)
PLAN = "plan covariance"
INDEPENDENT = "independent cells (no recorded plan)"


@dataclass(frozen=True)
class _Known:
    """A plan this process can compute variances for: its tree and noise variance per level."""

    tree: Hierarchy
    variances: dict[int, float]


class SumVariance:
    """Variances (persons²) of sums of ``count_est`` over selections, per plan hash."""

    def __init__(self, settings: Settings, reader: ReleaseReader) -> None:
        self._settings = settings
        self._reader = reader
        self._area: ServiceArea | None = None
        self._trees: dict[tuple[int, ...], Hierarchy] = {}
        self._plans: dict[int, _Known | None] = {}
        self._variances = Lru(4096)

    def _tree(self, resolutions: tuple[int, ...]) -> Hierarchy:
        key = tuple(sorted(resolutions, reverse=True))
        tree = self._trees.get(key)
        if tree is None:
            if self._area is None:
                self._area = load_service_area(self._settings)
            tree = self._trees[key] = build_hierarchy(self._area, key)
        return tree

    def tree(self) -> Hierarchy:
        """The service area's tree at the configured released resolutions."""
        return self._tree(tuple(self._settings.release_resolutions))

    async def _known(self, plan: int) -> _Known | None:
        if plan in self._plans:
            return self._plans[plan]
        known: _Known | None = None
        text = await self._reader.plan_json(plan) if plan else None
        if text is not None:
            try:
                record: PlanRecord | None = record_from_json(text)
            except ReleaseError:
                record = None
            if record is not None:
                tree = await anyio.to_thread.run_sync(self._tree, record.plan.resolutions)
                if area_digest(tree) == record.area:
                    known = _Known(tree, level_variances(record.plan, tree, "count"))
        self._plans[plan] = known
        return known

    async def variance(self, plan: int, selection: Selection) -> float | None:
        """Var of Σ count_est over ``selection`` under ``plan``; None if the plan is not on record."""
        known = await self._known(plan)
        if known is None:
            return None
        key = (plan, tuple(sorted((r, c) for r, c in selection.items() if c)))
        hit = self._variances.get(key)
        if hit is not None:
            return float(hit)
        idx = _indices(known.tree, selection)
        value = await anyio.to_thread.run_sync(selection_variance, known.tree, known.variances, idx)
        self._variances.put(key, value)
        return value

    async def sigma(self, row: WindowSum, selection: Selection) -> tuple[float, str]:
        """σ (persons) of one window's sum and how it was computed."""
        var = await self.variance(row.plan, selection) if row.one_plan else None
        if var is None:
            return row.independent_var**0.5, INDEPENDENT
        return var**0.5, PLAN


def _indices(tree: Hierarchy, selection: Selection) -> dict[int, np.ndarray]:
    """Selection → {level: indices in the tree} (cells outside the service area are dropped)."""
    out: dict[int, np.ndarray] = {}
    for res, cells in selection.items():
        if res not in tree.resolutions or not cells:
            continue
        k = tree.resolutions.index(res)
        level = tree.cells[k]
        want = np.array(sorted(cells), dtype=np.uint64)
        pos = np.minimum(np.searchsorted(level, want), level.size - 1)
        out[k] = pos[level[pos] == want].astype(np.int64)
    return out
