"""Released numbers of a test deployment, for comparing a run under faults with a fault-free run.

Noise is keyed per (window, plan, exact input) from the key ring's day key (privacy/release/seeds.py),
so two deployments sharing the master key and the key ring that hold the same partials publish
the *same* noisy values: equal releases, not merely equal partials, are the check that a fault
changed nothing a user can see.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from hexpulse.settings import Settings
from hexpulse.store import connect
from privacy.release.releaser import Releaser
from privacy.release.traffic import TRAFFIC_COLUMNS
from privacy.release.values import CELL_COLUMNS
from privacy.release.zones import ZONE_COLUMNS
from tests.support.aggregate import TEST_KEY

Released = dict[str, list[tuple[Any, ...]]]


def releaser_settings(s: Settings) -> Settings:
    """``s`` with the test master key the consumers ran with (their key ring is the releaser's)."""
    return s.model_copy(update={"master_key": SecretStr(TEST_KEY)})


def release_all(s: Settings) -> int:
    """Release every complete window of ``s``'s deployment in-process; the windows published."""
    rel = Releaser(releaser_settings(s))
    try:
        total = 0
        while n := rel.run_once():
            total += n
        return total
    finally:
        rel.client.disconnect()


def read_released(s: Settings) -> Released:
    """Every public value: cells, zones, traffic bins and the published windows (release time and
    lag left out: they are wall-clock facts, not numbers a user reads), in key order."""
    client = connect(s)
    db = s.clickhouse_database
    try:
        return {
            "cells": client.execute(f"SELECT {CELL_COLUMNS} FROM {db}.release_cells FINAL "
                                    "ORDER BY window_start, res, cell"),  # fmt: skip
            "zones": client.execute(f"SELECT {ZONE_COLUMNS} FROM {db}.release_zones FINAL "
                                    "ORDER BY window_start, zone_set, zone_id"),  # fmt: skip
            "traffic": client.execute(f"SELECT {TRAFFIC_COLUMNS} FROM {db}.release_traffic FINAL "
                                      "ORDER BY window_start, res, cell"),  # fmt: skip
            "windows": client.execute(
                f"SELECT window_start, window_end, base_cells, rho, mechanism, plan "
                f"FROM {db}.release_windows FINAL ORDER BY window_start"
            ),
        }
    finally:
        client.disconnect()


def differences(got: Released, want: Released) -> list[str]:
    """One line per table whose released rows differ over ``want``'s windows (empty when equal).

    The runs are released one after the other, and the last windows of a stream become due by the
    wall clock (their idle close), so a window that became due in between may be public in the
    later release alone. The check is over the reference's windows: each must be public in ``got``
    too, with the same values; ``got``'s later windows, if any, are not compared.
    """
    windows = {r[0] for r in want["windows"]}
    missing = windows - {r[0] for r in got["windows"]}
    out = [f"windows: {len(missing)} public in the reference only"] if missing else []
    for table in want:
        a, b = [r for r in got[table] if r[0] in windows], want[table]
        if a != b:
            differ = sum(x != y for x, y in zip(a, b, strict=False))
            out.append(f"{table}: {len(a)} rows vs {len(b)} fault-free; {differ} of the first "
                       f"{min(len(a), len(b))} differ")  # fmt: skip
    return out
