"""Invariants of decode + validation (hypothesis): any input yields accepted pings or dead letters,
never an exception, and every ping is accounted for exactly once."""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources
from typing import Any

import jsonschema
import numpy as np
import orjson
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from ingest import Ingestor, Reason
from tests.support.ingest import NOW_MS, KeyedHashPseudonymizer, ListSink, record
from tests.support.ingest_messages import AREA, SETTINGS, messages, near_valid_messages

SCHEMA = json.loads((resources.files("hexpulse") / "schemas" / "ping.schema.json").read_text())
HYP = hyp_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def encoded(doc: Any) -> bytes:
    return orjson.dumps(doc)  # integers are kept within 64 bits: orjson reads larger ones as floats


def carried(doc: Any) -> int:
    """Pings a message counts for in the accounting (docs/PINGS.md)."""
    if isinstance(doc, dict) and isinstance(doc.get("pings"), list):
        return max(1, len(doc["pings"]))
    return 1


def check_accounting(records: list[Any], docs: list[Any] | None) -> tuple[Any, ListSink]:
    sink = ListSink()
    out = Ingestor(SETTINGS, AREA, KeyedHashPseudonymizer(), sink).ingest("pings", 0, records, NOW_MS)
    if docs is not None:
        assert out.pings_in == sum(carried(d) for d in docs)
    assert out.counts["accepted"] == len(out)
    assert set(out.counts) <= {"accepted"} | {r.value for r in Reason}
    weights = Counter[str]()
    for letter, original in sink.letters:
        weights[letter.reason] += (
            1 if letter.index is not None or letter.pings is None else max(1, letter.pings)
        )
        assert letter.partition == 0 and letter.topic == "pings"
        assert original == records[letter.offset].value
    assert weights == Counter({k: v for k, v in out.counts.items() if k != "accepted"})
    # Columns are consistent and every accepted ping obeys the contract.
    n = len(out)
    for col in (out.index, out.device, out.ts_ms, out.lat, out.lon, out.speed, out.cell):
        assert col.size == n
    assert np.all(np.abs(out.lat) <= 90) and np.all(np.abs(out.lon) <= 180)
    assert np.all(AREA.contains(out.cell))
    assert np.all(out.ts_ms <= NOW_MS + SETTINGS.max_clock_skew_s * 1000)
    assert np.all(np.isnan(out.speed) | ((out.speed >= 0) & (out.speed <= SETTINGS.max_speed_mps)))
    assert np.all(np.diff(out.offset) >= 0)
    return out, sink


@HYP
@given(st.lists(st.tuples(st.binary(max_size=80), st.one_of(st.none(), st.binary(max_size=8))), max_size=8))
def test_any_bytes_never_raise(values: list[tuple[bytes, bytes | None]]) -> None:
    records = [record(v, offset=i, key=k) for i, (v, k) in enumerate(values)]
    check_accounting(records, None)


@HYP
@given(st.lists(messages, min_size=1, max_size=6), st.booleans())
def test_structured_messages_are_all_accounted_for(docs: list[Any], keyed: bool) -> None:
    records = []
    for i, doc in enumerate(docs):
        dev = doc.get("device") if isinstance(doc, dict) else None
        key = dev.encode() if keyed and isinstance(dev, str) else b"other"
        records.append(record(encoded(doc), offset=i, key=key))
    check_accounting(records, docs)


def _float_ts(doc: Any) -> bool:
    pings = doc.get("pings") if isinstance(doc, dict) else None
    found = pings if isinstance(pings, list) else [doc]
    return any(isinstance(p, dict) and isinstance(p.get("ts"), float) for p in found)


def schema_valid(doc: Any) -> bool:
    """The schema file plus the one rule JSON Schema cannot state: ``ts`` is an integer *literal*
    (JSON Schema's ``integer`` also admits ``0.0``; ingest refuses it as ``bad_type``, docs/PINGS.md)."""
    try:
        jsonschema.validate(doc, SCHEMA, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError:
        return False
    return not _float_ts(doc)


CONTEXT_REASONS = {"future_ts", "stale_ts", "outside_area"}  # decided by time and area, not the schema


@HYP
@given(st.one_of(messages, near_valid_messages, near_valid_messages))
@example({"v": 1, "device": "abc", "ts": 0.0, "lat": 23.13, "lon": 113.33})  # found in a CI-like run
def test_json_schema_agrees_with_ingest(doc: Any) -> None:
    dev = doc.get("device") if isinstance(doc, dict) else None
    key = dev.encode() if isinstance(dev, str) else None
    out, _ = check_accounting([record(encoded(doc), key=key)], [doc])
    reasons = set(out.counts) - {"accepted"}
    if reasons and reasons <= CONTEXT_REASONS:
        # Ingest gives a ping one reason: a time or area rejection can come before a schema
        # problem it would also have found, so such a ping says nothing about the schema.
        return
    ingest_valid = not reasons
    assert ingest_valid == schema_valid(doc), (out.counts, doc)
