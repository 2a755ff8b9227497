"""The public transparency page against real ClickHouse: open (no key), HTML, and its numbers are
the configured ones and the ledger's, the same as /v1/privacy's."""

from __future__ import annotations

from collections.abc import Iterator
from html import escape
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.area_summary import area_summary
from api.transparency import num
from hexpulse.settings import Settings
from privacy.release.accounting import eps_from_rho, epsilon_report
from tests.support.api import app_client, seeded

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    yield from seeded(migrated, "apit")


@pytest.fixture(scope="module")
def api(data: dict[str, Any]) -> Iterator[TestClient]:
    yield from app_client(data)


def test_the_page_is_open_and_states_the_configured_numbers(api: TestClient, data: dict[str, Any]) -> None:
    settings: Settings = data["settings"]
    resp = api.get("/privacy")  # no Authorization header
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/html")
    html = resp.text
    eps = epsilon_report(settings.budget_rho_per_day, settings.report_delta)
    for value in (eps.day_zcdp, eps.day_rdp, eps.week_zcdp, eps.week_rdp):
        assert f"<td>{num(value)}</td>" in html
    # The seed's ledger: 6 distinct draws of ρ 0.002 today (each recorded by two releasers).
    assert f"ρ = {num(0.012, 4)} of {num(settings.budget_rho_per_day, 4)}" in html
    assert f"ε = {num(eps_from_rho(0.012, settings.report_delta))} of" in html
    assert "6 noise draws" in html
    assert f"One release per {settings.window_s}-second window" in html
    assert f"up to {settings.lateness_s} s" in html
    # The seed's windows were released 1.5 s after they were complete.
    assert "published 1.5 s after it was complete" in html
    area = area_summary(settings)
    assert f"{num(area.cells[9])} at resolution 9" in html and "<svg" in html
    assert f"kept {settings.release_retention_days} days" in html


def test_the_page_and_the_api_agree(api: TestClient, data: dict[str, Any]) -> None:
    token = data["tokens"]["density"]
    doc = api.get("/v1/privacy", headers={"Authorization": f"Bearer {token}"}).json()
    html = api.get("/privacy").text
    assert f"<td>{num(doc['epsilon_per_week']['rdp_accountant'])}</td>" in html
    assert f"{num(doc['noise_draws_today'])} noise draws" in html
    for row in doc.get("budget_plan", []):  # every product of the budget plan, once the plan has rows
        assert f"<td>{escape(row['product'])}</td><td>per {escape(row['per'])}</td>" in html


def test_the_dashboard_links_the_page(api: TestClient) -> None:
    assert 'href="/privacy"' in api.get("/").text
    assert api.get("/static/privacy.css").status_code == 200
