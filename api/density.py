"""Density payloads: released cells of one window → GeoJSON or compact rows, cached as bytes.

A payload depends only on (window, res, format, cells asked for) and released windows never
change, so the serialized bytes and their ETag are cached in process.
"""

from __future__ import annotations

import gzip
import hashlib
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson

from api.geo import BBox, cell_area_km2, cell_hex, cell_ring_json
from hexpulse.settings import Settings
from privacy.release.mechanisms import Z95
from releases.cache import Lru
from releases.models import CellRow, Window
from releases.smoothing import Smoothed

ROW_COLUMNS = [
    "cell", "count", "ci95_low", "ci95_high", "density_per_km2", "moving", "mean_speed_kmh",
]  # fmt: skip
SMOOTHED_COLUMNS = ["count_smoothed", "count_smoothed_ci95_low", "count_smoothed_ci95_high"]
SMOOTHING_NOTE = (
    "count_smoothed is post-processing of released values only (no extra privacy cost): it lowers the "
    "noise of steady cells and lags a crowd that arrives or leaves; count is the raw estimate."
)

GUARANTEE = (
    "zCDP per device-day: each device contributes to at most {l} cell(s) per window; noise is drawn once "
    "per window, resolution, cell and metric; the daily spend never exceeds ρ = {rho}."
)
NOTE = (
    "Counts are noisy (σ in the tens per cell with default settings): read every number with its 95% "
    "interval. Small counts are mostly noise."
)


def iso(window_time: Any) -> str:
    return str(window_time.strftime("%Y-%m-%dT%H:%M:%SZ"))


def window_json(window: Window) -> dict[str, Any]:
    return {
        "window_start": iso(window.start),
        "window_end": iso(window.end),
        "released_at": iso(window.released_at),
        "release_lag_s": window.lag_s,
    }


def privacy_json(settings: Settings, window: Window) -> dict[str, Any]:
    return {
        "guarantee": GUARANTEE.format(l=settings.cells_per_window, rho=settings.budget_rho_per_day),
        "unit": "device-day",
        "mechanism": window.mechanism,
        "rho_window": window.rho,
        "budget_rho_per_day": settings.budget_rho_per_day,
        "note": NOTE,
    }


@dataclass(frozen=True)
class Smoothing:
    """Smoothed counts of one (window, res) and what they were computed from."""

    values: Smoothed
    windows: list[Window]
    method: str

    def head(self) -> dict[str, Any]:
        return {
            "smoothed": True,
            "method": self.method,
            "windows_used": len(self.windows),
            "from_window_start": iso(self.windows[0].start) if self.windows else None,
            "note": SMOOTHING_NOTE,
        }

    def of(self, cell: int) -> tuple[float, float, float] | None:
        """(value, ci95 low, ci95 high) for display, devices, cut at 0 (counts are ≥ 0)."""
        hit = self.values.get(cell)
        if hit is None:
            return None
        x, sd = hit
        return round(max(0.0, x), 1), round(max(0.0, x - Z95 * sd), 3), round(max(0.0, x + Z95 * sd), 3)


def _interval(lo: float | None, hi: float | None) -> list[float] | None:
    if lo is None or hi is None:
        return None
    return [round(lo, 3), round(hi, 3)]


def _properties(cell: int, hexid: str, row: CellRow, res: int, start: str, end: str) -> dict[str, Any]:
    area = cell_area_km2(cell)
    return {
        "cell": hexid,
        "res": res,
        "window_start": start,
        "window_end": end,
        "count": max(0, int(row.count)),
        "count_sigma": round(row.count_sigma, 3),
        "count_est": round(row.count_est, 3),
        "ci95": [round(row.count_lo, 3), round(row.count_hi, 3)],
        "density_per_km2": round(max(0, row.count) / area, 3),
        "density_ci95": [round(row.count_lo / area, 3), round(row.count_hi / area, 3)],
        "area_km2": round(area, 6),
        "moving": max(0, int(row.moving)),
        "moving_ci95": [round(row.moving_lo, 3), round(row.moving_hi, 3)],
        "moving_est": None if math.isnan(row.moving_est) else round(row.moving_est, 3),  # NaN: not released
        "mean_speed_kmh": None if row.speed_kmh is None else round(row.speed_kmh, 2),
        "speed_ci95_kmh": _interval(row.speed_lo_kmh, row.speed_hi_kmh),
    }


