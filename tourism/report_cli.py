"""``hexpulse report --area ID --date D --pdf FILE``: an area's daily report as PDF, rendered by
headless Chromium from the same page ``/v1/tourism/areas/{id}/report`` serves.

Connects as the API user (released data only). Bad input and a missing browser end with exit code 2
and one sentence (``hexpulse.cli`` turns the :class:`ReportError` into it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from hexpulse.errors import HexpulseError
from hexpulse.settings import get_settings
from hexpulse.store import ping_clickhouse
from hexpulse.store.pool import ClickHousePool
from tourism.areas import AreaStore
from tourism.hourly import check_expansion, check_local_date
from tourism.report import load_report, render_report

#: Where Chromium is looked for: $CHROMIUM, then these names on PATH (``make browser`` installs it).
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
#: Seconds the browser may take to print one report.
PRINT_TIMEOUT_S = 120


class ReportError(HexpulseError, ValueError):
    """The report cannot be made; the message says why."""


def find_chromium() -> str:
    """The Chromium executable, or :class:`ReportError` naming how to install it."""
    configured = os.environ.get("CHROMIUM")
    if configured:
        if Path(configured).is_file() and os.access(configured, os.X_OK):
            return configured
        raise ReportError(f"CHROMIUM={configured} is not an executable file")
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise ReportError("headless Chromium is needed for the PDF and none was found: run 'make browser' "
                      "(apt-get install chromium) or set CHROMIUM")  # fmt: skip


def print_pdf(html: str, pdf: Path, chromium: str) -> None:
    """Print the page ``html`` to ``pdf`` with headless Chromium (no network: the page needs none)."""
    with tempfile.TemporaryDirectory(prefix="hexpulse-report-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html, encoding="utf-8")
        out = Path(tmp) / "report.pdf"
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp}/profile",
               # Both spellings of "no header and footer" (older builds know only the second).
               "--no-pdf-header-footer", "--print-to-pdf-no-header", f"--print-to-pdf={out}",
               page.as_uri()]  # fmt: skip
        try:
            # The browser path is the operator's ($CHROMIUM or PATH); the page is our own file.
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=PRINT_TIMEOUT_S,  # noqa: S603
                                  check=False)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise ReportError(f"Chromium did not print the report within {PRINT_TIMEOUT_S} s") from None
        if not out.is_file() or out.stat().st_size == 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
            raise ReportError(f"Chromium printed no PDF (exit {done.returncode}: {last})")
        pdf.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(out), pdf)


def report(
    area: Annotated[str, typer.Option(help="tourism area id")],
    day: Annotated[str, typer.Option("--date", help="the area's local date, YYYY-MM-DD")],
    pdf: Annotated[Path, typer.Option(help="PDF file to write")],
    expansion: Annotated[float | None, typer.Option(help="visitors per device seen (labelled)")] = None,
) -> None:
    """Write an area's printable daily report as PDF (headless Chromium)."""
    try:
        local_date = date.fromisoformat(day)
    except ValueError:
        raise ReportError(f"--date {day[:20]!r} is not a date of the form YYYY-MM-DD") from None
    if pdf.is_dir():
        raise ReportError(f"--pdf {pdf} is a folder; give a file name")
    factor = check_expansion(expansion)
    settings = get_settings()
    check_local_date(local_date, settings.release_retention_days, "--date")
    ping_clickhouse(settings, role="api")
    pool = ClickHousePool(settings, size=1)
    try:
        found = AreaStore(pool).get(area)
        chromium = find_chromium()  # after the input checks: a bad request says so with or without it
        html = render_report(asyncio.run(load_report(pool, settings, found, local_date, factor)))
    finally:
        pool.close()
    print_pdf(html, pdf, chromium)
    typer.echo(f"report of {area} on {local_date} written to {pdf}")
