"""Key ring and pseudonyms: daily rotation, sharing between processes, destruction, tampering."""

from __future__ import annotations

import base64
import multiprocessing as mp
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hexpulse.errors import ConfigError
from hexpulse.settings import Settings, load_settings
from hexpulse.times import MS_PER_DAY as DAY_MS
from hexpulse.times import utc_day
from privacy.keys.exceptions import (
    KeyDestroyedError,
    KeyringError,
    KeyUnavailableError,
    MasterKeyError,
)
from privacy.keys.keyring import PURPOSE_PSEUDONYM, KeyRing
from privacy.keys.master_key import create_master_key_file, decode_key_text, load_master_key
from privacy.keys.pseudonyms import RotatingPseudonymizer
from tests.support.keys import DAY, MASTER, FakeClock


def ring_at(path: Path, clock: FakeClock, master: bytes = MASTER, retention: int = 2) -> KeyRing:
    return KeyRing(path, master, retention, clock)


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock(DAY * DAY_MS + 12 * 3_600_000)


@pytest.fixture()
def ring_path(tmp_path: Path) -> Path:
    return tmp_path / "keyring.bin"


def test_rotation_at_midnight_utc(ring_path: Path, clock: FakeClock) -> None:
    pz = RotatingPseudonymizer(ring_at(ring_path, clock))
    last_ms_of_day = (DAY + 1) * DAY_MS - 1
    first_ms_of_next = (DAY + 1) * DAY_MS
    assert utc_day(last_ms_of_day) == DAY and utc_day(first_ms_of_next) == DAY + 1
    device = b"upstream-device-42"
    assert pz.pseudonymize(device, utc_day(DAY * DAY_MS)) == pz.pseudonymize(device, utc_day(last_ms_of_day))
    assert pz.pseudonymize(device, utc_day(last_ms_of_day)) != pz.pseudonymize(
        device, utc_day(first_ms_of_next)
    )


@settings(max_examples=200, deadline=None)
@given(device=st.binary(min_size=1, max_size=64), other=st.binary(min_size=1, max_size=64))
def test_stable_within_a_day_distinct_across_days_and_devices(
    tmp_path_factory: pytest.TempPathFactory, device: bytes, other: bytes
) -> None:
    # One ring per session of examples would be faster, but hypothesis forbids function fixtures.
    path = _shared_ring_path(tmp_path_factory)
    clock = FakeClock(DAY * DAY_MS)
    pz = RotatingPseudonymizer(ring_at(path, clock))
    value = pz.pseudonymize(device, DAY)
    assert 0 <= value < 2**64
    assert RotatingPseudonymizer(ring_at(path, clock)).pseudonymize(device, DAY) == value
    # 64-bit outputs: a collision here has probability ~2**-64 per example.
    assert pz.pseudonymize(device, DAY + 1) != value
    if other != device:
        assert pz.pseudonymize(other, DAY) != value


_SHARED: dict[str, Path] = {}


def _shared_ring_path(factory: pytest.TempPathFactory) -> Path:
    if "p" not in _SHARED:
        _SHARED["p"] = factory.mktemp("shared-ring") / "keyring.bin"
    return _SHARED["p"]


def _child(path: str, barrier: Any, out: Any) -> None:
    clock = FakeClock(DAY * DAY_MS + 1000)
    pz = RotatingPseudonymizer(KeyRing(Path(path), MASTER, 2, clock))
    barrier.wait()  # every process reaches the missing key at the same moment
    out.put((os.getpid(), pz.pseudonymize(b"shared-device", DAY)))


def test_processes_sharing_a_ring_agree_on_a_newly_created_day_key(ring_path: Path) -> None:
    ctx = mp.get_context("fork")
    n = 6
    barrier = ctx.Barrier(n)
    out = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(str(ring_path), barrier, out)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [out.get(timeout=30) for _ in range(n)]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert len({value for _, value in results}) == 1, "two processes used different keys for one day"
    later = RotatingPseudonymizer(ring_at(ring_path, FakeClock(DAY * DAY_MS)))
    assert later.pseudonymize(b"shared-device", DAY) == results[0][1]


