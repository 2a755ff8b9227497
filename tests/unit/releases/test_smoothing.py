"""The per-cell local-level filter: what it averages, what it follows, and what it reads."""

from __future__ import annotations

import math
from dataclasses import fields

import numpy as np
import pytest

from releases.models import CellRow
from releases.smoothing import SmoothingParams, cell_estimate, local_level, smooth

FLAT = SmoothingParams(windows=10, process_abs=0.0, process_rel=0.0, jump_z=math.inf)


def row(count: int, sigma: float) -> CellRow:
    known = {"count": count, "count_sigma": sigma, "moving": 0, "moving_sigma": 1.0}
    # Fields added later (the unbiased estimates) get the count itself, so the accessor may read either.
    values = {
        f.name: known.get(f.name, float(count) if f.name.endswith("_est") else 0.0) for f in fields(CellRow)
    }
    return CellRow(**values)  # type: ignore[arg-type]


def test_without_process_noise_it_is_the_inverse_variance_mean() -> None:
    values = np.array([[10.0, 0.0], [20.0, 4.0], [40.0, 8.0]])
    sigmas = np.array([[1.0, 2.0], [2.0, 2.0], [2.0, 2.0]])
    level, sd = local_level(values, sigmas, FLAT)
    w = 1 / sigmas[:, 0] ** 2
    assert level[0] == pytest.approx(float((w * values[:, 0]).sum() / w.sum()))
    assert sd[0] == pytest.approx(float(w.sum() ** -0.5))
    assert level[1] == pytest.approx(4.0) and sd[1] == pytest.approx(2 / math.sqrt(3))


def test_noise_shrinks_on_a_steady_cell() -> None:
    rng = np.random.default_rng(7)
    truth, sigma, n = 500.0, 46.0, 10
    params = SmoothingParams(windows=n, process_abs=2.0, process_rel=0.02, jump_z=3.0)
    values = truth + sigma * rng.standard_normal((n, 4000))
    level, sd = local_level(values, np.full(values.shape, sigma), params)
    err = float(np.sqrt(np.mean((level - truth) ** 2)))
    assert err < 0.6 * sigma  # fixed seed: a deterministic outcome
    assert float(np.median(sd)) == pytest.approx(err, rel=0.25)  # the stated σ is about the actual error


def test_a_jump_is_followed_at_once_and_not_averaged_away() -> None:
    values = np.array([[100.0]] * 9 + [[3000.0]])
    sigmas = np.full(values.shape, 46.0)
    slow = SmoothingParams(windows=10, process_abs=1.0, process_rel=0.0, jump_z=math.inf)
    adaptive = SmoothingParams(windows=10, process_abs=1.0, process_rel=0.0, jump_z=3.0)
    assert local_level(values, sigmas, slow)[0][0] < 1000  # no jump step: the crowd is missed
    assert local_level(values, sigmas, adaptive)[0][0] > 2900


def test_a_missing_window_is_predicted_through() -> None:
    values = np.array([[np.nan], [50.0], [np.nan]])
    level, sd = local_level(values, np.array([[np.nan], [5.0], [np.nan]]), FLAT)
    assert level[0] == pytest.approx(50.0) and sd[0] == pytest.approx(5.0)


def test_smooth_reads_the_last_windows_through_the_one_accessor() -> None:
    history = [{1: row(1000, 10.0), 2: row(7, 10.0)}] + [{1: row(10, 10.0), 2: row(10, 10.0)}] * 3
    out = smooth(history, SmoothingParams(windows=3, process_abs=0.0, process_rel=0.0, jump_z=math.inf))
    assert out[1] == pytest.approx((10.0, 10 / math.sqrt(3)))  # the oldest window is outside the span
    assert set(out) == {1, 2}
    assert cell_estimate(row(12, 3.5)) == (12.0, 3.5)


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match="same"):
        local_level(np.zeros((2, 3)), np.zeros((3, 2)), FLAT)
