"""Sealing of dead-letter payloads: AES-256-GCM under the current UTC day's sealing key.

A sealed record is ``(key_id, nonce ‖ ciphertext ‖ tag)``; the key id (``d<day>``) travels in the
record header and is bound to the ciphertext as associated data. Sealing keys live in the same
ring as pseudonym keys and are destroyed with them, so DLQ records older than the key retention
become unreadable (crypto-shredding; docs/KEYS.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hexpulse.settings import Settings
from hexpulse.times import utc_day
from privacy.keys.exceptions import SealError
from privacy.keys.keyring import PURPOSE_SEAL, KeyRing

NONCE_BYTES = 12


def key_id_for(day: int) -> str:
    return f"d{day}"


def day_of_key_id(key_id: str) -> int:
    """The UTC day a key id names; SealError for anything else."""
    if len(key_id) < 2 or key_id[0] != "d" or not key_id[1:].isdigit():
        raise SealError(f"unknown sealing key id {key_id[:32]!r}")
    return int(key_id[1:])


class PayloadSealer:
    """Encrypts DLQ payloads (``seal``) and, for authorized tooling, decrypts them (``open``)."""

    def __init__(self, ring: KeyRing, clock: Callable[[], float] = time.time) -> None:
        self.ring = ring
        self._clock = clock
        self._aeads: dict[int, AESGCM] = {}

    @classmethod
    def from_settings(cls, settings: Settings, clock: Callable[[], float] = time.time) -> PayloadSealer:
        return cls(KeyRing.from_settings(settings, clock), clock)

    def seal(self, plaintext: bytes) -> tuple[str, bytes]:
        """(key id, 96-bit random nonce ‖ AES-GCM ciphertext) under today's (UTC) sealing key."""
        day = utc_day(int(self._clock() * 1000))
        key_id = key_id_for(day)
        nonce = os.urandom(NONCE_BYTES)
        return key_id, nonce + self._aead(day, create=True).encrypt(nonce, plaintext, key_id.encode())

    def open(self, key_id: str, blob: bytes) -> bytes:
        """The plaintext of a sealed record; SealError if it was altered, KeyDestroyedError if expired."""
        day = day_of_key_id(key_id)
        if len(blob) < NONCE_BYTES + 16:
            raise SealError("sealed payload is too short to hold a nonce and a tag")
        try:
            return self._aead(day, create=False).decrypt(
                blob[:NONCE_BYTES], blob[NONCE_BYTES:], key_id.encode()
            )
        except InvalidTag:
            raise SealError(f"sealed payload under key {key_id} failed authentication") from None

    def _aead(self, day: int, *, create: bool) -> AESGCM:
        aead = self._aeads.get(day)
        if aead is None:
            aead = AESGCM(self.ring.derive(PURPOSE_SEAL, day, create=create))
            oldest = self.ring.oldest_allowed()
            for cached in [d for d in self._aeads if d < oldest]:
                del self._aeads[cached]
            self._aeads[day] = aead
        return aead
