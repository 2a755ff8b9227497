"""Every reason code of docs/PINGS.md, decided by ingest.Ingestor on in-memory records."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import orjson
import pytest

from hexpulse.service_area import ServiceArea, load_service_area
from hexpulse.settings import Settings, load_settings
from ingest import AcceptedPings, Ingestor, Reason
from ingest.contract import MESSAGE_REASONS, PING_REASONS
from tests.support.ingest import (
    NOW_MS,
    OUTSIDE,
    KeyedHashPseudonymizer,
    ListSink,
    batch,
    ping,
    record,
    single,
)


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings(max_batch_pings=10, max_message_bytes=4096, topic_partitions=1)


@pytest.fixture(scope="module")
def area(settings: Settings) -> ServiceArea:
    return load_service_area(settings)


def run(
    settings: Settings, area: ServiceArea, records: list[Any], now_ms: int | None = NOW_MS
) -> tuple[AcceptedPings, ListSink, KeyedHashPseudonymizer]:
    sink = ListSink()
    pz = KeyedHashPseudonymizer()
    out = Ingestor(settings, area, pz, sink).ingest("pings", 0, records, now_ms)
    return out, sink, pz


def only_reason(
    settings: Settings, area: ServiceArea, value: bytes | None, key: bytes | None = b"dev-1"
) -> str:
    out, sink, _ = run(settings, area, [record(value, key=key)])
    assert len(out) == 0
    assert len(sink.letters) == 1
    letter = sink.letters[0][0]
    assert letter.topic == "pings" and letter.partition == 0 and letter.offset == 0
    assert out.counts[letter.reason] == out.pings_in
    return letter.reason


BIG = "x" * 5000

MESSAGE_CASES: dict[Reason, tuple[bytes | None, bytes | None]] = {
    Reason.MESSAGE_TOO_LARGE: (single(pad=BIG), b"dev-1"),
    Reason.NOT_JSON: (b"{not json", b"dev-1"),
    Reason.NOT_OBJECT: (b"[1, 2]", b"dev-1"),
    Reason.BAD_VERSION: (orjson.dumps({"v": 2, "device": "dev-1", **ping()}), b"dev-1"),
    Reason.BAD_SCHEMA: (orjson.dumps({"device": "dev-1", "pings": {"ts": 1}}), b"dev-1"),
    Reason.BAD_DEVICE: (single(device=""), b""),
    Reason.KEY_MISMATCH: (single(device="dev-1"), b"dev-2"),
    Reason.EMPTY_BATCH: (batch([]), b"dev-1"),
    Reason.BATCH_TOO_LARGE: (batch([ping() for _ in range(11)]), b"dev-1"),
}

PING_CASES: dict[Reason, Any] = {
    Reason.PING_NOT_OBJECT: [1, 2],
    Reason.MISSING_FIELD: ping(lat=...),
    Reason.BAD_TYPE: ping(ts=float(NOW_MS)),
    Reason.LAT_RANGE: ping(lat=90.5),
    Reason.LON_RANGE: ping(lon=-180.01),
    Reason.NULL_ISLAND: ping(lat=0, lon=0.0),
    Reason.ACCURACY: ping(acc=200.5),
    Reason.SPEED_RANGE: ping(spd=-0.1),
    Reason.HEADING_RANGE: ping(hdg=360),
    Reason.BAD_SOURCE: ping(src="gps"),
    Reason.FUTURE_TS: ping(ts=NOW_MS + 300_001),
    Reason.STALE_TS: ping(ts=NOW_MS - 6 * 3600 * 1000 - 1),
    Reason.OUTSIDE_AREA: ping(lat=OUTSIDE[0], lon=OUTSIDE[1]),
}


def test_every_reason_has_a_case() -> None:
    # no_key: test_keys.py; wrong_partition needs more than one partition: test_partitioning.py.
    elsewhere = {Reason.NON_FINITE, Reason.NO_KEY, Reason.WRONG_PARTITION}
    untested = set(Reason) - set(MESSAGE_CASES) - set(PING_CASES) - elsewhere
    assert not untested
    assert set(MESSAGE_REASONS) | set(PING_REASONS) == set(Reason)


@pytest.mark.parametrize("reason", list(MESSAGE_CASES), ids=str)
def test_message_reasons(settings: Settings, area: ServiceArea, reason: Reason) -> None:
    value, key = MESSAGE_CASES[reason]
    assert only_reason(settings, area, value, key) == reason


@pytest.mark.parametrize("reason", list(PING_CASES), ids=str)
def test_ping_reasons_in_a_batch_reject_only_the_bad_ping(
    settings: Settings, area: ServiceArea, reason: Reason
) -> None:
    good = [ping(ts=NOW_MS - 5000), ping(ts=NOW_MS - 4000)]
    value = batch([good[0], PING_CASES[reason], good[1]])
    out, sink, _ = run(settings, area, [record(value, offset=7)])
    assert out.counts == Counter({"accepted": 2, reason.value: 1})
    assert out.index.tolist() == [0, 2] and out.offset.tolist() == [7, 7]
    [(letter, original)] = sink.letters
    assert (letter.reason, letter.index, letter.offset, letter.pings) == (reason.value, 1, 7, None)
    assert original == value


@pytest.mark.parametrize("reason", [r for r in PING_CASES if r != Reason.PING_NOT_OBJECT], ids=str)
def test_ping_reasons_on_a_single_ping(settings: Settings, area: ServiceArea, reason: Reason) -> None:
    value = orjson.dumps({"device": "dev-1", **PING_CASES[reason]})
    assert only_reason(settings, area, value) == reason
    assert run(settings, area, [record(value)])[1].letters[0][0].index is None


def test_null_and_missing_optional_fields_are_absent(settings: Settings, area: ServiceArea) -> None:
    out, sink, _ = run(settings, area, [record(single(spd=None, acc=None, hdg=None, src=None))])
    assert out.counts == Counter({"accepted": 1}) and not sink.letters
    assert np.isnan(out.speed[0]) and out.speed.dtype == np.float64


def test_unknown_fields_are_ignored(settings: Settings, area: ServiceArea) -> None:
    out, _, _ = run(settings, area, [record(single(extra={"a": [1]}, src="wifi", hdg=359.9))])
    assert out.counts == Counter({"accepted": 1})


def test_boolean_is_not_a_number(settings: Settings, area: ServiceArea) -> None:
    out, sink, _ = run(settings, area, [record(batch([ping(spd=True), ping(ts=True), ping()]))])
    assert out.counts == Counter({"accepted": 1, "bad_type": 2})


def test_first_failing_check_wins(settings: Settings, area: ServiceArea) -> None:
    # lat out of range and speed out of range and stale: lat_range comes first in the table.
    value = batch([ping(lat=95.0, spd=100.0, ts=1), ping(lat="x", lon=None)])
    _, sink, _ = run(settings, area, [record(value)])
    assert [letter.reason for letter, _ in sink.letters] == ["lat_range", "missing_field"]


def test_huge_integers_do_not_crash(settings: Settings, area: ServiceArea) -> None:
    value = (
        b'{"device":"dev-1","pings":[{"ts":18446744073709551615,"lat":23.1,"lon":113.3},'
        b'{"ts":-9223372036854775808,"lat":23.1,"lon":113.3},{"ts":1,"lat":1e308,"lon":113.3}]}'
    )
    out, _, _ = run(settings, area, [record(value)])
    assert out.counts == Counter({"future_ts": 1, "stale_ts": 1, "lat_range": 1})


def test_whole_message_failure_counts_its_pings(settings: Settings, area: ServiceArea) -> None:
    value = batch([ping() for _ in range(4)], device="dev-9")
    out, sink, _ = run(settings, area, [record(value, key=b"dev-1")])
    assert out.counts == Counter({"key_mismatch": 4})
    assert sink.letters[0][0].pings == 4 and sink.letters[0][0].index is None


def test_accepted_columns(settings: Settings, area: ServiceArea) -> None:
    records = [
        record(single(spd=3.5, ts=NOW_MS - 10), offset=3, key=b"dev-1"),
        record(batch([ping(ts=NOW_MS - 20), ping(ts=NOW_MS - 30)], device="dev-2"), offset=4, key=b"dev-2"),
    ]
    out, _, pz = run(settings, area, records)
    assert out.offset.tolist() == [3, 4, 4] and out.index.tolist() == [0, 0, 1]
    assert out.ts_ms.tolist() == [NOW_MS - 10, NOW_MS - 20, NOW_MS - 30]
    assert out.device.dtype == np.uint64 and out.cell.dtype == np.uint64
    assert out.device[1] == out.device[2] != out.device[0]
    assert out.device[0] == pz.pseudonymize(b"dev-1", (NOW_MS - 10) // 86_400_000)
    assert out.speed[0] == 3.5 and np.isnan(out.speed[1])
    assert set(out.cell.tolist()) <= area.cell_set
    assert out.messages == 2 and out.pings_in == 3 and out.rejected == 0


def test_one_hash_per_message_per_day(settings: Settings, area: ServiceArea) -> None:
    before, after = NOW_MS - 1000, NOW_MS + 1000  # a batch spanning midnight
    value = batch([ping(ts=before), ping(ts=before - 5), ping(ts=after), ping(ts=after + 5)])
    out, _, pz = run(settings, area, [record(value)], now_ms=NOW_MS + 5000)
    assert len(out) == 4
    assert pz.calls == [(b"dev-1", before // 86_400_000), (b"dev-1", after // 86_400_000)]
    assert out.device[0] == out.device[1] != out.device[2] == out.device[3]


def test_interleaved_days_still_map_each_ping_to_its_day(settings: Settings, area: ServiceArea) -> None:
    before, after = NOW_MS - 1000, NOW_MS + 1000
    value = batch([ping(ts=before), ping(ts=after), ping(ts=before), ping(ts=after)])
    out, _, pz = run(settings, area, [record(value)], now_ms=NOW_MS + 5000)
    assert out.device[0] == out.device[2] != out.device[1] == out.device[3]
    assert {day for _, day in pz.calls} == {before // 86_400_000, after // 86_400_000}


def test_record_timestamp_is_the_reference_without_now(settings: Settings, area: ServiceArea) -> None:
    old = NOW_MS - 86_400_000
    rec = record(single(ts=old), ts=old + 1000)
    out, _, _ = run(settings, area, [rec], now_ms=None)
    assert out.counts == Counter({"accepted": 1})
    out, _, _ = run(settings, area, [rec], now_ms=NOW_MS)
    assert out.counts == Counter({"stale_ts": 1})


def test_device_string_never_reaches_the_dlq_letters(settings: Settings, area: ServiceArea) -> None:
    _, sink, _ = run(settings, area, [record(single(device="secret-device", lat=99.0), key=b"secret-device")])
    for letter, _ in sink.letters:
        assert b"secret-device" not in b"".join(v for _, v in letter.headers())


def test_empty_poll(settings: Settings, area: ServiceArea) -> None:
    out, sink, _ = run(settings, area, [])
    assert len(out) == 0 and out.pings_in == 0 and not sink.letters


def test_non_finite_is_checked_on_columns(settings: Settings, area: ServiceArea) -> None:
    # orjson refuses NaN/Infinity (→ not_json); the column check still guards other decoders.
    assert only_reason(settings, area, b'{"device":"dev-1","ts":1,"lat":NaN,"lon":1}') == "not_json"
    from ingest.decode import Decoded
    from ingest.validate import CODE, validate

    d = Decoded(
        pings=[
            {"ts": NOW_MS, "lat": float("inf"), "lon": 113.3},
            {"ts": NOW_MS, "lat": 23.1, "lon": 113.3, "spd": float("nan")},
        ]
    )
    from ingest.binning import CellBinner
    from ingest.contract import Limits

    limits = Limits.from_settings(settings)
    cols = validate(d, np.full(2, NOW_MS, dtype=np.int64), limits, CellBinner(area, 9))
    assert cols.code.tolist() == [CODE[Reason.NON_FINITE], 0]


class ForgetfulPseudonymizer(KeyedHashPseudonymizer):
    """Has keys only for days >= ``first_day`` (older keys destroyed), like the privacy keyring."""

    def __init__(self, first_day: int) -> None:
        super().__init__()
        self.first_day = first_day

    def pseudonymize(self, device: bytes, day: int) -> int:
        if day < self.first_day:
            from privacy.keys.exceptions import KeyDestroyedError

            raise KeyDestroyedError(f"key of day {day} destroyed")
        return super().pseudonymize(device, day)


def test_no_key_rejects_only_the_days_without_a_key(settings: Settings, area: ServiceArea) -> None:
    before, after = NOW_MS - 1000, NOW_MS + 1000
    value = batch([ping(ts=before), ping(ts=after), ping(ts=after + 1)])
    sink = ListSink()
    ingestor = Ingestor(settings, area, ForgetfulPseudonymizer(NOW_MS // 86_400_000), sink)
    out = ingestor.ingest("pings", 0, [record(value, offset=5)], NOW_MS + 5000)
    assert out.counts == Counter({"accepted": 2, "no_key": 1})
    assert out.index.tolist() == [1, 2] and out.ts_ms.tolist() == [after, after + 1]
    assert [(lt.reason, lt.index) for lt, _ in sink.letters] == [("no_key", 0)]
