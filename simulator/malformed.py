"""Malformed messages to inject, each failing exactly one check of docs/PINGS.md.

Every fault names the DLQ reason code ingest must give it (``ingest.contract.Reason`` values;
kept as strings here because the simulator sits below ingest). Each injected message yields
exactly one DLQ record and no accepted ping, so the ground truth of the valid pings is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson

from hexpulse.settings import Settings
from hexpulse.times import MS_PER_DAY


@dataclass(frozen=True)
class Malformed:
    """One injected message: Kafka key and value, expected reason, pings ingest counts for it."""

    key: bytes
    value: bytes
    reason: str
    pings: int


def _ping(ts: int, lat: float, lon: float) -> dict[str, object]:
    return {"ts": ts, "lat": lat, "lon": lon, "acc": 12.0, "src": "gnss"}


def _single(device: str, ping: dict[str, object], **extra: object) -> bytes:
    return orjson.dumps({"v": 1, "device": device, **ping, **extra})


Builder = Callable[[str, int, float, float, Settings], tuple[bytes, bytes, int]]


def _too_large(d: str, ts: int, lat: float, lon: float, s: Settings) -> tuple[bytes, bytes, int]:
    return d.encode(), _single(d, _ping(ts, lat, lon), pad="x" * s.max_message_bytes), 1


def _not_json(d: str, ts: int, lat: float, lon: float, s: Settings) -> tuple[bytes, bytes, int]:
    return d.encode(), _single(d, _ping(ts, lat, lon))[:-7], 1


def _not_object(d: str, ts: int, lat: float, lon: float, s: Settings) -> tuple[bytes, bytes, int]:
    return d.encode(), orjson.dumps([d, ts, lat, lon]), 1


def _bad_version(d: str, ts: int, lat: float, lon: float, s: Settings) -> tuple[bytes, bytes, int]:
    return d.encode(), orjson.dumps({"v": 99, "device": d, **_ping(ts, lat, lon)}), 1


def _bad_schema(d: str, ts: int, lat: float, lon: float, s: Settings) -> tuple[bytes, bytes, int]:
    return d.encode(), orjson.dumps({"v": 1, "device": d, "pings": _ping(ts, lat, lon)}), 1


def _bad_device(d: str, ts: int, lat: float, lon: float, s: Settings) -> tuple[bytes, bytes, int]:
    return d.encode(), orjson.dumps({"v": 1, "device": 4242, **_ping(ts, lat, lon)}), 1


def _key_mismatch(d: str, ts: int, lat: float, lon: float, s: Settings) -> tuple[bytes, bytes, int]:
    return d.encode(), _single(d + "-other", _ping(ts, lat, lon)), 1


def _empty_batch(d: str, ts: int, lat: float, lon: float, s: Settings) -> tuple[bytes, bytes, int]:
    return d.encode(), orjson.dumps({"v": 1, "device": d, "pings": []}), 0


def _batch_too_large(d: str, ts: int, lat: float, lon: float, s: Settings) -> tuple[bytes, bytes, int]:
    n = s.max_batch_pings + 1
    pings = [{"ts": ts, "lat": lat, "lon": lon}] * n
    return d.encode(), orjson.dumps({"v": 1, "device": d, "pings": pings}), n


def _ping_fault(**change: object) -> Builder:
    """A single-ping message whose ping differs from a valid one by ``change`` (None = drop)."""

    def build(d: str, ts: int, lat: float, lon: float, s: Settings) -> tuple[bytes, bytes, int]:
        ping = _ping(ts, lat, lon)
        for name, value in change.items():
            if value is None:
                ping.pop(name)
            elif callable(value):
                ping[name] = value(ts, s)
            else:
                ping[name] = value
        return d.encode(), _single(d, ping), 1

    return build


def _ping_not_object(d: str, ts: int, lat: float, lon: float, s: Settings) -> tuple[bytes, bytes, int]:
    return d.encode(), orjson.dumps({"v": 1, "device": d, "pings": [42]}), 1


CATALOGUE: dict[str, Builder] = {
    "message_too_large": _too_large,
    "not_json": _not_json,
    "not_object": _not_object,
    "bad_version": _bad_version,
    "bad_schema": _bad_schema,
    "bad_device": _bad_device,
    "key_mismatch": _key_mismatch,
    "empty_batch": _empty_batch,
    "batch_too_large": _batch_too_large,
    "ping_not_object": _ping_not_object,
    "missing_field": _ping_fault(lat=None),
    "bad_type": _ping_fault(lat="23.1"),
    "lat_range": _ping_fault(lat=91.5),
    "lon_range": _ping_fault(lon=-181.25),
    "null_island": _ping_fault(lat=0.0, lon=0.0),
    "accuracy": _ping_fault(acc=5000.0),
    "speed_range": _ping_fault(spd=-3.5),
    "heading_range": _ping_fault(hdg=360.0),
    "bad_source": _ping_fault(src="bluetooth"),
    # Relative to the ping's own event time, which the run keeps within the limits of "now".
    "future_ts": _ping_fault(ts=lambda ts, s: ts + s.max_clock_skew_s * 1000 + MS_PER_DAY),
    "stale_ts": _ping_fault(ts=lambda ts, s: ts - s.max_ping_age_s * 1000 - MS_PER_DAY),
}
"""Reason code → builder. ``non_finite`` is absent: standard JSON cannot carry NaN or ±inf
(``1e999`` is ``not_json``). ``outside_area`` comes from the regional devices' valid pings."""
REASONS: tuple[str, ...] = tuple(CATALOGUE)


def build_malformed(
    reason: str, device: str, ts: int, lat: float, lon: float, settings: Settings
) -> Malformed:
    key, value, pings = CATALOGUE[reason](device, ts, lat, lon, settings)
    if len(value) > settings.max_message_bytes:
        # Size is checked first (e.g. a batch_too_large message under a tiny byte limit).
        reason = "message_too_large"
    return Malformed(key, value, reason, pings)
