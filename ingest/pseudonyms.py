"""The seam between ingest and the privacy layer's rotating keyed hash.

Ingest calls :meth:`Pseudonymizer.pseudonymize` once per message per UTC day its pings span and
drops the upstream device string right after; only the returned ``uint64`` travels on. The
implementation (keyed BLAKE2b with a key that rotates at 00:00 UTC) is
``privacy.keys.pseudonyms.RotatingPseudonymizer``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Pseudonymizer(Protocol):
    def pseudonymize(self, device: bytes, day: int) -> int:
        """Pseudonym in ``[0, 2**64)`` of the UTF-8 ``device`` string on UTC ``day``.

        ``day`` is ``ts_ms // 86_400_000`` (days since 1970-01-01 UTC). The same (device, day)
        always maps to the same value; different days must be unlinkable without the key.
        Raises :class:`privacy.keys.exceptions.KeyUnavailableError` when that day has no key
        (ingest dead-letters those pings as ``no_key``); any other error stops the consumer.
        """
        ...
