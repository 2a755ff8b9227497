"""The printable report page: three inline SVG charts with intervals, capacity and the 80% line, the
privacy note with σ and the plan's tourism share, no script and nothing fetched; what is missing is
said, not drawn."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from hexpulse.settings import Settings
from releases.tourism import DWELL_BINS, VISITORS, DailyValue, TourismDay
from tests.unit.tourism.test_hourly import day_points
from tourism.areas import Area
from tourism.hourly import hourly_curve, local_day_bounds
from tourism.report import ReportData, render_report, tourism_shares

DAY = date(2026, 11, 30)
AREA = Area("baiyun", "Baiyun <Mountain>", "z1", 5000, "Asia/Shanghai", datetime(2026, 1, 1, tzinfo=UTC))


def released(d: date, visitors: float) -> TourismDay:
    start, end = local_day_bounds(d, AREA.timezone)
    values = {VISITORS: DailyValue(visitors, 30.0, visitors - 58.8, visitors + 58.8, round(visitors))}
    for i, m in enumerate(DWELL_BINS):
        v = visitors / 4 + i
        values[m] = DailyValue(v, 20.0, v - 39.2, v + 39.2, round(v))
    return TourismDay(AREA.area_id, d, AREA.timezone, start, end, 3, 7, end + timedelta(minutes=20), values)


def data(expansion: float | None = None, with_day: bool = True,
         shares: dict[str, float] | None = None) -> ReportData:  # fmt: skip
    curve = hourly_curve(day_points(DAY, AREA.timezone, 3500.0, 40.0), DAY, AREA.timezone, AREA.capacity,
                         expansion)  # fmt: skip
    ks = range(29, -1 if with_day else 0, -1)
    history = [released(DAY - timedelta(days=k), 4000.0 + 10 * k) for k in ks]
    day = history[-1] if with_day else None
    shares = {"tourism.visitors": 0.15, "tourism.dwell": 0.05} if shares is None else shares
    return ReportData(AREA, DAY, curve, day, history, shares, 1.0, datetime(2026, 12, 1, tzinfo=UTC))


def test_the_page_has_three_charts_with_intervals_and_no_script() -> None:
    html = render_report(data())
    assert html.count("<svg") == 3
    assert 'class="band"' in html and 'class="curve"' in html  # occupancy inside its 95% band
    assert "capacity 5,000" in html and "80% warning 4,000" in html
    assert html.count('class="bar"') == 4 + 30  # dwell bins + 30 days
    assert "<script" not in html.lower()
    # Nothing fetched: the only URL is the SVG namespace.
    assert set(re.findall(r"https?://[^\"' ]+", html)) == {"http://www.w3.org/2000/svg"}
    assert "Baiyun &lt;Mountain&gt;" in html  # names are escaped
    assert "at or above the 80% warning" not in html  # peak 3,500 < 4,000


def test_the_privacy_note_states_sigma_k_and_the_budget_share() -> None:
    html = render_report(data())
    assert "σ = 30 devices" in html and "in at most 3 areas" in html
    assert "gives the daily tourism release 20% of each device-day" in html and "ρ = 0.2 of 1" in html
    assert "(dwell 5%, visitors 15%;" in html
    assert "released under plan 7" in html
    unfunded = render_report(data(shares={}))
    assert "funds no daily tourism release" in unfunded


def test_expansion_is_labelled_and_scales_the_charts() -> None:
    html = render_report(data(expansion=2.0))
    assert "expansion factor of 2 given by the reader" in html
    assert "visitors (devices × 2" in html and "σ = 60 visitors" in html
    assert "at or above the 80% warning" in html  # 7,000 visitors at peak vs 5,000


def test_a_day_not_yet_released_says_so() -> None:
    html = render_report(data(with_day=False))
    assert "not published yet" in html and html.count("<svg") == 2


def test_tourism_shares_read_the_plan() -> None:
    assert tourism_shares(Settings(budget_plan=("cells:0.7", "zones.crowd:0.25"))) == {}
