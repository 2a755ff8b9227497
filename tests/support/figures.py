"""Figures measured by the long reliability runs (``make faults``, ``make fuzz``): each is one JSON
line appended to ``$RELIABILITY_FIGURES`` (default ``.local/reliability-figures.jsonl``), so the
make target can print what RELIABILITY.md quotes. ``FULL`` gates the long runs out of ``make test``."""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
import pytest

from tests.support.paths import REPO

FULL = os.environ.get("RELIABILITY_FULL") == "1"
needs_full = pytest.mark.skipif(not FULL, reason="a long reliability run: `make faults` / `make fuzz`")


def figures_path() -> Path:
    return Path(os.environ.get("RELIABILITY_FIGURES", str(REPO / ".local" / "reliability-figures.jsonl")))


def record_figure(test: str, name: str, value: float | int | str, unit: str) -> None:
    """Append one measured figure (``unit`` says what ``value`` counts, e.g. 'MiB', 's', 'rounds')."""
    path = figures_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "test": test, "name": name,
            "value": value, "unit": unit}  # fmt: skip
    with path.open("ab") as fh:
        fh.write(orjson.dumps(line) + b"\n")


def main() -> None:
    """Print the figures of the last run (``python -m tests.support.figures``), one per line."""
    path = figures_path()
    if not path.exists():
        print(f"no figures recorded in {path}")
        return
    for raw in path.read_bytes().splitlines():
        f = orjson.loads(raw)
        print(f"{f['at']}  {f['test']:<20} {f['name']}: {f['value']} {f['unit']}")


if __name__ == "__main__":
    main()
