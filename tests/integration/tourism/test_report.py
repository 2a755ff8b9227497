"""The printable tourism report: rendered in headless Chromium with no console error and no script
(screenshot artifacts/tourism-report.png); ``hexpulse report`` writes a PDF whose pages have the
charts (pdftoppm: the chart regions are not blank); bad input and a missing browser end with exit
code 2 and one sentence.

Needs /usr/bin/chromium (or $CHROMIUM), node and `npm ci` in frontend/ (playwright-core) for the
page, and pdftoppm (poppler-utils; `make browser` installs both) for the PDF; skips otherwise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from hexpulse.settings import Settings
from tests.support.aggregate import HEXPULSE
from tests.support.api import app_client
from tests.support.api_server import serving
from tests.support.paths import REPO
from tests.support.tourism import DAY, read_side, release_baiyun

pytestmark = pytest.mark.integration

FRONTEND = REPO / "frontend"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def _no_browser() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    return None


@pytest.fixture(scope="module")
def data(migrated: Settings) -> Iterator[dict[str, Any]]:
    yield from read_side(migrated, "trep")


@pytest.fixture(scope="module")
def api(data: dict[str, Any]) -> Iterator[TestClient]:
    yield from app_client(data)


@pytest.fixture(scope="module")
def area(api: TestClient, data: dict[str, Any]) -> dict[str, Any]:
    return release_baiyun(api, data)


def report_env(s: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEXPULSE_") and k != "CHROMIUM"}
    env.update(
        HEXPULSE_CLICKHOUSE_DATABASE=s.clickhouse_database, HEXPULSE_CLICKHOUSE_HOST=s.clickhouse_host,
        HEXPULSE_CLICKHOUSE_PORT=str(s.clickhouse_port), HEXPULSE_API_CLICKHOUSE_USER=s.api_clickhouse_user,
        HEXPULSE_API_CLICKHOUSE_PASSWORD=s.api_clickhouse_password.get_secret_value(),
        HEXPULSE_LOG_LEVEL="WARNING", **extra,
    )  # fmt: skip
    return env


def report(s: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HEXPULSE, "report", *args], env=report_env(s, **env), capture_output=True,
                          text=True, timeout=180, check=False)  # fmt: skip


def test_report_in_chromium(area: dict[str, Any], data: dict[str, Any]) -> None:
    reason = _no_browser() or (None if shutil.which("node") else "node is not installed")
    if reason is None and not (FRONTEND / "node_modules" / "playwright-core").exists():
        reason = "playwright-core is not installed (run 'npm ci' in frontend/)"
    if reason:
        pytest.skip(reason)
    artifacts = REPO / "artifacts"
    artifacts.mkdir(exist_ok=True)
    shot = artifacts / "tourism-report.png"
    with serving(create_app(data["settings"])) as base:
        url = f"{base}/v1/tourism/areas/baiyun/report?date={DAY.isoformat()}"
        out = subprocess.run(["node", str(FRONTEND / "e2e" / "tourism-report.mjs"), url,
                              data["tokens"]["tourism"], str(shot)],
                             capture_output=True, text=True, cwd=FRONTEND, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    msg = json.loads(out.stdout.splitlines()[-1])
    assert msg["step"] == "report", msg
    assert msg["status"] == 200 and msg["errors"] == [], msg["errors"]
    assert msg["scripts"] == 0 and msg["svgs"] == 3 and msg["bars"] == 4 + 6  # dwell bins + released days
    assert msg["curve"] > 300 and shot.exists()


def _pages(pdf: Path, tmp: Path) -> list[np.ndarray]:
    """The PDF's pages as gray images at 100 dpi (pdftoppm -gray writes binary PGM)."""
    subprocess.run(["pdftoppm", "-r", "100", "-gray", str(pdf), str(tmp / pdf.stem)], check=True, timeout=60)
    pages = []
    for pgm in sorted(tmp.glob(f"{pdf.stem}*.pgm")):
        fields = pgm.read_bytes().split(maxsplit=4)  # P5, width, height, maxval, pixels
        assert fields[0] == b"P5", fields[0]
        width, height = int(fields[1]), int(fields[2])
        pages.append(np.frombuffer(fields[4][: width * height], dtype=np.uint8).reshape(height, width))
    return pages


