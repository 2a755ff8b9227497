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
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from hexpulse.service_area import load_service_area
from hexpulse.settings import load_settings
from ingest import Ingestor, Reason
from tests.unit.test_ingest_reasons import NOW_MS, KeyedHashPseudonymizer, ListSink, record

SETTINGS = load_settings()
AREA = load_service_area(SETTINGS)
SCHEMA = json.loads((resources.files("hexpulse") / "schemas" / "ping.schema.json").read_text())
HYP = hyp_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
any_json = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
numbers = st.one_of(
    st.floats(min_value=-200, max_value=200, allow_nan=False),
    st.integers(min_value=-200, max_value=200),
    st.sampled_from([0, 0.0, 90, -90, 180, -180, 23.13, 113.32]),
)
field_value = {
    "ts": st.one_of(st.integers(NOW_MS - 7 * 3600_000, NOW_MS + 600_000), any_json),
    "lat": st.one_of(numbers, st.floats(23.03, 23.23), any_json),
    "lon": st.one_of(numbers, st.floats(113.21, 113.43), any_json),
    "acc": st.one_of(st.floats(-10, 300, allow_nan=False), any_json),
    "spd": st.one_of(st.floats(-10, 100, allow_nan=False), any_json),
    "hdg": st.one_of(st.floats(-10, 400, allow_nan=False), any_json),
    "src": st.one_of(st.sampled_from(["gnss", "wifi", "cell", "gps"]), any_json),
}
ping_dicts = st.fixed_dictionaries({}, optional={name: strat for name, strat in field_value.items()})
devices = st.one_of(st.sampled_from(["dev-1", "dev-2", "ü-dev"]), st.text(max_size=3), any_json)
messages = st.one_of(
    st.fixed_dictionaries({"device": devices}, optional={"v": st.sampled_from([1, 2, True, None])}).flatmap(
        lambda head: ping_dicts.map(lambda p: {**p, **head})
    ),
    st.fixed_dictionaries(
        {"device": devices, "pings": st.lists(st.one_of(ping_dicts, ping_dicts, any_json), max_size=6)},
        optional={"v": st.sampled_from([1, 2])},
    ),
    any_json,
)

valid_ping = st.fixed_dictionaries(
    {
        "ts": st.integers(NOW_MS - 7 * 3600_000, NOW_MS + 600_000),
        "lat": st.one_of(st.floats(23.03, 23.23), st.floats(-90, 90)),
        "lon": st.one_of(st.floats(113.21, 113.43), st.floats(-180, 180)),
    },
    optional={
        "acc": st.one_of(st.none(), st.floats(0, 200)),
        "spd": st.one_of(st.none(), st.floats(0, 90)),
        "hdg": st.one_of(st.none(), st.floats(0, 359.999)),
        "src": st.sampled_from(["gnss", "wifi", "cell", None]),
        "extra": any_json,
    },
)
near_valid_ping = st.one_of(
    valid_ping,
    st.tuples(valid_ping, st.sampled_from(sorted(field_value))).flatmap(
        lambda pf: field_value[pf[1]].map(lambda value: {**pf[0], pf[1]: value})
    ),
)
near_valid_messages = st.one_of(
    st.tuples(near_valid_ping, st.sampled_from(["dev-1", "ü"])).map(lambda t: {**t[0], "device": t[1]}),
    st.fixed_dictionaries(
        {"device": st.just("dev-2"), "pings": st.lists(near_valid_ping, min_size=1, max_size=4)},
        optional={"v": st.just(1)},
    ),
)


def encoded(doc: Any) -> bytes:
    return orjson.dumps(doc)  # integers are kept within 64 bits: orjson reads larger ones as floats


def carried(doc: Any) -> int:
    """Pings a message counts for in the accounting (docs/PINGS.md)."""
    if isinstance(doc, dict) and isinstance(doc.get("pings"), list):
        return max(1, len(doc["pings"]))
    return 1


def check_accounting(records: list[Any], docs: list[Any] | None) -> tuple[Any, ListSink]:
    sink = ListSink()
    out = Ingestor(SETTINGS, AREA, KeyedHashPseudonymizer(), sink).ingest("pings", 2, records, NOW_MS)
    if docs is not None:
        assert out.pings_in == sum(carried(d) for d in docs)
    assert out.counts["accepted"] == len(out)
    assert set(out.counts) <= {"accepted"} | {r.value for r in Reason}
    weights = Counter[str]()
    for letter, original in sink.letters:
        weights[letter.reason] += (
            1 if letter.index is not None or letter.pings is None else max(1, letter.pings)
        )
        assert letter.partition == 2 and letter.topic == "pings"
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


def schema_valid(doc: Any) -> bool:
    try:
        jsonschema.validate(doc, SCHEMA, cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError:
        return False
    return True


CONTEXT_REASONS = {"future_ts", "stale_ts", "outside_area"}  # decided by time and area, not the schema


@HYP
@given(st.one_of(messages, near_valid_messages, near_valid_messages))
def test_json_schema_agrees_with_ingest(doc: Any) -> None:
    dev = doc.get("device") if isinstance(doc, dict) else None
    key = dev.encode() if isinstance(dev, str) else None
    out, _ = check_accounting([record(encoded(doc), key=key)], [doc])
    ingest_valid = set(out.counts) <= {"accepted"} | CONTEXT_REASONS
    assert ingest_valid == schema_valid(doc), (out.counts, doc)
