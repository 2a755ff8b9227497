"""Stage 1 of ingest: Kafka records → whole-message verdicts + the poll's pings.

This is the only per-message Python loop of ingest, so it does as little as possible. A message
that the typed fast path (:mod:`ingest.typed`) accepts contributes its msgspec structs, already
type- and range-checked. Any other message takes the general path: one ``orjson.loads``, the
message-level checks in contract order, and one append (single ping) or extend (batch) of ping
dicts, whose fields are pulled out for the whole poll at once with C-level ``map`` calls
(:meth:`Decoded.field_values`) and checked vectorized (:mod:`ingest.validate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import repeat
from typing import Any, Protocol

import orjson

from ingest.contract import DEVICE_MAX_BYTES, SUPPORTED_VERSIONS, Limits, Reason
from ingest.typed import TypedDecoder

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_dict_get = dict.get
_DICT_ONLY = {dict}


class RecordLike(Protocol):
    """The fields of kafka-python's ``ConsumerRecord`` that ingest reads."""

    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class MessageReject:
    """A whole message rejected: ``pings`` is how many it carried when that could be read."""

    offset: int
    reason: Reason
    pings: int | None
    value: bytes | None


@dataclass
class Decoded:
    """Messages that carried pings, and their pings.

    ``msg_*`` lists have one entry per such message, in record order (``msg_batch`` False for a
    single-ping message, ``msg_typed`` True if it took the fast path). ``typed_pings`` holds the
    pings of the fast-path messages and ``pings`` those of the others, each in message order:
    one dict per ping (for a single-ping message, the message itself; for a non-object batch
    element, an empty dict whose position is listed in ``not_object``).
    """

    msg_records: list[RecordLike] = field(default_factory=list)
    msg_device: list[bytes] = field(default_factory=list)
    msg_pings: list[int] = field(default_factory=list)
    msg_batch: list[bool] = field(default_factory=list)
    msg_typed: list[bool] = field(default_factory=list)
    typed_pings: list[Any] = field(default_factory=list)
    pings: list[dict[str, Any]] = field(default_factory=list)
    not_object: list[int] = field(default_factory=list)
    rejects: list[MessageReject] = field(default_factory=list)

    def field_values(self, name: str) -> list[Any]:
        """Raw JSON values of ``name`` for every ping (None where absent or null)."""
        return list(map(_dict_get, self.pings, repeat(name)))


def _batch_count(doc: dict[str, Any]) -> int | None:
    """How many pings a decoded but rejected message carried, if that can be told."""
    pings = doc.get("pings")
    if pings is None:
        return 1
    return len(pings) if type(pings) is list else None


@lru_cache(maxsize=8)
def _typed_decoder(limits: Limits) -> TypedDecoder:
    return TypedDecoder(limits)


def decode(records: Sequence[RecordLike], limits: Limits, *, fast_path: bool = True) -> Decoded:
    """Decode one poll's records. Never raises on bad input.

    ``fast_path=False`` sends every message down the general path (tests compare the two).
    """
    out = Decoded()
    reject = out.rejects.append
    add_record = out.msg_records.append
    add_device = out.msg_device.append
    add_count = out.msg_pings.append
    add_kind = out.msg_batch.append
    add_typed = out.msg_typed.append
    add_typed_ping = out.typed_pings.append
    add_typed_pings = out.typed_pings.extend
    add_ping = out.pings.append
    add_pings = out.pings.extend
    max_bytes = limits.max_message_bytes
    max_batch = limits.max_batch_pings
    typed_decoder = _typed_decoder(limits)
    typed = typed_decoder.decode
    single_type = typed_decoder.single_type

    for rec in records:
        value = rec.value
        if value is None or len(value) > max_bytes:
            reason = Reason.NOT_JSON if value is None else Reason.MESSAGE_TOO_LARGE
            reject(MessageReject(rec.offset, reason, None, value))
            continue
        fast = typed(value, rec.key) if fast_path else None
        if fast is not None:
            msg, dev = fast
            if type(msg) is single_type:
                add_typed_ping(msg)
                add_count(1)
                add_kind(False)
            else:
                add_typed_pings(msg.pings)
                add_count(len(msg.pings))
                add_kind(True)
            add_typed(True)
            add_record(rec)
            add_device(dev)
            continue
        try:
            doc = _loads(value)
        except _JSONDecodeError:
            reject(MessageReject(rec.offset, Reason.NOT_JSON, None, value))
            continue
        if type(doc) is not dict:
            reject(MessageReject(rec.offset, Reason.NOT_OBJECT, None, value))
            continue
        version = doc.get("v")
        if version is not None and (type(version) is not int or version not in SUPPORTED_VERSIONS):
            reject(MessageReject(rec.offset, Reason.BAD_VERSION, _batch_count(doc), value))
            continue
        pings = doc.get("pings")
        if pings is not None and type(pings) is not list:
            reject(MessageReject(rec.offset, Reason.BAD_SCHEMA, None, value))
            continue
        device = doc.get("device")
        if type(device) is not str or not device:
            reject(MessageReject(rec.offset, Reason.BAD_DEVICE, _batch_count(doc), value))
            continue
        dev = device.encode()
        if len(dev) > DEVICE_MAX_BYTES:
            reject(MessageReject(rec.offset, Reason.BAD_DEVICE, _batch_count(doc), value))
            continue
        if rec.key != dev:
            reject(MessageReject(rec.offset, Reason.KEY_MISMATCH, _batch_count(doc), value))
            continue
        if pings is None:
            add_ping(doc)
            add_count(1)
            add_kind(False)
        else:
            n = len(pings)
            if n == 0 or n > max_batch:
                reason = Reason.EMPTY_BATCH if n == 0 else Reason.BATCH_TOO_LARGE
                reject(MessageReject(rec.offset, reason, n, value))
                continue
            if set(map(type, pings)) != _DICT_ONLY:
                base = len(out.pings)
                out.not_object.extend(base + i for i, p in enumerate(pings) if type(p) is not dict)
                pings = [p if type(p) is dict else {} for p in pings]
            add_pings(pings)
            add_count(n)
            add_kind(True)
        add_typed(False)
        add_record(rec)
        add_device(dev)
    return out
