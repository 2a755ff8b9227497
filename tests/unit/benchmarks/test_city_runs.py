"""The runs of benchmarks/bench_city.py: a shorter run is a prefix of the same city that keeps a
quiet run (the free-flow reference) and the morning peak with the incident."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from bench_city import runs  # noqa: E402


def test_shorter_runs_keep_a_quiet_run_and_the_morning_peak() -> None:
    full = runs(2, 10.0)
    assert [name for name, _, _ in full] == ["quiet1", "quiet2", "morning", "evening"]
    assert runs(2, 10.0, 2) == [full[0], full[2]]  # same start and seed as in the full run
    assert runs(2, 10.0, 3) == full[:3]
    assert runs(2, 10.0, 9) == full
    with pytest.raises(SystemExit, match="at least 2 runs"):
        runs(2, 10.0, 1)