def chart_marks(page: np.ndarray) -> tuple[int, int]:
    """(rows holding a dark line across more than half the page, bands of rows holding solid dark
    blocks of 8 × 8 px or more). Text makes neither: glyphs are thin and words are spaced, while a
    chart has axis, capacity and curve lines spanning its width and bars of solid ink."""
    dark = page < 128
    longest = np.zeros(dark.shape[0], dtype=np.int64)
    for y, row in enumerate(dark):
        edges = np.flatnonzero(np.diff(np.concatenate(([0], row.astype(np.int8), [0]))))
        if edges.size:
            longest[y] = int((edges[1::2] - edges[::2]).max())
    lines = int(np.count_nonzero(longest > dark.shape[1] // 2))
    k = 8
    ii = np.pad(dark.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    block = ii[k:, k:] - ii[:-k, k:] - ii[k:, :-k] + ii[:-k, :-k]  # dark pixels of each k × k block
    solid_rows = (block == k * k).any(axis=1)
    bands = int(np.count_nonzero(solid_rows[1:] & ~solid_rows[:-1]) + solid_rows[0])
    return lines, bands


def test_hexpulse_report_writes_a_pdf_with_the_charts(
    area: dict[str, Any], data: dict[str, Any], tmp_path: Path
) -> None:
    if _no_browser():
        pytest.skip(_no_browser())
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm is not installed (apt-get install -y poppler-utils; `make browser`)")
    pdf = tmp_path / "out" / "baiyun.pdf"
    done = report(data["settings"], "--area", "baiyun", "--date", DAY.isoformat(), "--pdf", str(pdf))
    assert done.returncode == 0, done.stderr
    assert pdf.read_bytes().startswith(b"%PDF") and "written to" in done.stdout
    marks = [chart_marks(p) for p in _pages(pdf, tmp_path)]
    # Three charts: three axis lines and the capacity line; the dwell bars and the daily bars.
    assert sum(m[0] for m in marks) >= 4 and sum(m[1] for m in marks) >= 2, marks
    (REPO / "artifacts").mkdir(exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "60", "-png", "-f", "1", "-l", "1", str(pdf),
                    str(REPO / "artifacts" / "tourism-report-pdf")], check=True, timeout=60)  # fmt: skip
    # The control: a day with nothing released (no chart drawn) shows neither mark.
    empty = tmp_path / "empty.pdf"
    quiet_day = (DAY - timedelta(days=40)).isoformat()
    done = report(data["settings"], "--area", "baiyun", "--date", quiet_day, "--pdf", str(empty))
    assert done.returncode == 0, done.stderr
    assert [chart_marks(p) for p in _pages(empty, tmp_path)] == [(0, 0)]


@pytest.mark.parametrize(
    ("args", "env", "sentence"),
    [
        (["--area", "baiyun", "--date", "30/11/2026"], {}, "is not a date of the form YYYY-MM-DD"),
        (["--area", "nowhere", "--date", DAY.isoformat()], {}, "no tourism area with id 'nowhere'"),
        (["--area", "baiyun", "--date", DAY.isoformat(), "--expansion", "0"], {},
         "expansion must be a factor"),
        (["--area", "baiyun", "--date", "9999-12-31"], {}, "is in the future"),
        (["--area", "baiyun", "--date", DAY.isoformat()], {"CHROMIUM": "/nonexistent/chromium"},
         "is not an executable file"),
        (["--area", "baiyun", "--date", DAY.isoformat()], {"PATH": "/nonexistent"}, "none was found"),
    ],
)  # fmt: skip
def test_bad_input_is_exit_2_and_one_sentence(
    area: dict[str, Any], data: dict[str, Any], tmp_path: Path, args: list[str], env: dict[str, str],
    sentence: str,
) -> None:  # fmt: skip
    done = report(data["settings"], *args, "--pdf", str(tmp_path / "x.pdf"), **env)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert sentence in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "x.pdf").exists()
