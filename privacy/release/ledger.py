"""The budget ledger: one row per (window, resolution, metric) noise draw family.

``budget_ledger.rho`` is the charge to each device-day of ``day`` (worst case: every device is
assumed present in every window). With the default ``windows_per_device_day`` (all windows of
the day) it equals the draw's zCDP ρ; with a smaller W the aggregate layer lets each device into
only W of the day's windows, so a draw of ρ is charged ρ·W / (windows per day) and the day's sum
is still the per-device-day spend. Rows of resolutions that are derived (not measured) cost 0
and say so (mechanism ``derived``), so an auditor sees every released family.
"""

from __future__ import annotations

from datetime import date, datetime

from clickhouse_driver import Client

from privacy.release.budget import ReleasePlan

DERIVED = "derived"
_COLUMNS = "day, window_start, res, metric, mechanism, sensitivity, scale, rho, recorded_at"


def ledger_rows(plan: ReleasePlan, window_start: datetime, recorded_at: datetime) -> list[tuple[object, ...]]:
    """The ledger rows of one window's release under ``plan`` (naive UTC datetimes)."""
    rows: list[tuple[object, ...]] = []
    for metric in plan.metrics:
        measured = plan.measured(metric)
        for res in plan.resolutions:
            draw = measured.get(res)
            if draw is None:
                rows.append(
                    (window_start.date(), window_start, res, metric, DERIVED, 0.0, 0.0, 0.0, recorded_at)
                )
            else:
                p = draw.params
                rows.append(
                    (window_start.date(), window_start, res, metric, p.mechanism, p.sensitivity, p.scale,
                     draw.charge, recorded_at)
                )  # fmt: skip
    return rows


def write_ledger(client: Client, rows: list[tuple[object, ...]]) -> None:
    client.execute(f"INSERT INTO budget_ledger ({_COLUMNS}) VALUES", rows)


def spent_on(client: Client, day: date, *, excluding: datetime | None = None) -> float:
    """ρ already charged to each device-day of ``day`` (every recorded row, published or not),
    leaving out the rows of window ``excluding`` (a window about to be written again)."""
    rows = client.execute(
        "SELECT sum(rho) FROM budget_ledger FINAL "
        "WHERE day = %(day)s AND window_start != %(skip)s",
        {"day": day, "skip": excluding or datetime(1970, 1, 1)},
    )
    return float(rows[0][0]) if rows and rows[0][0] is not None else 0.0
