"""``make fuzz`` on the ping decoder (hypothesis): byte-level mutations of valid messages (cuts,
flipped and inserted bytes, spliced messages), deep JSON and long binary values, many more
examples than the unit suite runs. Whatever arrives, decode + validation never raise, and every
ping is accounted for exactly once (the invariants of tests/unit/ingest/test_properties.py)."""

from __future__ import annotations

import os
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.figures import needs_full
from tests.support.ingest import record
from tests.support.ingest_messages import near_valid_messages
from tests.unit.ingest.test_properties import check_accounting

pytestmark = needs_full
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2000"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A near-valid message's bytes after a few random edits."""
    data = bytearray(orjson.dumps(draw(near_valid_messages)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["cut", "flip", "insert", "delete"]))
        if edit == "cut":
            del data[at:]
        elif edit == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "insert":
            data[at:at] = draw(
                st.binary(min_size=1, max_size=8) | st.sampled_from([b"NaN", b"1e999", b"\x00", b'"'])
            )
        elif at < len(data):
            del data[at]
    return bytes(data)


def deep(depth: int) -> bytes:
    return b'{"device":"dev-1","pings":' + b"[" * depth + b"]" * depth + b"}"


values = st.one_of(
    mutated(),
    st.binary(min_size=0, max_size=4096),
    st.integers(1, 5000).map(deep),
    st.tuples(mutated(), mutated()).map(lambda ab: ab[0] + ab[1]),
)


@FUZZ
@given(st.lists(st.tuples(values, st.sampled_from([b"dev-1", b"dev-2", b"", None])), min_size=1, max_size=6))
def test_mutated_messages_never_raise_and_are_accounted_for(msgs: list[tuple[bytes, bytes | None]]) -> None:
    records: list[Any] = [record(v, offset=i, key=k) for i, (v, k) in enumerate(msgs)]
    check_accounting(records, None)