def test_destroyed_day_key_cannot_be_recomputed(ring_path: Path, clock: FakeClock) -> None:
    ring = ring_at(ring_path, clock, retention=2)
    pz = RotatingPseudonymizer(ring)
    old = pz.pseudonymize(b"dev-a", DAY)
    old_secret = ring.reload().days[DAY]  # type: ignore[union-attr]

    clock.ms += 3 * DAY_MS  # today = DAY + 3; DAY is older than the 2-day retention
    assert ring.ensure_current() == [DAY + 3, DAY + 4]
    state = ring.reload()
    assert state is not None
    assert DAY not in state.days and DAY in state.destroyed
    assert old_secret not in ring_path.read_bytes()
    assert all(secret != old_secret for secret in state.days.values())

    # The running pseudonymizer forgets the day once it loads a newer one; fresh ones refuse it.
    pz.pseudonymize(b"dev-a", DAY + 3)
    with pytest.raises(KeyDestroyedError):
        pz.pseudonymize(b"dev-a", DAY)
    with pytest.raises(KeyDestroyedError):
        RotatingPseudonymizer(ring_at(ring_path, clock)).pseudonymize(b"dev-a", DAY)
    # Even with the master key, no key the ring still holds reproduces the old pseudonym.
    survivors = RotatingPseudonymizer(ring_at(ring_path, clock))
    assert old not in {survivors.pseudonymize(b"dev-a", d) for d in state.days}
    # Moving the clock back does not resurrect it: the destruction record is kept.
    clock.ms -= 3 * DAY_MS
    with pytest.raises(KeyDestroyedError):
        ring_at(ring_path, clock).derive(PURPOSE_PSEUDONYM, DAY)


def test_destroy_expired_without_new_keys(ring_path: Path, clock: FakeClock) -> None:
    ring = ring_at(ring_path, clock, retention=1)
    ring.ensure_current()
    assert ring.destroy_expired() == []
    clock.ms += 3 * DAY_MS
    assert ring.destroy_expired() == [DAY, DAY + 1]
    assert ring.status().days_held == ()
    assert ring.status().days_destroyed == (DAY, DAY + 1)


def test_keys_only_for_days_within_retention_and_tomorrow(ring_path: Path, clock: FakeClock) -> None:
    pz = RotatingPseudonymizer(ring_at(ring_path, clock, retention=2))
    pz.pseudonymize(b"d", DAY - 2)
    pz.pseudonymize(b"d", DAY + 1)
    with pytest.raises(KeyDestroyedError):
        pz.pseudonymize(b"d", DAY - 3)
    with pytest.raises(KeyUnavailableError):
        pz.pseudonymize(b"d", DAY + 2)


