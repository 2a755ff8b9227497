"""The root of the privacy layer's errors, :class:`PrivacyError`.

Each role has its own module under it: ``privacy.keys.exceptions`` (master key, key ring, sealing)
and ``privacy.release.exceptions`` (budget, release).
"""

from __future__ import annotations

from hexpulse.errors import HexpulseError


class PrivacyError(HexpulseError):
    """Root of every error raised on purpose by ``privacy/``."""
