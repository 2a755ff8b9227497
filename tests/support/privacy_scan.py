"""A leak scanner for tests (nothing raw persists, docs/KEYS.md): given the secrets of a run — upstream
device strings, pseudonyms and precise coordinates — find any trace of them in ClickHouse tables,
log lines, Prometheus text or DLQ records.

What counts as a trace:
- a device string as a substring (text, or UTF-8 bytes in binary values);
- a pseudonym as an integer cell (unsigned or two's-complement signed 64-bit), as decimal or
  16-digit hex text, or as its 8 raw bytes (little or big endian);
- a coordinate with more than 3 decimals: a number equal (to a relative ``COORD_RTOL``) to a
  known coordinate, to it rounded or truncated to 4–7 decimals, or to any of those stored as a
  32-bit float; or an integer equal to it scaled by 1e4…1e7. A coordinate at 3 decimals (~100 m)
  is allowed. Matching is exact rather than "close to", because released floats (σ, intervals,
  km/h) share the coordinates' numeric range: with ~300 targets a tolerance of 1e-6 would give an
  unrelated value a ~1e-5 chance of a false alarm, and a run writes thousands of such values;
  at 1e-9 relative the chance is below 1e-8 per value.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

COORD_RTOL = 1e-9
_NUMBER = re.compile(r"-?\d+\.\d+(?:[eE][-+]?\d+)?|-?\d+")


@dataclass
class RunSecrets:
    """What must never appear in clear after a run."""

    devices: set[str] = field(default_factory=set)
    pseudonyms: set[int] = field(default_factory=set)
    coordinates: set[float] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._refresh()

    def _refresh(self) -> None:
        precise = [c for c in self.coordinates if abs(c * 1000 - round(c * 1000)) > 1e-6]
        targets: set[float] = set()
        for c in precise:
            forms = (
                [c] + [round(c, d) for d in (4, 5, 6, 7)] + [math.trunc(c * 10**d) / 10**d for d in (4, 5, 6)]
            )
            targets.update(forms)
            targets.update(float(np.float32(f)) for f in forms)
        self._coord_targets = sorted(targets)
        self._coord_ints = {int(round(c * 10**k)) for c in precise for k in (4, 5, 6, 7)}
        self._pseudo_ints = set(self.pseudonyms) | {p - 2**64 for p in self.pseudonyms if p >= 2**63}
        self._pseudo_text = {str(p) for p in self._pseudo_ints} | {f"{p:016x}" for p in self.pseudonyms}
        self._pseudo_bytes = {p.to_bytes(8, "little") for p in self.pseudonyms} | {
            p.to_bytes(8, "big") for p in self.pseudonyms
        }
        self._device_bytes = {d.encode() for d in self.devices}

    def add(
        self, *, devices: Iterable[str] = (), pseudonyms: Iterable[int] = (), coords: Iterable[float] = ()
    ) -> None:
        self.devices.update(devices)
        self.pseudonyms.update(pseudonyms)
        self.coordinates.update(coords)
        self._refresh()

    # ---- single values ----------------------------------------------------------------------
    def _near_coordinate(self, x: float) -> bool:
        if not math.isfinite(x) or abs(x * 1000 - round(x * 1000)) <= 1e-6:
            return False  # at most 3 decimals: allowed
        tol = abs(x) * COORD_RTOL
        i = bisect.bisect_left(self._coord_targets, x - tol)
        return i < len(self._coord_targets) and self._coord_targets[i] <= x + tol

    def value_leaks(self, value: Any) -> list[str]:
        """Why ``value`` (one table cell, header, metric sample …) leaks a secret; [] if clean."""
        if value is None or isinstance(value, bool):
            return []
        if isinstance(value, int):
            out = []
            if value in self._pseudo_ints:
                out.append("pseudonym as integer")
            if value in self._coord_ints:
                out.append("scaled precise coordinate")
            return out
        if isinstance(value, float):
            return ["precise coordinate"] if self._near_coordinate(value) else []
        if isinstance(value, bytes | bytearray | memoryview):
            raw = bytes(value)
            out = [f"device string {d[:40]!r}" for d in self._device_bytes if d in raw]
            out += ["pseudonym as raw bytes" for p in self._pseudo_bytes if p in raw]
            return out + self.text_leaks(raw.decode("latin-1"))
        if isinstance(value, str):
            return self.text_leaks(value)
        if isinstance(value, list | tuple | set | frozenset):
            return [why for item in value for why in self.value_leaks(item)]
        if isinstance(value, dict):
            return [why for kv in value.items() for why in self.value_leaks(kv)]
        return self.text_leaks(str(value))  # dates, decimals, UUIDs …

    def text_leaks(self, text: str, *, coordinates: bool = True) -> list[str]:
        """Leaks in ``text``; ``coordinates=False`` skips the coordinate check (for API bodies,
        whose H3 cell geometry legitimately carries 5-decimal vertices on the same grid as a
        rounded ping coordinate)."""
        out = [f"device string {d[:40]!r}" for d in self.devices if d in text]
        lowered = text.lower()
        out += ["pseudonym as text" for t in self._pseudo_text if t in lowered and _whole(lowered, t)]
        if not coordinates:
            return out
        for token in _NUMBER.findall(text):
            if "." in token or "e" in token.lower():
                if self._near_coordinate(float(token)) and _decimals(token) > 3:
                    out.append(f"precise coordinate {token}")
            elif int(token) in self._coord_ints:
                out.append(f"scaled precise coordinate {token}")
        return out


def _decimals(token: str) -> int:
    mantissa = token.lower().split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


def _whole(text: str, needle: str) -> bool:
    """``needle`` occurs not as part of a longer run of digits/hex digits."""
    start = 0
    while (i := text.find(needle, start)) >= 0:
        before = text[i - 1] if i else " "
        after = text[i + len(needle)] if i + len(needle) < len(text) else " "
        if not (before.isalnum() or after.isalnum()):
            return True
        start = i + 1
    return False


@dataclass
class Finding:
    where: str
    why: str
    excerpt: str


def scan_rows(
    secrets: RunSecrets, where: str, columns: list[str], rows: Iterable[tuple[Any, ...]]
) -> list[Finding]:
    found = []
    for row in rows:
        for name, value in zip(columns, row, strict=True):
            for why in secrets.value_leaks(value):
                found.append(Finding(f"{where}.{name}", why, repr(value)[:120]))
    return found


def scan_clickhouse(
    secrets: RunSecrets,
    client: Any,
    databases: Iterable[str],
    *,
    by_table: dict[str, RunSecrets] | None = None,
) -> tuple[list[Finding], dict[str, int]]:
    """Dump every table of ``databases``; return findings and the row count per table scanned.
    ``by_table``: bare table name → the secrets to look for in it instead (the exact tables that
    hold a live day's pseudonyms by design are searched for everything else)."""
    found: list[Finding] = []
    counts: dict[str, int] = {}
    for db in databases:
        tables = [r[0] for r in client.execute("SHOW TABLES FROM " + db)]
        for table in tables:
            rows, types = client.execute(f"SELECT * FROM {db}.{table}", with_column_types=True)
            counts[f"{db}.{table}"] = len(rows)
            mine = (by_table or {}).get(table, secrets)
            found += scan_rows(mine, f"{db}.{table}", [c for c, _ in types], rows)
    return found, counts


def scan_lines(
    secrets: RunSecrets, where: str, lines: Iterable[str], *, coordinates: bool = True
) -> list[Finding]:
    return [
        Finding(f"{where}:{n}", why, line[:160])
        for n, line in enumerate(lines, start=1)
        for why in secrets.text_leaks(line, coordinates=coordinates)
    ]


def scan_records(secrets: RunSecrets, where: str, records: Iterable[Any]) -> list[Finding]:
    """Kafka records (kafka-python ConsumerRecord): key, value and every header."""
    found = []
    for rec in records:
        place = f"{where}[p{rec.partition}@{rec.offset}]"
        parts: list[tuple[str, Any]] = [("key", rec.key), ("value", rec.value)]
        parts += [(f"header {k}", k) for k, _ in rec.headers] + [(f"header {k}", v) for k, v in rec.headers]
        for name, value in parts:
            for why in secrets.value_leaks(value):
                found.append(Finding(f"{place} {name}", why, repr(value)[:120]))
    return found