def test_wrong_master_key_is_refused(ring_path: Path, clock: FakeClock) -> None:
    ring_at(ring_path, clock).ensure_current()
    other = bytes(32)
    with pytest.raises(KeyringError, match="does not decrypt with this master key"):
        ring_at(ring_path, clock, master=other).derive(PURPOSE_PSEUDONYM, DAY)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_tampered_byte_is_detected(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    path = tmp_path_factory.mktemp("tamper") / "keyring.bin"
    clock = FakeClock(DAY * DAY_MS)
    ring_at(path, clock).ensure_current()
    blob = bytearray(path.read_bytes())
    index = data.draw(st.integers(0, len(blob) - 1))
    blob[index] ^= data.draw(st.integers(1, 255))
    path.write_bytes(bytes(blob))
    with pytest.raises(KeyringError):
        ring_at(path, clock).reload()


def test_truncated_or_foreign_file_is_refused(ring_path: Path, clock: FakeClock) -> None:
    ring_at(ring_path, clock).ensure_current()
    blob = ring_path.read_bytes()
    ring_path.write_bytes(blob[:-1])
    with pytest.raises(KeyringError, match="tampered"):
        ring_at(ring_path, clock).reload()
    ring_path.write_bytes(b"not a ring")
    with pytest.raises(KeyringError, match="bad header"):
        ring_at(ring_path, clock).reload()


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return load_settings(state_dir=tmp_path, **kw)


def test_master_key_sources_and_refusals(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    with pytest.raises(MasterKeyError, match="keyring init") as missing:
        load_master_key(s)
    assert isinstance(missing.value, ConfigError)

    assert create_master_key_file(s.resolved_master_key_file())
    assert not create_master_key_file(s.resolved_master_key_file())
    assert s.resolved_master_key_file().stat().st_mode & 0o777 == 0o600
    key = load_master_key(s)
    assert len(key) == 32

    assert load_master_key(_settings(tmp_path, master_key=MASTER.hex())) == MASTER
    assert load_master_key(_settings(tmp_path, master_key=base64.b64encode(MASTER).decode())) == MASTER
    urlsafe = base64.urlsafe_b64encode(b"\xff" * 32).decode().rstrip("=")
    assert decode_key_text(urlsafe) == b"\xff" * 32
    for bad in ("", "abc", "zz" * 32, base64.b64encode(b"short").decode()):
        with pytest.raises(MasterKeyError, match="not a valid 32-byte key"):
            load_master_key(_settings(tmp_path, master_key=bad))

    s.resolved_master_key_file().write_text("garbage\n")
    with pytest.raises(MasterKeyError, match="does not hold a valid 32-byte key"):
        load_master_key(s)


def test_from_settings_fails_fast_on_a_bad_ring(tmp_path: Path) -> None:
    s = _settings(tmp_path, master_key=MASTER.hex())
    KeyRing.from_settings(s).ensure_current()
    with pytest.raises(KeyringError):
        RotatingPseudonymizer.from_settings(_settings(tmp_path, master_key=bytes(32).hex()))


def test_settings_refuse_ping_ages_the_keys_cannot_cover() -> None:
    with pytest.raises(ConfigError, match="exceeds the pseudonym key retention"):
        load_settings(max_ping_age_s=3 * 86_400, key_retention_days=2)
    with pytest.raises(ConfigError, match="max_clock_skew_s"):
        load_settings(max_clock_skew_s=86_401)


@settings(max_examples=300, deadline=None)
@given(
    now_ms=st.integers(DAY * DAY_MS, (DAY + 3) * DAY_MS),
    retention=st.integers(1, 5),
    age_frac=st.floats(0, 1),
    skew_frac=st.floats(0, 1),
)
def test_every_ping_ingest_accepts_falls_on_a_day_with_a_key(
    now_ms: int, retention: int, age_frac: float, skew_frac: float
) -> None:
    """With the largest age and skew the settings allow, a ping's day always has a key."""
    s = load_settings(
        key_retention_days=retention, max_ping_age_s=retention * 86_400, max_clock_skew_s=86_400
    )
    ts_old = now_ms - int(age_frac * s.max_ping_age_s * 1000)
    ts_new = now_ms + int(skew_frac * s.max_clock_skew_s * 1000)
    ring = KeyRing(Path("/nonexistent/keyring.bin"), MASTER, retention, FakeClock(now_ms))  # no I/O
    for ts in (ts_old, ts_new):
        assert ring.oldest_allowed() <= utc_day(ts) <= ring.today() + 1


def test_has_key_predicts_whether_pseudonymize_raises(ring_path: Path, clock: FakeClock) -> None:
    pz = RotatingPseudonymizer(ring_at(ring_path, clock, retention=2))
    for day in range(DAY - 4, DAY + 4):
        if pz.has_key(day):
            pz.pseudonymize(b"d", day)
        else:
            with pytest.raises(KeyUnavailableError):
                pz.pseudonymize(b"d", day)
    assert [d for d in range(DAY - 4, DAY + 4) if pz.has_key(d)] == [DAY - 2, DAY - 1, DAY, DAY + 1]
