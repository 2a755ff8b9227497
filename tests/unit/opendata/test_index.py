"""The open-data index and the day folders: completeness by rename, retention, escaping."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from opendata.dataset import FILES, exported_days, remove_stale
from opendata.index import render_index


def _day(root: Path, name: str) -> None:
    (root / name).mkdir(parents=True)
    for f in FILES:
        (root / name / f).write_text("x")


def test_index_lists_days_newest_first_with_every_file(tmp_path: Path) -> None:
    _day(tmp_path, "2026-11-29")
    _day(tmp_path, "2026-11-30")
    (tmp_path / ".partial-2026-12-01-1").mkdir()  # an export in flight is not a day
    (tmp_path / "notes<script>").mkdir()  # nor is anything else
    html = render_index(tmp_path, retention_days=400)
    assert html.index("2026-11-30/README.md") < html.index("2026-11-29/README.md")
    for f in FILES:
        assert f'href="2026-11-30/{f}"' in html
    assert "<script" not in html and "partial" not in html
    assert "400 days" in html


def test_empty_index_says_why(tmp_path: Path) -> None:
    assert 'id="empty"' in render_index(tmp_path / "none", retention_days=1)


def test_retention_removes_old_days_and_stale_partials(tmp_path: Path) -> None:
    for d in ("2026-10-01", "2026-11-29", "2026-11-30"):
        _day(tmp_path, d)
    (tmp_path / ".partial-2026-12-01-999999").mkdir()
    removed = remove_stale(tmp_path, keep_from=date(2026, 11, 1))
    assert removed == [date(2026, 10, 1)]
    assert exported_days(tmp_path) == [date(2026, 11, 30), date(2026, 11, 29)]
    assert not (tmp_path / ".partial-2026-12-01-999999").exists()
