"""Ingest and the real key ring: a day without a key is a ``no_key`` dead letter; a ring that
cannot be read stops ingest (and so the consumer) with one sentence instead."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from hexpulse.service_area import load_service_area
from hexpulse.settings import load_settings
from hexpulse.times import MS_PER_DAY as DAY_MS
from ingest import Ingestor
from privacy.keys.exceptions import KeyringError
from privacy.keys.keyring import KeyRing
from privacy.keys.pseudonyms import RotatingPseudonymizer
from tests.support.ingest import NOW_MS, ListSink, batch, ping, record
from tests.support.keys import MASTER, FakeClock

RETENTION_DAYS = 2


def _ingestor(ring: KeyRing, sink: ListSink) -> Ingestor:
    settings = load_settings(
        max_ping_age_s=RETENTION_DAYS * 86_400 + 3_600,
        key_retention_days=RETENTION_DAYS + 1,
        topic_partitions=1,
    )
    return Ingestor(settings, load_service_area(settings), RotatingPseudonymizer(ring), sink)


def test_a_day_past_the_key_retention_is_a_no_key_dead_letter(tmp_path: Path) -> None:
    clock = FakeClock(NOW_MS + 5000)
    ring = KeyRing(tmp_path / "keyring.bin", MASTER, RETENTION_DAYS, clock)
    ring.ensure_current()
    expired = NOW_MS - RETENTION_DAYS * DAY_MS - 1000  # the day before the oldest kept
    sink = ListSink()
    out = _ingestor(ring, sink).ingest("pings", 0, [record(batch([ping(ts=expired), ping()]))], None)
    assert out.counts == Counter({"accepted": 1, "no_key": 1})
    assert [lt.reason for lt, _ in sink.letters] == ["no_key"]


def test_a_tampered_key_ring_stops_ingest_with_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "keyring.bin"
    clock = FakeClock(NOW_MS + 5000)
    KeyRing(path, MASTER, RETENTION_DAYS, clock).ensure_current()
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF
    path.write_bytes(bytes(blob))
    sink = ListSink()
    ingestor = _ingestor(KeyRing(path, MASTER, RETENTION_DAYS, clock), sink)
    with pytest.raises(KeyringError, match="tampered") as failed:
        ingestor.ingest("pings", 0, [record(batch([ping(), ping(ts=NOW_MS - 500)]))], None)
    assert str(failed.value).count(". ") == 0 and str(failed.value).endswith(".")
    assert sink.letters == []
