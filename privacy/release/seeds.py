"""Which secret key each noise draw's random bits come from.

A release draws one vector per (metric, measured resolution) of a window. Its ChaCha20 key is

    HKDF-SHA256(day key, info = "hexpulse release-noise draw v1" ‖ window ‖ plan ‖ input ‖ metric ‖ res)

where the *day key* is the key ring's ``release-noise`` key of the window's UTC day (a random
secret per day, destroyed after ``key_retention_days``; docs/KEYS.md), *plan* the hash of the
release plan (:mod:`privacy.release.plans`) and *input* a digest of the exact per-cell totals
the draw is added to. Hence:

- the same window, plan and exact input give the same noise: a second releaser, or one
  restarted after a crash at any instruction, reproduces the values already drawn instead of
  drawing new ones (noise once, PRIVACY.md §5);
- a different exact input (a bug upstream) gets *independent* noise. Reusing the noise on a
  different input would publish the exact difference of the two inputs; independent noise costs
  at most one more draw, which the ledger shows (two fingerprints) and the releaser refuses to
  publish;
- once the day key is destroyed, nobody (not even with the master key) can recompute the noise
  of that day's releases and subtract it.

The input digest is only ever an HKDF input; it is not stored anywhere.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from privacy.keys.keyring import PURPOSE_RELEASE_NOISE, KeyRing

_INFO = b"hexpulse release-noise draw v1"


@dataclass(frozen=True)
class DrawKeys:
    """The keys of one window's draws: ``key(metric, res)`` is 32 bytes for :mod:`.sampler`."""

    root: bytes
    context: bytes

    def key(self, metric: str, res: int) -> bytes:
        info = b"|".join((_INFO, self.context, metric.encode(), b"res=%d" % res))
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(self.root)


def input_digest(exact: Mapping[str, npt.NDArray[np.int64]]) -> bytes:
    """A digest of a window's exact per-cell totals (every metric, in name order)."""
    h = hashlib.blake2b(digest_size=32, person=b"hexpulse-input")
    for metric in sorted(exact):
        h.update(metric.encode() + b"\0")
        h.update(np.ascontiguousarray(exact[metric], dtype="<i8").tobytes())
    return h.digest()


def window_keys(ring: KeyRing, window_start_s: int, plan: int, digest: bytes) -> DrawKeys:
    """The deployed keys of window ``window_start_s`` (epoch s) under plan hash ``plan``.

    Raises ``KeyDestroyedError`` (a ``KeyUnavailableError``) when the window's day is past the
    key retention: such a window can no longer be released.
    """
    root = ring.derive(PURPOSE_RELEASE_NOISE, window_start_s // 86_400)
    return DrawKeys(root, b"window=%d|plan=%016x|input=%s" % (window_start_s, plan, digest.hex().encode()))


def seeded_keys(seed: int) -> DrawKeys:
    """Reproducible keys for tests and audits (never for a release: the seed is not secret)."""
    return DrawKeys(hashlib.sha256(b"hexpulse test seed %d" % seed).digest(), b"seeded")


def fresh_keys() -> DrawKeys:
    """Keys from the OS CSPRNG, different at every call (benchmarks; audits drawing many times)."""
    return DrawKeys(os.urandom(32), b"fresh")
