"""The README documents every setting (docs stay current with the code)."""

from __future__ import annotations

import re

from hexpulse.settings import Settings
from tests.support.paths import REPO

README = (REPO / "README.md").read_text()


def _documented() -> set[str]:
    names: set[str] = set()
    for cell in re.findall(r"`(HEXPULSE_[A-Z0-9_]+)`(?:\s*/\s*`(_?[A-Z0-9_]+)`)*", README):
        names.update(c for c in cell if c)
    # "`HEXPULSE_KAFKA_SSL_CAFILE` / `_CERTFILE`" style rows: expand suffixes against their stem.
    for row in re.findall(r"\|\s*(`HEXPULSE_[^|]+)\|", README):
        parts = re.findall(r"`([A-Z0-9_]+)`", row)
        if parts:
            stem = parts[0].rsplit("_", 1)[0]
            for part in parts[1:]:
                names.add(stem + part if part.startswith("_") else part)
    return names


def test_every_setting_is_in_the_readme() -> None:
    documented = _documented()
    missing = sorted(
        f"HEXPULSE_{name.upper()}"
        for name in Settings.model_fields
        if f"HEXPULSE_{name.upper()}" not in documented
    )
    assert not missing, f"settings missing from README.md: {missing}"
