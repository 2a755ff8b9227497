"""Stage 1 of ingest: Kafka records → whole-message verdicts + the poll's ping objects.

This is the only per-message Python loop of ingest, so it does as little as possible: one
``orjson.loads``, the message-level checks, and one append (single ping) or extend (batch) of
ping dicts. Fields are pulled out for the whole poll at once with C-level ``map`` calls
(:meth:`Decoded.field_values`) and checked vectorized (:mod:`ingest.validate`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Protocol

import orjson

from ingest.contract import DEVICE_MAX_BYTES, SUPPORTED_VERSIONS, Limits, Reason

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
    """Messages that carried pings, and their pings, in record order.

    ``msg_*`` lists have one entry per such message (``msg_batch`` False for a single-ping
    message). ``pings`` holds one dict per ping (for a single-ping message, the message itself;
    for a non-object batch element, an empty dict whose position is listed in ``not_object``).
    """

    msg_records: list[RecordLike] = field(default_factory=list)
    msg_device: list[bytes] = field(default_factory=list)
    msg_pings: list[int] = field(default_factory=list)
    msg_batch: list[bool] = field(default_factory=list)
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


def decode(records: Sequence[RecordLike], limits: Limits) -> Decoded:
    """Decode one poll's records. Never raises on bad input."""
    out = Decoded()
    reject = out.rejects.append
    add_record = out.msg_records.append
    add_device = out.msg_device.append
    add_count = out.msg_pings.append
    add_kind = out.msg_batch.append
    add_ping = out.pings.append
    add_pings = out.pings.extend
    max_bytes = limits.max_message_bytes
    max_batch = limits.max_batch_pings

    for rec in records:
        value = rec.value
        if value is None or len(value) > max_bytes:
            reason = Reason.NOT_JSON if value is None else Reason.MESSAGE_TOO_LARGE
            reject(MessageReject(rec.offset, reason, None, value))
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
        add_record(rec)
        add_device(dev)
    return out
