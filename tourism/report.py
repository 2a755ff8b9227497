"""The printable daily report of a tourism area: one static HTML page (inline SVG, inline CSS, no
script, nothing fetched) that a browser prints or saves as PDF as it is.

It shows the area's hourly occupancy against capacity and the 80% warning line, the dwell histogram
of the day, visitors over the last 30 days, each with 95% intervals, and the privacy note: what is
counted, the noise, and the budget share the plan gives the daily tourism release. It reads released
data only (``releases.tourism``, ``releases.zones``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import escape

from hexpulse.settings import Settings
from hexpulse.store.pool import ClickHousePool
from privacy.release.shares import parse_plan
from releases.tourism import DWELL_BINS, DWELL_LABELS, VISITORS, DailyValue, TourismDay, area_days
from releases.zones import zone_series
from tourism.areas import Area
from tourism.hourly import Curve, hourly_curve, local_day_bounds
from tourism.report_charts import Bar, bar_chart, occupancy_chart

#: Days of visitors the report charts, ending on the report's date.
HISTORY_DAYS = 30
TOURISM_PREFIX = "tourism"


def tourism_shares(settings: Settings) -> dict[str, float]:
    """The daily tourism products of the budget plan and their shares of the device-day budget
    (``tourism.visitors``, ``tourism.dwell``; empty when unfunded)."""
    plan = parse_plan(tuple(settings.budget_plan))
    ours = [p for p in plan if p == TOURISM_PREFIX or p.startswith(TOURISM_PREFIX + ".")]
    return {p: plan[p] for p in ours if plan[p] > 0}


@dataclass(frozen=True)
class ReportData:
    """Everything one report shows; ``day`` is the report date's release (None: not yet released)."""

    area: Area
    local_date: date
    curve: Curve
    day: TourismDay | None
    history: list[TourismDay]
    shares: dict[str, float]
    rho_per_day: float
    generated_at: datetime


async def load_report(
    pool: ClickHousePool, settings: Settings, area: Area, local_date: date, expansion: float | None = None
) -> ReportData:
    """Read what the report of ``area`` on ``local_date`` shows (released data only)."""
    start, end = local_day_bounds(local_date, area.timezone)
    points = await zone_series(pool, area.zone_id, start, end)
    curve = hourly_curve(points, local_date, area.timezone, area.capacity, expansion)
    history = [d for d in await area_days(pool, area.area_id, local_date - timedelta(days=HISTORY_DAYS - 1),
                                          local_date) if VISITORS in d.values]  # fmt: skip
    day = next((d for d in history if d.local_date == local_date), None)
    return ReportData(area, local_date, curve, day, history, tourism_shares(settings),
                      settings.budget_rho_per_day, datetime.now(UTC).replace(microsecond=0))  # fmt: skip


def _bar(label: str, v: DailyValue, scale: float) -> Bar:
    return Bar(label, v.estimate * scale, v.lo * scale, v.hi * scale)


_NONE = (math.nan, math.nan, math.nan)


def _n(v: float) -> str:
    return f"{v:,.0f}"


_CSS = """
body{font-family:sans-serif;color:#222;margin:24px auto;max-width:800px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:20px 0 6px;border-bottom:1px solid #ccc}
.meta,.note{font-size:12px;color:#555}.chart{width:100%;height:auto;display:block}
table{border-collapse:collapse;font-size:13px}
td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:right}
th:first-child,td:first-child{text-align:left}.warn{color:#c00000;font-weight:bold}
@page{size:A4;margin:14mm}@media print{body{margin:0;max-width:none}section{break-inside:avoid}}
"""


def _summary(data: ReportData, scale: float) -> str:
    c, rows = data.curve, []
    if data.day is not None:
        v = data.day.values[VISITORS]
        rows.append(f"<tr><td>Visitors that day</td><td>{_n(v.estimate * scale)}</td>"
                    f"<td>{_n(v.lo * scale)} – {_n(v.hi * scale)}</td></tr>")  # fmt: skip
    if c.peak is not None:
        rows.append(f"<tr><td>Peak hour ({c.peak.start:%H:%M})</td><td>{_n(c.peak.estimate)}</td>"
                    f"<td>{_n(c.peak.lo)} – {_n(c.peak.hi)}</td></tr>")  # fmt: skip
    if c.peak_share is not None:
        est, lo, hi = c.peak_share
        flag = ' <span class="warn">at or above the 80% warning</span>' if c.warning else ""
        rows.append(f"<tr><td>Peak vs capacity{flag}</td><td>{est:.1%}</td><td>{lo:.1%} – {hi:.1%}</td></tr>")
    if not rows:
        return '<p class="note">Nothing released for this day yet.</p>'
    return ("<table><tr><th></th><th>estimate</th><th>95% interval</th></tr>" + "".join(rows) + "</table>")


