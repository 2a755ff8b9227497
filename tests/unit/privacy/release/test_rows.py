"""Rows written to release_cells: intervals contain the value, mean speed follows its null rule."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from hexpulse.service_area import load_service_area
from hexpulse.settings import load_settings
from privacy.release.budget import plan_from_settings
from privacy.release.consistency import build_hierarchy
from privacy.release.seeds import seeded_keys
from privacy.release.values import SPEED_MIN_MOVING_SIGMAS, cell_rows, release_values


def test_rows_cover_every_cell_with_sane_intervals_and_speeds() -> None:
    settings = load_settings()
    plan = plan_from_settings(settings)
    tree = build_hierarchy(load_service_area(settings), plan.resolutions)
    n = tree.sizes[0]
    crowd = np.zeros(n, dtype=np.int64)
    crowd[:50] = 3000  # 50 busy cells, all moving at 40 km/h; everything else empty
    exact = {"count": crowd, "moving": crowd.copy(), "speed": crowd * 40}
    rows: list[tuple[Any, ...]] = cell_rows(
        datetime(2030, 1, 1), tree, release_values(plan, tree, exact, seeded_keys(1)), 180, plan=7
    )
    assert {r[-1] for r in rows} == {7}  # every row names the plan it was drawn under
    assert len(rows) == sum(tree.sizes)
    assert {(r[1], r[2]) for r in rows} == {
        (res, int(c)) for res, cells in zip(tree.resolutions, tree.cells, strict=True) for c in cells
    }
    for r in rows:
        count, sigma, lo, hi, moving, m_sigma = r[3], r[4], r[5], r[6], r[7], r[8]
        assert count >= 0 and moving >= 0 and sigma > 0
        assert 0 <= lo <= count <= hi
        speed = r[11]
        if speed is None:
            continue
        assert moving >= SPEED_MIN_MOVING_SIGMAS * m_sigma  # the publication rule
        assert 0 <= r[12] <= speed <= r[13] <= 180
    busy = [r for r in rows if r[1] == 9 and r[3] > 2000]
    assert busy and all(r[11] is not None and abs(r[11] - 40) < 20 for r in busy)
    quiet = [r for r in rows if r[1] == 9 and r[3] == 0]
    assert quiet and all(r[11] is None for r in quiet)


def test_rows_carry_the_unbiased_estimates() -> None:
    settings = load_settings()
    plan = plan_from_settings(settings)
    tree = build_hierarchy(load_service_area(settings), plan.resolutions)
    crowd = np.zeros(tree.sizes[0], dtype=np.int64)
    crowd[:50] = 3000
    exact = {"count": crowd, "moving": crowd.copy(), "speed": crowd * 40}
    values = release_values(plan, tree, exact, seeded_keys(2))
    rows = cell_rows(datetime(2030, 1, 1), tree, values, 180, plan=7)
    n = tree.sizes[0]
    count_est = np.array([r[-3] for r in rows])
    moving_est = np.array([r[-2] for r in rows])
    np.testing.assert_array_equal(count_est[:n], values.metrics["count"].unconstrained[0])
    np.testing.assert_array_equal(moving_est[:n], values.metrics["moving"].unconstrained[0])
    assert (count_est < 0).any()  # unbiased: empty cells read below zero about half the time
    assert all(r[3] >= 0 for r in rows)  # the display value stays clipped
    # the estimates add up across resolutions (a coarse cell is the sum of its children)
    parents = np.bincount(tree.parent[0], weights=count_est[:n], minlength=tree.sizes[1])
    np.testing.assert_allclose(parents, count_est[n : n + tree.sizes[1]], atol=1e-6)
