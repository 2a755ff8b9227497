"""Pseudonyms: keyed BLAKE2b of the upstream device string under the key of its UTC day.

The key rotates at 00:00 UTC, so one device has unrelated pseudonyms on different days (the
privacy unit is the device-day) and, once a day's key is destroyed, nobody can recompute that
day's pseudonyms (privacy/keys/keyring.py, docs/KEYS.md).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from hexpulse.settings import Settings
from privacy.keys.keyring import PURPOSE_PSEUDONYM, KeyRing

PSEUDONYM_BYTES = 8


class RotatingPseudonymizer:
    """``pseudonymize(device, day)`` → uint64; per-day hashers are cached (~0.7 µs per call).

    Raises :class:`privacy.keys.exceptions.KeyDestroyedError` for a day past the key retention and
    :class:`privacy.keys.exceptions.KeyUnavailableError` for a day after tomorrow (UTC).
    """

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring
        self._hashers: dict[int, Any] = {}  # day → keyed blake2b ready to copy

    @classmethod
    def from_settings(
        cls, settings: Settings, clock: Callable[[], float] = time.time
    ) -> RotatingPseudonymizer:
        return cls(KeyRing.from_settings(settings, clock))

    def pseudonymize(self, device: bytes, day: int) -> int:
        """The pseudonym (unsigned 64-bit int) of ``device`` on UTC ``day`` (= ts_ms // 86_400_000)."""
        base = self._hashers.get(day)
        if base is None:
            base = self._load(day)
        h = base.copy()
        h.update(device)
        return int.from_bytes(h.digest(), "little")

    def has_key(self, day: int) -> bool:
        """Whether ``day`` has (or may be given) a key; False means pseudonymize would raise."""
        if day in self._hashers:
            return True
        return self.ring.oldest_allowed() <= day <= self.ring.today() + 1 and not self.ring.is_destroyed(day)

    def _load(self, day: int) -> Any:
        key = self.ring.derive(PURPOSE_PSEUDONYM, day)
        oldest = self.ring.oldest_allowed()
        # Forget expired days so a long-running process does not keep destroyed keys in memory.
        for cached in [d for d in self._hashers if d < oldest]:
            del self._hashers[cached]
        base = hashlib.blake2b(key=key, digest_size=PSEUDONYM_BYTES, person=b"hexpulse-pseudo")
        self._hashers[day] = base
        return base