def _dwell(data: ReportData, scale: float, unit: str) -> str:
    if data.day is None or not all(m in data.day.values for m in DWELL_BINS):
        return '<p class="note">The daily release of this day is not published yet (it follows local ' \
               "midnight by up to an hour).</p>"
    bars = [_bar(DWELL_LABELS[m], data.day.values[m], scale) for m in DWELL_BINS]
    return bar_chart("Visitors by time present", bars, unit)


def _history(data: ReportData, scale: float, unit: str) -> str:
    if not data.history:
        return '<p class="note">No released day in the last 30 days.</p>'
    by_date = {d.local_date: d for d in data.history}
    bars = []
    for k in range(HISTORY_DAYS - 1, -1, -1):
        d = data.local_date - timedelta(days=k)
        day = by_date.get(d)
        bars.append(_bar(f"{d:%m-%d}", day.values[VISITORS], scale) if day else Bar(f"{d:%m-%d}", *_NONE))
    return bar_chart("Visitors per day", bars, unit, every=3)


def _privacy(data: ReportData, scale: float, unit: str) -> str:
    sigma = ""
    if data.day is not None:
        s = data.day.values[VISITORS].sigma * scale
        sigma = (f" The noise of this day's visitor count has a standard error σ = {_n(s)} {escape(unit)}"
                 f" (95% interval ± {_n(1.96 * s)}).")  # fmt: skip
    k = f" in at most {data.day.k_areas} areas" if data.day is not None else ""
    total = sum(data.shares.values())
    named = sorted((p.removeprefix(TOURISM_PREFIX + "."), s) for p, s in data.shares.items())
    parts = ", ".join(f"{p} {s:.0%}" for p, s in named)
    share = (f"The budget plan now in force gives the daily tourism release {total:.0%} of each "
             f"device-day's privacy budget ({escape(parts)}; ρ = {total * data.rho_per_day:.3g} of "
             f"{data.rho_per_day:g}, zCDP)" if total > 0
             else "The budget plan now in force funds no daily tourism release")  # fmt: skip
    if data.day is not None:
        share += f" (this day was released under plan {data.day.plan:x})"
    return (
        '<p class="note"><b>What is counted.</b> Devices (phones seen by the data sources), not people: '
        f"a visitor is a device present in the area's zone during the local day, counted once{k}; "
        "time present is the number of one-minute windows it was seen. Occupancy is devices present at "
        "once, the mean of the hour's minute releases."
        + (f" Values are scaled to visitors by an expansion factor of {data.curve.expansion:g} given by "
           "the reader, not measured." if data.curve.expansion else "")
        + "</p><p class=\"note\"><b>Privacy.</b> Every number carries deliberate random noise "
        f"(differential privacy, discrete Gaussian).{sigma} {share}; occupancy reuses the zone's minute "
        "releases and costs nothing more. Intervals are 95%; values near zero are mostly noise.</p>"
    )  # fmt: skip


def render_report(data: ReportData) -> str:
    """The report page (complete HTML document)."""
    a, c = data.area, data.curve
    scale = c.expansion or 1.0
    unit = "visitors" if c.expansion else "devices"
    hours = [Bar(f"{h.start:%H}", h.estimate, h.lo, h.hi) for h in c.hours]
    occupancy = occupancy_chart(hours, c.capacity, c.warning_at, unit) if hours else \
        '<p class="note">No minute release of this day yet.</p>'  # fmt: skip
    capacity = f"capacity {a.capacity:,} visitors at once" if a.capacity else "capacity not stated"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(a.name)} — '
        f'{data.local_date.isoformat()}</title><link rel="icon" href="data:,"><style>{_CSS}</style>'
        "</head><body>"
        f"<h1>{escape(a.name)}: daily report, {data.local_date.isoformat()}</h1>"
        f'<p class="meta">Area {escape(a.area_id)} · local day in {escape(a.timezone)} · {capacity} · '
        f"values in {escape(c.unit)} · generated {data.generated_at:%Y-%m-%d %H:%M} UTC</p>"
        f"<section><h2>Summary</h2>{_summary(data, scale)}</section>"
        f"<section><h2>Occupancy by local hour</h2>{occupancy}</section>"
        f"<section><h2>Time present (dwell)</h2>{_dwell(data, scale, unit)}</section>"
        f"<section><h2>Visitors, last {HISTORY_DAYS} days</h2>{_history(data, scale, unit)}</section>"
        f"<section><h2>About these numbers</h2>{_privacy(data, scale, unit)}</section>"
        "</body></html>"
    )
