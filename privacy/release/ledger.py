"""The budget ledger ``release_ledger``: append-only, one row per (window, resolution, metric) draw.

``rho`` is the charge to each device-day of ``day`` (worst case: every device is assumed present
in every window). With the default ``windows_per_device_day`` (all windows of the day) it equals
the draw's zCDP ρ; with a smaller W the aggregate layer lets each device into only W of the
day's windows, so a draw of ρ is charged ρ·W / (windows per day) and the day's sum is still the
per-device-day spend. Rows of resolutions that are derived (not measured) cost 0 and say so
(mechanism ``derived``), so an auditor sees every released family.

Append-only (MergeTree): nothing is ever replaced. Every row carries the window's plan hash and
the ``fingerprint`` of the values it accounts for (64 bits of BLAKE2b over the released integers
of that resolution and metric, cell order). Releasers of one plan reproduce the same draw, so
they append rows with the same fingerprint; the spend counts each distinct (window, resolution,
metric, fingerprint) once. A second, different draw of a family would show as a second
fingerprint and would be charged; the releaser records a draw here *before* writing its cells and
writes them only if :func:`check_one_draw` then finds no other, so such a draw is never published.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import date, datetime

import numpy as np
import numpy.typing as npt
from clickhouse_driver import Client

from privacy.release.budget import ReleasePlan
from privacy.release.exceptions import DoubleDrawError
from privacy.release.shares import TRAFFIC, TRAFFIC_PREFIX, ZONES_PREFIX

DERIVED = "derived"
_COLUMNS = (
    "day, window_start, res, metric, plan, fingerprint, mechanism, sensitivity, scale, rho, releaser, "
    "recorded_at"
)
Family = tuple[int, str]  # (resolution, metric)


def fingerprint(values: npt.NDArray[np.int64]) -> int:
    """64-bit BLAKE2b of the released integers of one family, in cell order (UInt64)."""
    data = np.ascontiguousarray(values, dtype="<i8").tobytes()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, person=b"hexpulse-draw").digest(), "big")


def ledger_rows(
    plan: ReleasePlan,
    plan_hash: int,
    window_start: datetime,
    prints: Mapping[Family, int],
    releaser: str,
    recorded_at: datetime,
    zone_sets: Iterable[str] = (),
    traffic: bool = False,
    zone_traffic_sets: Iterable[str] = (),
) -> list[tuple[object, ...]]:
    """The ledger rows of one window's release under ``plan`` (naive UTC datetimes): every cell
    family, one row per zone set drawn (``zone_sets``; a set without zones draws nothing), if
    ``traffic`` the speed-bin draw, and one row per zone set whose speed bins were drawn
    (``zone_traffic_sets``)."""
    rows: list[tuple[object, ...]] = []
    for metric in plan.metrics:
        measured = plan.measured(metric)
        for res in plan.resolutions:
            draw = measured.get(res)
            if draw is None:
                cost: tuple[object, ...] = (DERIVED, 0.0, 0.0, 0.0)
            else:
                cost = (draw.params.mechanism, draw.params.sensitivity, draw.params.scale, draw.charge)
            rows.append((window_start.date(), window_start, res, metric, plan_hash, prints[(res, metric)],
                         *cost, releaser, recorded_at))  # fmt: skip
    drawn = [(plan.zone_draw(s), ZONES_PREFIX + s) for s in sorted(zone_sets)]
    if traffic:
        drawn.append((plan.traffic_draw, TRAFFIC))
    drawn += [(plan.zone_traffic_draw(s), TRAFFIC_PREFIX + s) for s in sorted(zone_traffic_sets)]
    for draw, product in drawn:
        if draw is None:
            raise ValueError(f"the plan has no draw for {product!r}")
        rows.append((window_start.date(), window_start, draw.res, draw.metric, plan_hash,
                     prints[(draw.res, draw.metric)], draw.params.mechanism, draw.params.sensitivity,
                     draw.params.scale, draw.charge, releaser, recorded_at))  # fmt: skip
    return rows


def write_ledger(client: Client, database: str, rows: list[tuple[object, ...]]) -> None:
    client.execute(f"INSERT INTO {database}.release_ledger ({_COLUMNS}) VALUES", rows)


def spent_on(client: Client, database: str, day: date, *, excluding: datetime | None = None) -> float:
    """ρ already charged to each device-day of ``day``: every distinct draw recorded (published or
    not), leaving out window ``excluding`` (the window about to be drawn, which its own plan pays)."""
    rows = client.execute(
        "SELECT sum(r) FROM (SELECT any(rho) AS r "
        f"FROM {database}.release_ledger WHERE day = %(day)s AND window_start != %(skip)s "
        "GROUP BY window_start, res, metric, fingerprint)",
        {"day": day, "skip": excluding or datetime(1970, 1, 1)},
    )
    return float(rows[0][0]) if rows and rows[0][0] is not None else 0.0


def window_prints(client: Client, database: str, window_start: datetime) -> dict[Family, set[int]]:
    """Every fingerprint the ledger holds per family of one window."""
    rows = client.execute(
        f"SELECT res, metric, groupUniqArray(fingerprint) FROM {database}.release_ledger "
        "WHERE window_start = %(w)s GROUP BY res, metric",
        {"w": window_start},
    )
    return {(int(res), str(metric)): {int(f) for f in prints} for res, metric, prints in rows}


def check_one_draw(
    stored: Mapping[Family, set[int]], mine: Mapping[Family, int], window_start: datetime
) -> None:
    """DoubleDrawError if the ledger holds, for a family of this window, a draw other than ``mine``."""
    for family, prints in stored.items():
        if prints - {mine.get(family)}:
            res, metric = family
            raise DoubleDrawError(
                f"window {window_start:%Y-%m-%d %H:%M} already has another draw of {metric} at resolution "
                f"{res} (the exact input changed after the window was complete?); not publishing it"
            )
