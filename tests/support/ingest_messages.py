"""Hypothesis strategies of ping messages: any JSON, near-valid and valid pings around
``tests.support.ingest.NOW_MS``, with the default settings and service area they are judged by
(one partition, so every key belongs in partition 0: the partition check has its own tests)."""

from __future__ import annotations

from hypothesis import strategies as st

from hexpulse.service_area import load_service_area
from hexpulse.settings import load_settings
from tests.support.ingest import NOW_MS

SETTINGS = load_settings(topic_partitions=1)
AREA = load_service_area(SETTINGS)

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
