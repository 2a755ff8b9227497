"""The layer rules of docs/ARCHITECTURE.md hold for the repository, and the checker catches a
forbidden import or a product's direct read of a table (so a passing run means something)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tests.support.import_rules import ALLOWED, EXCEPTIONS, layer_of, violations
from tests.support.paths import REPO


def test_the_repository_keeps_the_layer_rules() -> None:
    assert violations(REPO) == []


def test_every_exception_is_still_needed() -> None:
    for path, module in EXCEPTIONS:
        assert module in (REPO / path).read_text(), f"{path} no longer imports {module}: drop the exception"


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


@pytest.mark.parametrize(
    ("rel", "source", "expected"),
    [
        ("hexpulse/bad.py", "from aggregate.consumer import Loop\n", "hexpulse imports aggregate.consumer"),
        ("hexpulse/lazy.py", "def f():\n    import simulator.city\n", "hexpulse imports simulator.city"),
        ("api/bad.py", "import ingest\n", "api imports ingest"),
        ("api/bad.py", "from privacy.keys import keyring\n", "api imports privacy.keys"),
        ("api/bad.py", "from privacy import release\n", "api imports privacy.release"),
        ("ingest/bad.py", "from aggregate.state import Aggregator\n", "ingest imports aggregate.state"),
        ("releases/bad.py", "from api.state import ApiState\n", "releases imports api.state"),
        ("privacy/release/bad.py", "from aggregate import windows\n", "privacy.release imports aggregate"),
        ("api/sql.py", 'Q = "SELECT 1 FROM release_cells"\n', "api names table release_cells in SQL"),
    ],
)
def test_a_forbidden_import_is_caught(tmp_path: Path, rel: str, source: str, expected: str) -> None:
    root = _tree(tmp_path, {rel: source, "api/ok.py": "from releases.reader import ReleaseReader\n"})
    found = violations(root)
    assert len([v for v in found if v.startswith(f"{rel}:")]) >= 1
    assert any(v.endswith(expected) for v in found), found
    assert not any(v.startswith("api/ok.py") for v in found)


def test_allowed_imports_pass(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "aggregate/ok.py": "from ingest import Ingestor\nfrom privacy.keys.pseudonyms import X\n",
        "api/ok.py": "from privacy.release.budget import eps_from_rho\nfrom hexpulse.times import utc\n",
        "privacy/keys/ok.py": "from privacy.exceptions import PrivacyError\nfrom . import keyring\n",
        "api/keys.py": 'Q = "SELECT key_id FROM api_keys FINAL"\n',
    })  # fmt: skip
    assert violations(root) == []


def test_layers_are_the_packages() -> None:
    assert layer_of("privacy.keys.keyring") == "privacy.keys"
    assert layer_of("privacy.exceptions") == "privacy"
    assert layer_of("numpy") is None
    # Every top-level package of the repository is a layer (a new one must say what it may import).
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests", "benchmarks"}
    assert packages == {layer for layer in ALLOWED if "." not in layer}


def test_the_architecture_document_states_the_rules() -> None:
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    for layer, allowed in ALLOWED.items():
        row = re.search(rf"^\| `{re.escape(layer)}/?` \|(.*)\|$", text, re.MULTILINE)
        assert row, f"ARCHITECTURE.md has no layer-rule row for {layer}"
        for prefix in allowed:
            assert f"`{prefix}`" in row.group(1), f"ARCHITECTURE.md: {layer} may import {prefix}"


def _documented_tree() -> set[str]:
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    block = text.split("## The tree", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    stack: list[str] = []
    paths: set[str] = set()
    for line in block.splitlines():
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name = line.split()[0]
        stack[depth:] = [name.rstrip("/")]
        paths.add("/".join(stack) + ("/" if name.endswith("/") else ""))
    return paths


def test_the_architecture_tree_matches_the_files() -> None:
    documented = _documented_tree()
    tops = sorted({layer.split(".")[0] for layer in ALLOWED})
    on_disk = {
        p.relative_to(REPO).as_posix()
        for top in tops
        for p in (REPO / top).rglob("*.py")
        if p.name != "__init__.py"
    }
    assert sorted(on_disk - documented) == [], "modules missing from ARCHITECTURE.md's tree"
    missing = sorted(p for p in documented if not (REPO / p).exists())
    assert missing == [], "ARCHITECTURE.md's tree names files that do not exist"
