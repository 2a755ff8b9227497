"""The open-data index page (``/open-data/``): every exported day and its files, as escaped HTML
with no script and no external resource (it is open and must render offline)."""

from __future__ import annotations

from html import escape
from pathlib import Path

from opendata.dataset import FILES, day_folder, exported_days

_DESCRIPTIONS = {
    "README.md": "what the numbers are and are not",
    "datapackage.json": "Frictionless Data Package: columns, types, units, hashes",
    "cells.csv": "per window and H3 cell: estimates, σ, 95% interval, display values",
    "cells.parquet": "the same as GeoParquet, with each cell's outline",
    "zones.csv": "per window and registered zone",
    "tourism.csv": "tourism areas: visitors and dwell per local day (the day before)",
    "tourism.parquet": "the same as GeoParquet, with each area's zone polygon",
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}"
    "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem .5rem;"
    "text-align:left}th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}"
)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"


def render_index(root: Path, retention_days: int) -> str:
    """The index of every exported day under ``root``, newest first."""
    rows = []
    for day in exported_days(root):
        folder = day_folder(root, day)
        for i, name in enumerate(FILES):
            path = folder / name
            if not path.is_file():
                continue
            href = escape(f"{day.isoformat()}/{name}", quote=True)
            day_cell = f"<td>{escape(day.isoformat())}</td>" if i == 0 else "<td></td>"
            rows.append(f"<tr>{day_cell}<td><a href=\"{href}\">{escape(name)}</a></td>"
                        f"<td>{escape(_DESCRIPTIONS[name])}</td>"
                        f"<td class=\"n\">{escape(_size(path.stat().st_size))}</td></tr>")  # fmt: skip
    body = (
        "<table><thead><tr><th>day (UTC)</th><th>file</th><th>contents</th><th>size</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p id="empty">No day has been exported yet: a day is exported once it is fully released.</p>'
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<title>hexpulse open data</title><link rel="icon" href="data:,">'
        f"<style>{_STYLE}</style></head><body><h1>hexpulse open data</h1>"
        "<p>Differentially private crowd density per H3 cell and registered zone, one folder per "
        "released UTC day, free to download (CC BY 4.0). Every value is an estimate with its standard "
        "error and 95% interval; each day's README says what the numbers are and are not, and "
        '<a href="/privacy">the privacy page</a> states the guarantee. Days are kept for '
        f"{retention_days} days.</p>{body}</body></html>"
    )
