"""Where the repository's files are, for tests that read them (README, deploy/, frontend/)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
