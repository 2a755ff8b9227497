"""DLQ payload sealing: AES-GCM round trip, key id bound to the ciphertext, rotation, expiry."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hexpulse.times import MS_PER_DAY as DAY_MS
from ingest.dlq import Sealer
from privacy.keys.exceptions import KeyDestroyedError, KeyUnavailableError, SealError
from privacy.keys.keyring import KeyRing
from privacy.keys.sealing import NONCE_BYTES, PayloadSealer
from tests.support.keys import DAY, MASTER, FakeClock


def sealer(path: Path, clock: FakeClock) -> PayloadSealer:
    return PayloadSealer(KeyRing(path, MASTER, 2, clock), clock)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[PayloadSealer, FakeClock]:
    clock = FakeClock(DAY * DAY_MS + 1)
    return sealer(tmp_path_factory.mktemp("seal") / "keyring.bin", clock), clock


def test_implements_the_ingest_protocol(shared: tuple[PayloadSealer, FakeClock]) -> None:
    assert isinstance(shared[0], Sealer)


@settings(max_examples=100, deadline=None)
@given(plaintext=st.binary(max_size=4096))
def test_round_trip_and_no_plaintext_in_blob(
    shared: tuple[PayloadSealer, FakeClock], plaintext: bytes
) -> None:
    s, _ = shared
    key_id, blob = s.seal(plaintext)
    assert key_id == f"d{DAY}"
    assert len(blob) == NONCE_BYTES + len(plaintext) + 16
    assert s.open(key_id, blob) == plaintext
    if len(plaintext) >= 8:
        assert plaintext not in blob


def test_nonces_are_fresh(shared: tuple[PayloadSealer, FakeClock]) -> None:
    s, _ = shared
    blobs = [s.seal(b"same payload")[1] for _ in range(200)]
    assert len({b[:NONCE_BYTES] for b in blobs}) == 200
    assert len(set(blobs)) == 200


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_altered_byte_fails_authentication(
    shared: tuple[PayloadSealer, FakeClock], data: st.DataObject
) -> None:
    s, _ = shared
    key_id, blob = s.seal(b'{"dev":"upstream-123","lat":52.520008,"lon":13.404954}')
    altered = bytearray(blob)
    altered[data.draw(st.integers(0, len(blob) - 1))] ^= data.draw(st.integers(1, 255))
    with pytest.raises(SealError):
        s.open(key_id, bytes(altered))


def test_key_id_is_bound_and_validated(tmp_path: Path) -> None:
    clock = FakeClock(DAY * DAY_MS + 1)
    s = sealer(tmp_path / "keyring.bin", clock)
    key_id, blob = s.seal(b"payload")
    clock.ms += DAY_MS  # next UTC day: new key id, new key
    key_id2, blob2 = s.seal(b"payload")
    assert key_id2 == f"d{DAY + 1}"
    assert s.open(key_id, blob) == s.open(key_id2, blob2) == b"payload"
    with pytest.raises(SealError):
        s.open(key_id2, blob)  # a record relabelled with another day's key id
    for bad in ("", "d", "x20784", "d-1", "d12a"):
        with pytest.raises(SealError):
            s.open(bad, blob)
    with pytest.raises(SealError, match="too short"):
        s.open(key_id, blob[:20])
    # Opening never creates keys: a day with no key (yesterday) is unavailable, not fabricated.
    with pytest.raises(KeyUnavailableError):
        s.open(f"d{DAY - 1}", blob)


def test_expired_sealing_key_makes_records_unreadable(tmp_path: Path) -> None:
    clock = FakeClock(DAY * DAY_MS + 1)
    path = tmp_path / "keyring.bin"
    key_id, blob = sealer(path, clock).seal(b"raw device id and coordinates")
    clock.ms += 3 * DAY_MS
    KeyRing(path, MASTER, 2, clock).ensure_current()
    with pytest.raises(KeyDestroyedError):
        sealer(path, clock).open(key_id, blob)
