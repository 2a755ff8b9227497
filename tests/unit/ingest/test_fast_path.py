"""The typed fast path (ingest/typed.py) changes nothing but speed: for any poll, ingest with it and
without it gives the same accepted columns, the same counts and the same dead letters, in order."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from ingest import AcceptedPings, Ingestor
from ingest.contract import Limits
from ingest.decode import decode
from tests.support.ingest import INSIDE, NOW_MS, KeyedHashPseudonymizer, ListSink, record
from tests.support.ingest_messages import AREA, SETTINGS, messages, near_valid_messages

HYP = hyp_settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COLUMNS = ("offset", "index", "device", "ts_ms", "lat", "lon", "speed", "cell")

# Raw texts aimed at the seams between msgspec and orjson: numbers at the edges of int64/uint64 and
# of the double range, escapes, duplicate keys, nulls, whitespace, surrogates, odd versions
# (@P@ stands for a valid ping's fields, @NOW@ for the reference time).
PING = f'"ts":{NOW_MS - 5000},"lat":{INSIDE[0]},"lon":{INSIDE[1]}'
EDGE_TEXTS = [
    text.replace("@P@", PING).replace("@NOW@", str(NOW_MS))
    for text in [
        '{"device":"dev-1",@P@}',
        '{"device":"dev-1","pings":[{@P@},{@P@,"spd":null}]}',
        '{"device":"dev-1","ts":9223372036854775807,"lat":23.13,"lon":113.32}',
        '{"device":"dev-1","ts":9223372036854775808,"lat":23.13,"lon":113.32}',
        '{"device":"dev-1","ts":18446744073709551616,"lat":23.13,"lon":113.32}',
        '{"device":"dev-1","ts":@NOW@.0,"lat":23.13,"lon":113.32}',
        '{"device":"dev-1","ts":@NOW@,"lat":1e400,"lon":113.32}',
        '{"device":"dev-1","ts":@NOW@,"lat":23,"lon":113}',
        '{"device":"dev-1","ts":@NOW@,"lat":-0.0,"lon":-0}',
        '{"device":"dev-1","ts":@NOW@,"lat":23.13,"lat":91,"lon":113.32}',
        '{"device":"dev-1","ts":@NOW@,"lat":90.00000000000000001,"lon":113.32}',
        '{"device":"dev-1","ts":@NOW@,"lat":23.13,"lon":113.32,"acc":200.0000000000001}',
        '{"device":"dev-1","ts":@NOW@,"lat":23.13,"lon":113.32,"hdg":359.99999999999999}',
        '{"device":"dev-1","ts":@NOW@,"lat":23.13,"lon":113.32,"src":"gnss","src":"gps"}',
        '{"device":"dev-1","\\u0070ings":[{@P@}]}',
        '{"device":"dev-1","pings":null,@P@}',
        '{"device":"dev-\\u0031",@P@}',
        '{"device":"\\ud800",@P@}',
        '{"device":"dev-1","v":1.0,@P@}',
        '{"device":"dev-1","v":true,@P@}',
        '{"device":"dev-1","v":null,@P@}',
        ' {"device" : "dev-1" , @P@ } \n',
        '{"device":"dev-1",@P@} x',
        '\ufeff{"device":"dev-1",@P@}',
        '{"device":"dev-1","pings":[{@P@}],"pings":[]}',
        '{"device":"dev-1","pings":[],"pings":[{@P@}]}',
        '{"device":"dev-1","pings":[{@P@},7]}',
        '{"device":"pings",@P@}',
    ]
]
edge_texts = st.sampled_from(EDGE_TEXTS)


def encoded(doc: Any) -> bytes:
    return orjson.dumps(doc)


def ingest_both(records: list[Any]) -> tuple[tuple[AcceptedPings, ListSink], tuple[AcceptedPings, ListSink]]:
    out = []
    for fast in (True, False):
        sink = ListSink()
        ingestor = Ingestor(SETTINGS, AREA, KeyedHashPseudonymizer(), sink, fast_path=fast)
        out.append((ingestor.ingest("pings", 0, records, NOW_MS), sink))
    return out[0], out[1]


def assert_same(records: list[Any]) -> None:
    (fast, fast_sink), (general, general_sink) = ingest_both(records)
    assert fast.counts == general.counts
    for name in COLUMNS:
        assert np.array_equal(getattr(fast, name), getattr(general, name), equal_nan=True), name
    assert fast_sink.letters == general_sink.letters


def keyed(doc: Any, i: int, keyed_right: bool) -> Any:
    dev = doc.get("device") if isinstance(doc, dict) else None
    key = dev.encode() if keyed_right and isinstance(dev, str) else b"other"
    return record(encoded(doc), offset=i, key=key)


@HYP
@given(
    st.lists(st.one_of(messages, near_valid_messages, near_valid_messages), min_size=1, max_size=8),
    st.booleans(),
)
def test_structured_polls_agree(docs: list[Any], keyed_right: bool) -> None:
    assert_same([keyed(doc, i, keyed_right) for i, doc in enumerate(docs)])


@HYP
@given(st.lists(edge_texts, min_size=1, max_size=6))
def test_edge_texts_agree(texts: list[str]) -> None:
    records = [record(t.encode(), offset=i, key=b"dev-1") for i, t in enumerate(texts)]
    assert_same(records)


@HYP
@given(st.lists(st.binary(max_size=120), min_size=1, max_size=6))
def test_any_bytes_agree(values: list[bytes]) -> None:
    assert_same([record(v, offset=i, key=b"dev-1") for i, v in enumerate(values)])


def test_well_formed_messages_take_the_fast_path() -> None:
    good = [record(text.encode(), offset=i, key=b"dev-1") for i, text in enumerate(EDGE_TEXTS[:2])]
    decoded = decode(good, Limits.from_settings(SETTINGS))
    # the batch carries a null speed: general path; the single ping: fast path
    assert decoded.msg_typed == [True, False] and len(decoded.typed_pings) == 1 and len(decoded.pings) == 2
