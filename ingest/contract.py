"""The ping contract (docs/PINGS.md) as Python: version, field names, reason codes and limits.

The JSON Schema in ``hexpulse/schemas/ping.schema.json`` says the same for other languages; the
limits that an operator may tune come from :class:`hexpulse.settings.Settings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, get_args

from hexpulse.settings import Settings

CONTRACT_VERSION = 1
"""Value of ``v`` this code understands; a message without ``v`` is version 1."""

SUPPORTED_VERSIONS = frozenset({1})

DEVICE_MAX_BYTES = 256
"""Longest accepted upstream device string, in UTF-8 bytes."""

Source = Literal["gnss", "wifi", "cell"]
SOURCES = frozenset(get_args(Source))
"""Allowed values of the optional ``src`` field (positioning source)."""


class Reason(StrEnum):
    """Why a ping or a message was rejected; the value is the DLQ ``reason`` header.

    Whole-message reasons reject every ping the message carried; per-ping reasons reject one ping
    of a batch and keep the rest. Per-ping checks run in the order listed here and a ping gets the
    first one that fails.
    """

    # whole message
    MESSAGE_TOO_LARGE = "message_too_large"
    NOT_JSON = "not_json"
    NOT_OBJECT = "not_object"
    BAD_VERSION = "bad_version"
    BAD_DEVICE = "bad_device"
    KEY_MISMATCH = "key_mismatch"
    BAD_SCHEMA = "bad_schema"
    EMPTY_BATCH = "empty_batch"
    BATCH_TOO_LARGE = "batch_too_large"
    WRONG_PARTITION = "wrong_partition"
    # one ping
    PING_NOT_OBJECT = "ping_not_object"
    MISSING_FIELD = "missing_field"
    BAD_TYPE = "bad_type"
    NON_FINITE = "non_finite"
    LAT_RANGE = "lat_range"
    LON_RANGE = "lon_range"
    NULL_ISLAND = "null_island"
    ACCURACY = "accuracy"
    SPEED_RANGE = "speed_range"
    HEADING_RANGE = "heading_range"
    BAD_SOURCE = "bad_source"
    FUTURE_TS = "future_ts"
    STALE_TS = "stale_ts"
    OUTSIDE_AREA = "outside_area"
    NO_KEY = "no_key"


MESSAGE_REASONS = frozenset(
    {
        Reason.MESSAGE_TOO_LARGE,
        Reason.NOT_JSON,
        Reason.NOT_OBJECT,
        Reason.BAD_VERSION,
        Reason.BAD_DEVICE,
        Reason.KEY_MISMATCH,
        Reason.BAD_SCHEMA,
        Reason.EMPTY_BATCH,
        Reason.BATCH_TOO_LARGE,
        Reason.WRONG_PARTITION,
    }
)

PING_REASONS: tuple[Reason, ...] = tuple(r for r in Reason if r not in MESSAGE_REASONS)
"""Per-ping reasons in check order (the first failing one is reported)."""

ACCEPTED = "accepted"
"""Outcome label of an accepted ping (aggregate adds ``late`` and ``duplicate``)."""


@dataclass(frozen=True)
class Limits:
    """Contract limits in the units the checks use (bytes, pings, ms, metres, m/s, degrees)."""

    max_message_bytes: int
    max_batch_pings: int
    max_clock_skew_ms: int
    max_ping_age_ms: int
    max_accuracy_m: float
    max_speed_mps: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_message_bytes=settings.max_message_bytes,
            max_batch_pings=settings.max_batch_pings,
            max_clock_skew_ms=settings.max_clock_skew_s * 1000,
            max_ping_age_ms=settings.max_ping_age_s * 1000,
            max_accuracy_m=settings.max_accuracy_m,
            max_speed_mps=settings.max_speed_mps,
        )
