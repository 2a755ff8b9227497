"""The encrypted key ring: one random secret per UTC day, destroyed after the retention period.

Why random per-day secrets rather than keys derived from the master key alone: a key that is a pure
function of (master key, day) can always be derived again, so "destroying" it would be a promise
nobody can keep. Here each day owns 32 random bytes stored only in the ring; the day's pseudonym,
DLQ-sealing and release-noise keys are
``HKDF-SHA256(master ‖ day secret, salt = ring salt, info = purpose ‖ day)``. Deleting the day
secret from the ring (and from every backup of it) makes that day's pseudonyms (and the noise of
its releases) impossible to recompute, even for someone who holds the master key. Details:
docs/KEYS.md.

File layout (all integers big-endian)::

    b"HXRING1\\n" | ring salt (16 B) | nonce (12 B) | AES-256-GCM(KEK, JSON state, aad=header)

with ``KEK = HKDF-SHA256(master, salt = ring salt, info = "hexpulse keyring kek v1")``.

Several processes may share one ring file: readers see whole files only (temp file + rename),
and creating or destroying a key happens under an exclusive ``flock`` on ``<ring>.lock`` after
re-reading the file, so two processes never hold different keys for one day.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hexpulse.settings import Settings
from hexpulse.times import utc_day
from privacy.keys.exceptions import KeyDestroyedError, KeyringError, KeyUnavailableError
from privacy.keys.master_key import load_master_key

MAGIC = b"HXRING1\n"
_SALT_BYTES = 16
_NONCE_BYTES = 12
_HEADER_BYTES = len(MAGIC) + _SALT_BYTES

PURPOSE_PSEUDONYM = b"pseudonym"
PURPOSE_SEAL = b"dlq-seal"
#: The releaser's noise keys (privacy.release.seeds): destroyed with the day, so is the noise.
PURPOSE_RELEASE_NOISE = b"release-noise"


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


@dataclass
class RingState:
    """Decrypted ring contents. ``days`` maps UTC day → 32-byte secret; ``destroyed`` day → when."""

    salt: bytes
    days: dict[int, bytes] = field(default_factory=dict)
    destroyed: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RingStatus:
    """What ``hexpulse keyring status`` shows: no secret material."""

    path: Path
    exists: bool
    days_held: tuple[int, ...]
    days_destroyed: tuple[int, ...]
    today: int


class KeyRing:
    """Per-day key material (pseudonyms, DLQ sealing, release noise), shared safely between processes.

    ``clock`` returns seconds since the epoch (tests pass a fake). Keys may be created for days
    ``today - retention_days … today + 1``; older days are refused and destroyed on the next write.
    """

    def __init__(
        self,
        path: Path,
        master_key: bytes,
        retention_days: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.retention_days = retention_days
        self._master = master_key
        self._kek_cache: tuple[bytes, AESGCM] | None = None
        self._clock = clock
        self._state: RingState | None = None

    @classmethod
    def from_settings(cls, settings: Settings, clock: Callable[[], float] = time.time) -> KeyRing:
        """Open the ring at ``settings.resolved_keyring_path()``; fails fast on a bad ring."""
        ring = cls(
            settings.resolved_keyring_path(), load_master_key(settings), settings.key_retention_days, clock
        )
        ring.reload()  # a wrong master key or a tampered file stops start-up here, not at first ping
        return ring

    # ---- time --------------------------------------------------------------------------------
    def today(self) -> int:
        return utc_day(int(self._clock() * 1000))

    def oldest_allowed(self) -> int:
        return self.today() - self.retention_days

    # ---- public key material ----------------------------------------------------------------
    def derive(self, purpose: bytes, day: int, *, create: bool = True) -> bytes:
        """The 32-byte key of ``purpose`` for UTC ``day``; creates the day secret if allowed."""
        secret = self._day_secret(day, create=create)
        state = self._require_state()
        return _hkdf(self._master + secret, state.salt, b"hexpulse " + purpose + b" v1 day=%d" % day)

    def is_destroyed(self, day: int) -> bool:
        """Whether the ring records ``day`` as destroyed (reads the file if not loaded yet)."""
        state = self._state or self.reload()
        return state is not None and day in state.destroyed

    def status(self) -> RingStatus:
        state = self.reload()
        return RingStatus(
            path=self.path,
            exists=state is not None,
            days_held=tuple(sorted(state.days)) if state else (),
            days_destroyed=tuple(sorted(state.destroyed)) if state else (),
            today=self.today(),
        )

    def ensure_current(self) -> list[int]:
        """Create today's and tomorrow's keys if missing and destroy expired ones; return created."""
        today = self.today()
        created: list[int] = []
        with self._locked() as state:
            for day in (today, today + 1):
                if day not in state.days:
                    state.days[day] = secrets.token_bytes(32)
                    created.append(day)
        return created

    def destroy_expired(self) -> list[int]:
        """Remove every day secret older than the retention period; return the days destroyed."""
        state = self.reload()
        if state is None or not self._expired(state):
            return []
        with self._locked() as locked:
            return self._expired(locked)  # _locked's write removes them

    # ---- internals ---------------------------------------------------------------------------
    def _expired(self, state: RingState) -> list[int]:
        oldest = self.oldest_allowed()
        return sorted(day for day in state.days if day < oldest)

    def _day_secret(self, day: int, *, create: bool) -> bytes:
        state = self._state
        if state is None or day not in state.days:
            state = self.reload()
        self._check_allowed(day, state)
        if state is not None and day in state.days:
            return state.days[day]
        if not create:
            raise KeyUnavailableError(f"no key exists for UTC day {day}")
        with self._locked() as locked:
            if day not in locked.days:
                locked.days[day] = secrets.token_bytes(32)
            return locked.days[day]

    def _check_allowed(self, day: int, state: RingState | None) -> None:
        if (state is not None and day in state.destroyed) or day < self.oldest_allowed():
            raise KeyDestroyedError(
                f"the key of UTC day {day} is past the {self.retention_days}-day key retention and "
                "is (or will be) destroyed; data of that day cannot be pseudonymized or opened"
            )
        if day > self.today() + 1:
            raise KeyUnavailableError(f"UTC day {day} is in the future; no key is issued for it yet")

    def _require_state(self) -> RingState:
        if self._state is None:
            raise KeyringError(f"the key ring at {self.path} is empty")
        return self._state

    def _aead(self, salt: bytes) -> AESGCM:
        if self._kek_cache is None or self._kek_cache[0] != salt:
            kek = _hkdf(self._master, salt, b"hexpulse keyring kek v1")
            self._kek_cache = (salt, AESGCM(kek))
        return self._kek_cache[1]

    def reload(self) -> RingState | None:
        """Read and decrypt the ring file (None if absent); raises KeyringError if it won't decrypt."""
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            self._state = None
            return None
        except OSError as exc:
            raise KeyringError(f"the key ring at {self.path} cannot be read ({exc.strerror}).") from None
        self._state = self._decode(blob)
        return self._state

    def _decode(self, blob: bytes) -> RingState:
        if len(blob) < _HEADER_BYTES + _NONCE_BYTES + 16 or not blob.startswith(MAGIC):
            raise KeyringError(f"the file at {self.path} is not a hexpulse key ring (bad header).")
        header, nonce = blob[:_HEADER_BYTES], blob[_HEADER_BYTES : _HEADER_BYTES + _NONCE_BYTES]
        salt = header[len(MAGIC) :]
        try:
            plain = self._aead(salt).decrypt(nonce, blob[_HEADER_BYTES + _NONCE_BYTES :], header)
        except InvalidTag:
            raise KeyringError(
                f"the key ring at {self.path} does not decrypt with this master key: either the master "
                "key is wrong or the file was tampered with."
            ) from None
        doc = orjson.loads(plain)
        if doc.get("version") != 1:
            raise KeyringError(f"the key ring at {self.path} has layout version {doc.get('version')}, not 1.")
        return RingState(
            salt=salt,
            days={int(d): base64.b64decode(s) for d, s in doc["days"].items()},
            destroyed={int(d): str(at) for d, at in doc["destroyed"].items()},
        )

    def _encode(self, state: RingState) -> bytes:
        doc = {
            "version": 1,
            "days": {str(d): base64.b64encode(s).decode() for d, s in sorted(state.days.items())},
            "destroyed": {str(d): at for d, at in sorted(state.destroyed.items())},
        }
        header = MAGIC + state.salt
        nonce = os.urandom(_NONCE_BYTES)
        return header + nonce + self._aead(state.salt).encrypt(nonce, orjson.dumps(doc), header)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[RingState]:
        """Hold the ring lock, yield the freshest state, then destroy expired days and write."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            loaded = self.reload()
            state = loaded or RingState(salt=secrets.token_bytes(_SALT_BYTES))
            before = (set(state.days), set(state.destroyed))
            yield state
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock()))
            for day in self._expired(state):
                del state.days[day]
                state.destroyed[day] = stamp
            if loaded is None or (set(state.days), set(state.destroyed)) != before:
                self._write(self._encode(state))
            self._state = state
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _write(self, blob: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
