"""Stage 2 of ingest: type and range checks, H3 binning and the service-area filter, vectorized.

Works on a whole poll's worth of pings at once. The common case (every value of a field has an
allowed type) costs one ``set(map(type, ...))`` and one ``np.array`` per field; only a poll that
contains a badly typed value pays an element-wise Python pass over that field.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from ingest.binning import CellBinner
from ingest.contract import PING_REASONS, SOURCES, Limits, Reason
from ingest.decode import Decoded

OK = 0
CODE: dict[Reason, int] = {r: i + 1 for i, r in enumerate(PING_REASONS)}
REASON_OF_CODE: dict[int, str] = {i + 1: r.value for i, r in enumerate(PING_REASONS)}

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_INT = frozenset({int})
_NUM = frozenset({int, float})
_NUM_OR_NONE = frozenset({int, float, type(None)})
_NoneType = type(None)
_NONE_ONLY = {_NoneType}
_SOURCES_OR_NONE = frozenset({*SOURCES, None})
Mask = npt.NDArray[np.bool_]
_get_ts, _get_lat, _get_lon, _get_spd = (attrgetter(f) for f in ("ts", "lat", "lon", "spd"))


@dataclass
class Columns:
    """Typed columns of every decoded ping and its verdict ``code`` (0 = accepted)."""

    code: npt.NDArray[np.int8]
    ts: npt.NDArray[np.int64]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    spd: npt.NDArray[np.float64]
    cell: npt.NDArray[np.uint64]


def _types(values: list[Any]) -> npt.NDArray[np.object_]:
    """The type of every value, as an object array (a C-level scan)."""
    return np.fromiter(map(type, values), dtype=object, count=len(values))


def _of_type(types: npt.NDArray[np.object_], kind: type) -> Mask:
    mask: Mask = types == kind  # noqa: E721 - element-wise over an array of types, not a type test
    return mask


def _replaced(values: list[Any], where: Mask, filler: Any) -> list[Any]:
    """A copy of ``values`` with ``filler`` at ``where`` (few positions: a Python loop is fine)."""
    clean = list(values)
    for pos in np.flatnonzero(where).tolist():
        clean[pos] = filler
    return clean


def _ints(values: list[Any]) -> tuple[npt.NDArray[np.int64], Mask | None, Mask | None]:
    """int64 column; (values, missing mask, bad-type mask). Integers beyond int64 saturate."""
    if set(map(type, values)) <= _INT:
        try:
            return np.array(values, dtype=np.int64), None, None
        except OverflowError:
            pass
    types = _types(values)
    missing = _of_type(types, _NoneType)
    good = _of_type(types, int)
    clean = _replaced(values, ~good, 0)
    try:
        column = np.array(clean, dtype=np.int64)
    except OverflowError:  # an integer beyond int64: saturate, so it fails the time checks
        column = np.array([min(max(v, _I64_MIN), _I64_MAX) for v in clean], dtype=np.int64)
    return column, missing, ~good & ~missing


def _floats(values: list[Any], required: bool) -> tuple[npt.NDArray[np.float64], Mask | None, Mask | None]:
    """float64 column (NaN where absent); (values, missing mask, bad-type mask)."""
    allowed = _NUM if required else _NUM_OR_NONE
    kinds = set(map(type, values))
    if kinds == _NONE_ONLY and not required:  # an optional field no ping carries: common, cheap
        return np.full(len(values), np.nan), None, None
    if kinds <= allowed:
        try:
            return np.array(values, dtype=np.float64), None, None
        except OverflowError:
            pass
    types = _types(values)
    missing = _of_type(types, _NoneType)
    good = _of_type(types, float) | _of_type(types, int)
    clean = _replaced(values, ~good, None)  # None becomes NaN in a float64 array
    try:
        column = np.array(clean, dtype=np.float64)
    except OverflowError:  # an integer beyond the double range
        column = np.array([None if v is None else _to_float(v) for v in clean], dtype=np.float64)
    return column, (missing if required else None), ~good & ~missing


def _to_float(v: float) -> float:
    try:
        return float(v)
    except OverflowError:
        return float("inf") if v > 0 else float("-inf")


def _source_bad(values: list[Any]) -> tuple[Mask | None, Mask | None]:
    """(bad-type mask, bad-value mask) of ``src``; None when all are fine."""
    try:
        if set(values) <= _SOURCES_OR_NONE:
            return None, None
    except TypeError:  # an unhashable value (array/object): handled below
        pass
    types = _types(values)
    is_str = _of_type(types, str)
    bad_type = ~is_str & ~_of_type(types, _NoneType)
    clean = _replaced(values, bad_type, None)  # only str and None left: all hashable
    known = np.fromiter(map(_SOURCES_OR_NONE.__contains__, clean), dtype=bool, count=len(clean))
    return bad_type, is_str & ~known


@dataclass
class _Raw:
    """Typed columns before the range checks, with the type verdicts of the general path."""

    ts: npt.NDArray[np.int64]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    acc: npt.NDArray[np.float64]
    spd: npt.NDArray[np.float64]
    hdg: npt.NDArray[np.float64]
    missing: Mask | None
    bad_type: Mask | None
    bad_source: Mask | None


def _any(masks: list[Mask | None]) -> Mask | None:
    present = [m for m in masks if m is not None]
    return np.logical_or.reduce(present) if present else None


def _general_columns(d: Decoded) -> _Raw:
    """Columns of the general path's ping dicts, with per-ping type verdicts."""
    get = d.field_values
    ts, ts_missing, ts_bad = _ints(get("ts"))
    lat, lat_missing, lat_bad = _floats(get("lat"), required=True)
    lon, lon_missing, lon_bad = _floats(get("lon"), required=True)
    acc, _, acc_bad = _floats(get("acc"), required=False)
    spd, _, spd_bad = _floats(get("spd"), required=False)
    hdg, _, hdg_bad = _floats(get("hdg"), required=False)
    src_bad_type, src_bad_value = _source_bad(get("src"))
    return _Raw(
        ts,
        lat,
        lon,
        acc,
        spd,
        hdg,
        missing=_any([ts_missing, lat_missing, lon_missing]),
        bad_type=_any([ts_bad, lat_bad, lon_bad, acc_bad, spd_bad, hdg_bad, src_bad_type]),
        bad_source=src_bad_value,
    )