def _smoothed_properties(hit: tuple[float, float, float] | None) -> dict[str, Any]:
    if hit is None:
        return {"smoothed": True, "count_smoothed": None, "count_smoothed_ci95": None}
    return {"smoothed": True, "count_smoothed": hit[0], "count_smoothed_ci95": [hit[1], hit[2]]}


def build(
    settings: Settings,
    window: Window,
    res: int,
    bbox: BBox,
    cells: frozenset[int],
    released: dict[int, CellRow],
    fmt: str,
    smoothing: Smoothing | None = None,
) -> bytes:
    """Serialize the released cells of ``window`` among ``cells`` (sorted by cell id), with their
    smoothed counts next to the raw ones when ``smoothing`` is given."""
    chosen = (
        sorted(c for c in cells if c in released)
        if len(cells) < len(released)
        else sorted(c for c in released if c in cells)
    )
    head: dict[str, Any] = {
        "window": window_json(window),
        "resolution": res,
        "bbox": list(bbox),
        "privacy": privacy_json(settings, window),
    }
    if smoothing is not None:
        head["smoothing"] = smoothing.head()
    if fmt == "rows":
        rows = []
        for cell in chosen:
            row = released[cell]
            rows.append([
                cell_hex(cell), max(0, int(row.count)), round(row.count_lo, 3), round(row.count_hi, 3),
                round(max(0, row.count) / cell_area_km2(cell), 3), max(0, int(row.moving)),
                None if row.speed_kmh is None else round(row.speed_kmh, 2),
            ])  # fmt: skip
            if smoothing is not None:
                rows[-1] += list(smoothing.of(cell) or (None, None, None))
        columns = ROW_COLUMNS + SMOOTHED_COLUMNS if smoothing is not None else ROW_COLUMNS
        return orjson.dumps({**head, "columns": columns, "rows": rows})
    start, end = head["window"]["window_start"], head["window"]["window_end"]
    # Features are spliced as bytes so the cached ring JSON of each cell is reused as is.
    parts = []
    for cell in chosen:
        hexid = cell_hex(cell)
        props_json = _properties(cell, hexid, released[cell], res, start, end)
        if smoothing is not None:
            props_json |= _smoothed_properties(smoothing.of(cell))
        props = orjson.dumps(props_json)
        parts.append(
            b'{"type":"Feature","id":"'
            + hexid.encode()
            + b'","geometry":{"type":"Polygon","coordinates":'
            + cell_ring_json(cell)
            + b'},"properties":'
            + props
            + b"}"
        )
    head_bytes = orjson.dumps({"type": "FeatureCollection", **head})
    return head_bytes[:-1] + b',"features":[' + b",".join(parts) + b"]}"


@dataclass(frozen=True)
class Payload:
    """One serialized response: plain and gzip bodies (compressed once, served many times)."""

    body: bytes
    gzip: bytes
    etag: str

    @cached_property
    def text(self) -> str:
        """The body as text, for SSE events (decoded once for all subscribers)."""
        return self.body.decode()


class PayloadCache:
    """LRU of serialized payloads with their ETag."""

    def __init__(self, entries: int) -> None:
        self._lru = Lru(entries)
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[Any, ...]) -> Payload | None:
        hit: Payload | None = self._lru.get(key)
        if hit is None:
            self.misses += 1
        else:
            self.hits += 1
        return hit

    def put(self, key: tuple[Any, ...], body: bytes) -> Payload:
        # Level 5: a city-wide window (~3 MB of GeoJSON) shrinks ~8x for ~30 ms, paid once.
        # Weak: the same entity is served plain or gzip-encoded under one tag.
        etag = 'W/"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        entry = Payload(body, gzip.compress(body, compresslevel=5, mtime=0), etag)
        self._lru.put(key, entry)
        return entry
