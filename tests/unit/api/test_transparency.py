"""The transparency page's HTML without services: numbers from settings, the budget plan rows of
the contract, escaping, and a page that needs no script or external asset."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, timedelta
from html import escape
from html.parser import HTMLParser
from typing import Any

import pytest

from api.area_summary import area_summary, outline
from api.privacy_report import privacy_report
from api.transparency import PageFacts, num, render
from hexpulse.settings import Settings, load_settings
from privacy.release.accounting import epsilon_report
from privacy.release.budget import plan_from_settings
from releases.models import Window
from releases.smoothing import SmoothingParams

NOW = datetime(2030, 3, 1, 12, 0, 30, tzinfo=UTC)

#: Rows in the shape of the budget-plan contract (issue #11: ``privacy.release.budget.plan_rows``).
PLAN_ROWS = [
    {"product": "cells", "per": "window", "share": 0.70, "rho_per_device_day": 0.7,
     "epsilon_per_device_day": 7.0, "sigma": 58.55, "what": "live map: devices per hexagon per minute"},
    {"product": "zones.crowd", "per": "window", "share": 0.25, "rho_per_device_day": 0.25,
     "epsilon_per_device_day": 4.1, "sigma": 53.67, "what": "crowd <zones> & \"safety\""},
    {"product": "zones.district", "per": "window", "share": 0.05, "rho_per_device_day": 0.05,
     "epsilon_per_device_day": 1.8, "sigma": None, "what": "districts"},
]  # fmt: skip


class _Ledger:
    """The two reads the report makes, answered from fixed values (the real reader is exercised by
    tests/integration/api/test_transparency.py)."""

    def __init__(self, rho: float, draws: int) -> None:
        self.rho, self.draws = rho, draws

    async def budget_on(self, day: date) -> tuple[float, int]:
        return self.rho, self.draws

    async def latest(self) -> Window | None:
        return None


def windows(n: int) -> list[Window]:
    end = NOW.replace(second=0)
    return [
        Window(end - timedelta(minutes=k + 1), end - timedelta(minutes=k), end - timedelta(minutes=k),
               1.0 + k % 10, 0.0007, "gaussian", 100)
        for k in range(n)
    ]  # fmt: skip


def facts(settings: Settings, report: dict[str, Any], recent: list[Window]) -> PageFacts:
    return PageFacts(settings, report, plan_from_settings(settings), recent, NOW, area_summary(settings),
                     SmoothingParams.from_settings(settings))  # fmt: skip


def report(settings: Settings, rho: float = 0.25, draws: int = 1200) -> dict[str, Any]:
    return asyncio.run(privacy_report(settings, _Ledger(rho, draws)))  # type: ignore[arg-type]


class _Doc(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Doc:
    doc = _Doc()
    doc.feed(html)
    return doc


@pytest.mark.parametrize("rho", [1.0, 0.3])
def test_the_key_numbers_come_from_the_settings(rho: float) -> None:
    settings = load_settings(budget_rho_per_day=rho, window_s=120, windows_per_device_day=720, lateness_s=20)
    eps = epsilon_report(rho, settings.report_delta)
    html = render(facts(settings, report(settings, rho=rho / 4), windows(30)))
    for value in (eps.day_zcdp, eps.day_rdp, eps.week_zcdp, eps.week_rdp):
        assert f"<td>{num(value)}</td>" in html
    assert "25%</span> of the daily budget" in html
    assert "One release per 120-second window" in html and "up to 20 s" in html
    assert "every 120 seconds" in html and "per 120-second window" in html and "minute" not in html
    assert "95% were published within 10 s" in html  # lags 1..10 s: the 95th percentile is 10
    area = area_summary(settings)
    assert f"{num(area.cells[9])} at resolution 9" in html
    assert f"{num(area.cells_km2, 1)} km²" in html
    sigma9 = next(
        d.params.sigma for d in plan_from_settings(settings).draws if (d.metric, d.res) == ("count", 9)
    )
    assert f"<td>count</td><td>9</td><td>{num(sigma9)}</td>" in html


def test_the_budget_plan_rows_are_rendered_and_escaped() -> None:
    settings = load_settings()
    html = render(facts(settings, report(settings) | {"budget_plan": PLAN_ROWS, "unallocated_share": 0.0},
                        windows(3)))  # fmt: skip
    assert "<td>zones.crowd</td><td>per window</td><td>0.25</td>" in html
    assert escape('crowd <zones> & "safety"') in html and "<zones>" not in html
    assert "<td>—</td>" in html  # a product without a single-count σ
    assert "Unallocated: 0" in html
    without = {k: v for k, v in report(settings).items() if k not in ("budget_plan", "unallocated_share")}
    assert "The budget plan: every product" not in render(facts(settings, without, windows(3)))


def test_the_page_has_no_script_and_no_external_asset() -> None:
    settings = load_settings()
    doc = parse(render(facts(settings, report(settings), [])))
    assert not [t for t, _ in doc.tags if t in ("script", "iframe", "img")]
    links = [a.get("href") or a.get("src") or "" for _, a in doc.tags]
    assert all(not re.match(r"^(https?:)?//", ref) for ref in links), links
    assert ("link", {"rel": "stylesheet", "href": "/static/privacy.css"}) in doc.tags
    assert ("a", {"href": "/"}) in doc.tags  # back to the live map
    assert "Nothing has been released yet." in "".join(doc.text)


def test_the_outline_keeps_proportions() -> None:
    from shapely.geometry import box

    path, height = outline(box(113.0, 23.0, 113.2, 23.1))
    assert path.startswith("M") and path.endswith("Z")
    assert height == pytest.approx(320 * 0.1 / (0.2 * 0.92), rel=0.01)  # cos(23.05°) ≈ 0.920


def test_num_is_for_people() -> None:
    assert (num(1234567), num(7.7712), num(0.00012), num(None), num(float("nan"))) == (
        "1,234,567", "7.77", "0.00012", "—", "—")  # fmt: skip