def _typed_columns(d: Decoded) -> _Raw:
    """Columns of the fast path's structs: types and field ranges are checked already, and only
    the fields used after validation are read (``acc``/``hdg``/``src`` passed; NaN stands in)."""
    pings = d.typed_pings
    n = len(pings)
    nan = np.full(n, np.nan)
    return _Raw(
        ts=np.fromiter(map(_get_ts, pings), dtype=np.int64, count=n),
        lat=np.fromiter(map(_get_lat, pings), dtype=np.float64, count=n),
        lon=np.fromiter(map(_get_lon, pings), dtype=np.float64, count=n),
        acc=nan,
        spd=np.fromiter(map(_get_spd, pings), dtype=np.float64, count=n),
        hdg=nan,
        missing=None,
        bad_type=None,
        bad_source=None,
    )


def _joined(typed: _Raw, general: _Raw) -> _Raw:
    """Typed rows first, then general ones (the order ``ingest.Ingestor`` lays pings out in)."""

    def mask(m: Mask | None) -> Mask | None:
        return None if m is None else np.concatenate([np.zeros(typed.ts.size, dtype=bool), m])

    def both(name: str) -> Any:
        return np.concatenate([getattr(typed, name), getattr(general, name)])

    return _Raw(
        ts=both("ts"),
        lat=both("lat"),
        lon=both("lon"),
        acc=both("acc"),
        spd=both("spd"),
        hdg=both("hdg"),
        missing=mask(general.missing),
        bad_type=mask(general.bad_type),
        bad_source=mask(general.bad_source),
    )


def validate(d: Decoded, ref_ms: npt.NDArray[np.int64], limits: Limits, binner: CellBinner) -> Columns:
    """Check every ping of ``d`` against the contract; ``ref_ms`` is "now" per ping (ms UTC).

    Rows are the typed (fast-path) pings followed by the general path's, each in message order.
    ``binner`` bins at the base resolution and knows the service area (``outside_area``).
    """
    if not d.pings:
        raw = _typed_columns(d)
    elif not d.typed_pings:
        raw = _general_columns(d)
    else:
        raw = _joined(_typed_columns(d), _general_columns(d))
    ts, lat, lon, acc, spd, hdg = raw.ts, raw.lat, raw.lon, raw.acc, raw.spd, raw.hdg
    n = ts.size

    checks: list[tuple[Reason, Mask | None]] = [  # in the order of docs/PINGS.md
        (Reason.MISSING_FIELD, raw.missing),
        (Reason.BAD_TYPE, raw.bad_type),
    ]
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(lat) & np.isfinite(lon) & ~np.isinf(acc) & ~np.isinf(spd) & ~np.isinf(hdg)
        checks += [
            (Reason.NON_FINITE, ~finite),
            (Reason.LAT_RANGE, np.abs(lat) > 90.0),
            (Reason.LON_RANGE, np.abs(lon) > 180.0),
            (Reason.NULL_ISLAND, (lat == 0.0) & (lon == 0.0)),
            (Reason.ACCURACY, (acc < 0.0) | (acc > limits.max_accuracy_m)),
            (Reason.SPEED_RANGE, (spd < 0.0) | (spd > limits.max_speed_mps)),
            (Reason.HEADING_RANGE, (hdg < 0.0) | (hdg >= 360.0)),
        ]
    checks += [
        (Reason.BAD_SOURCE, raw.bad_source),
        (Reason.FUTURE_TS, ts > ref_ms + limits.max_clock_skew_ms),
        (Reason.STALE_TS, ts < ref_ms - limits.max_ping_age_ms),
    ]
    code = np.zeros(n, dtype=np.int8)
    # Lowest priority first, so that where several checks fail the first one in the table wins.
    for reason, mask in reversed(checks):
        if mask is not None and mask.any():
            code[mask] = CODE[reason]
    if d.not_object:
        at = len(d.typed_pings) + np.asarray(d.not_object, dtype=np.int64)
        code[at] = CODE[Reason.PING_NOT_OBJECT]

    cell = np.zeros(n, dtype=np.uint64)
    ok = np.flatnonzero(code == OK)
    if ok.size:
        binned, inside = binner.bin(lat[ok], lon[ok])
        cell[ok] = binned
        code[ok[~inside]] = CODE[Reason.OUTSIDE_AREA]
    return Columns(code=code, ts=ts, lat=lat, lon=lon, spd=spd, cell=cell)
