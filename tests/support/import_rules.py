"""The layer rules of docs/ARCHITECTURE.md as data, and an AST checker of a source tree against them.

A *layer* is a dotted package prefix (``privacy.keys``); a module belongs to the longest layer
that prefixes it. A module may import its own layer and the module prefixes its layer allows;
anything else among the layers is a violation. Every import counts, including ones inside
functions (a lazy import is still a dependency). Product layers must also not name a pipeline or
release table in SQL: they read released data through ``releases`` only.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ALLOWED: dict[str, tuple[str, ...]] = {
    "hexpulse": (),
    "simulator": ("hexpulse",),
    "privacy": ("hexpulse",),
    "privacy.keys": ("hexpulse", "privacy"),
    "ingest": ("hexpulse", "privacy.keys"),
    "aggregate": ("hexpulse", "ingest", "privacy.keys"),
    # The day's release-noise key lives in the key ring, next to the pseudonym keys (PRIVACY.md §5).
    "privacy.release": ("hexpulse", "privacy", "privacy.keys"),
    "releases": ("hexpulse",),
    # Alerts read released zone values through the feed; no pipeline, no API.
    "alerts": ("hexpulse", "releases"),
    # The API publishes the release plan (/v1/privacy): budget and ε arithmetic, the 95% z; no store.
    # It computes the variance of sums from a window's plan: the pure post-processing modules.
    "api": (
        "hexpulse",
        "releases",
        "privacy.release.budget",
        "privacy.release.mechanisms",
        "privacy.release.accounting",
        "privacy.release.consistency",
        "privacy.release.covariance",
        "privacy.release.plans",
        "privacy.release.exceptions",
        "privacy.release.shares",
        "alerts",
        "opendata.dataset",
        "opendata.index",
        "tourism.areas",
        "tourism.hourly",
        "tourism.report",
    ),
    # Open data is a product: it follows the release feed and reads released data only.
    "opendata": ("hexpulse", "releases"),
    # Tourism is a product like open data: released data only through releases/.
    # The report states the daily tourism share of the budget plan (pure parsing, no store).
    "tourism": ("hexpulse", "releases", "privacy.release.shares"),
}
"""Layer → the module prefixes it may import besides its own layer."""

EXCEPTIONS: dict[tuple[str, str], str] = {
    ("privacy/keys/cli.py", "privacy.release.retention"):
        "'hexpulse keyring retention' runs the release retention from the key commands",
}  # fmt: skip
"""(file, imported module) pairs allowed against the rules, each with its reason."""

PRODUCTS = ("api", "alerts", "opendata", "tourism")
"""Layers that serve released data; they read it only through ``releases``."""

_TABLE_SQL = re.compile(
    r"\b(?:FROM|JOIN|INTO|TABLE)\s+(release_windows|release_cells|release_zones|release_traffic|release_zone_traffic|release_tourism_daily|release_tourism_days|budget_ledger|release_ledger|release_intents|feed_cursors|partials|progress|tourism_presence|traffic_moving)\b",
    re.IGNORECASE,
)


def layer_of(module: str) -> str | None:
    """The longest layer prefixing ``module`` (None for modules outside every layer)."""
    best = None
    for layer in ALLOWED:
        if (module == layer or module.startswith(layer + ".")) and (best is None or len(layer) > len(best)):
            best = layer
    return best


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # ``from privacy import release`` imports privacy.release itself
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names if alias.name != "*"]
    return found


def _allowed(layer: str, target: str) -> bool:
    # A prefix allows its own layer only: "privacy" allows privacy.exceptions, not privacy.keys.
    return any(
        (target == p or target.startswith(p + ".")) and layer_of(target) == layer_of(p)
        for p in ALLOWED[layer]
    )


def violations(root: Path) -> list[str]:
    """Every import or SQL table name under ``root`` that breaks the rules, as ``file:line: what``."""
    out: list[str] = []
    for top in sorted({layer.split(".")[0] for layer in ALLOWED}):
        for path in sorted((root / top).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            module = _module_name(root, path)
            own = layer_of(module)
            if own is None:
                continue
            tree = ast.parse(path.read_text(), filename=rel)
            for line, target in _imports(tree, module, path.name == "__init__.py"):
                other = layer_of(target)
                if other is None or other == own or _allowed(own, target):
                    continue
                if any(rel == f and (target == m or target.startswith(m + ".")) for f, m in EXCEPTIONS):
                    continue
                out.append(f"{rel}:{line}: {own} imports {target}")
            if own.split(".")[0] in PRODUCTS:
                for node in ast.walk(tree):
                    if isinstance(node, ast.Constant) and isinstance(node.value, str):
                        match = _TABLE_SQL.search(node.value)
                        if match:
                            out.append(f"{rel}:{node.lineno}: {own} names table {match.group(1)} in SQL")
    return out
