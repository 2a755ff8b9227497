"""The fast path of decode: a well-formed message straight into typed structs (msgspec).

Nearly every message on the topic is well-formed. For those, msgspec decodes the JSON into slotted
structs whose field types *and ranges* are the contract's (docs/PINGS.md): ``ts`` a 64-bit integer,
coordinates numbers (never booleans) within ±90/±180, ``acc``/``spd``/``hdg`` absent or within
their limits, ``src`` one of the known sources. So the type and range checks of
:mod:`ingest.validate` happen inside the C decoder and no dict per ping is built, which nearly halves the
cost of ingesting a batch (BENCHMARKS.md: 715 k → 1.27 M batched pings/s, ingest alone).

Anything else — a type or range error, a ``null``, a version other than 1, a bad or mismatched
device, an empty or oversized batch, a backslash escape where it could hide a ``pings`` key — gets
``None`` from :meth:`TypedDecoder.decode`, and the message takes the general path, which finds the
exact reason. The two paths agree on every input (``tests/unit/ingest/test_fast_path.py``).
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import msgspec

from ingest.contract import CONTRACT_VERSION, DEVICE_MAX_BYTES, Limits, Source

_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_DecodeError = msgspec.DecodeError
_PINGS_KEY = b'"pings"'
_ESCAPE = b"\\"

Lat = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
Lon = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
Heading = Annotated[float, msgspec.Meta(ge=0.0, lt=360.0)]
Millis = Annotated[int, msgspec.Meta(ge=_I64_MIN, le=_I64_MAX)]


class TypedDecoder:
    """Decoders for one set of :class:`Limits` (the accuracy and speed limits are settings)."""

    def __init__(self, limits: Limits) -> None:
        accuracy = Annotated[float, msgspec.Meta(ge=0.0, le=limits.max_accuracy_m)]
        speed = Annotated[float, msgspec.Meta(ge=0.0, le=limits.max_speed_mps)]
        # Absent optional numbers read as NaN, which the columns use for "absent" anyway; a JSON
        # null is a type error here and so takes the general path (where null = absent).
        ping_fields: list[tuple[str, Any, Any]] = [
            ("ts", Millis, msgspec.NODEFAULT),
            ("lat", Lat, msgspec.NODEFAULT),
            ("lon", Lon, msgspec.NODEFAULT),
            ("acc", accuracy, math.nan),
            ("spd", speed, math.nan),
            ("hdg", Heading, math.nan),
            ("src", Source, None),
        ]
        message_fields: list[tuple[str, Any, Any]] = [("device", str, msgspec.NODEFAULT), ("v", int, 1)]
        options: dict[str, Any] = {"kw_only": True, "gc": False}  # no cycles: skip the GC's tracking
        ping: Any = msgspec.defstruct("TypedPing", ping_fields, **options)
        single: Any = msgspec.defstruct("TypedSingle", [*ping_fields, *message_fields], **options)
        batch: Any = msgspec.defstruct(
            "TypedBatch", [("pings", list[ping], msgspec.NODEFAULT), *message_fields], **options
        )
        self.single_type: type = single
        self._single = msgspec.json.Decoder(single).decode
        self._batch = msgspec.json.Decoder(batch).decode
        self._max_batch = limits.max_batch_pings

    def decode(self, value: bytes, key: bytes | None) -> tuple[Any, bytes] | None:
        """(message struct, device bytes) when ``value`` passes every message-level check, else None.

        The struct is a ``TypedSingle`` (itself the ping) or a ``TypedBatch`` (``.pings``).
        """
        msg: Any
        try:
            if _PINGS_KEY in value:
                msg = self._batch(value)
                n = len(msg.pings)
                if n == 0 or n > self._max_batch:
                    return None
            elif _ESCAPE in value:  # "\u0070ings" would be a batch that the test above missed
                return None
            else:
                msg = self._single(value)
        except _DecodeError:
            return None
        try:
            device = msg.device.encode()
        except UnicodeEncodeError:  # a lone surrogate escape, which orjson refuses: not_json
            return None
        if msg.v != CONTRACT_VERSION or not device or len(device) > DEVICE_MAX_BYTES or key != device:
            return None
        return msg, device
