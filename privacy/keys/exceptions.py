"""Errors of the pseudonym and sealing keys, all under :class:`privacy.exceptions.PrivacyError`.

They also inherit the matching built-in or hexpulse class (as h3-py does), so a missing master key
is both a ``PrivacyError`` and a ``ConfigError`` and stops start-up with one sentence.
"""

from __future__ import annotations

from hexpulse.errors import ConfigError
from privacy.exceptions import PrivacyError


class MasterKeyError(PrivacyError, ConfigError):
    """The master key is missing, unreadable or malformed."""


class KeyringError(PrivacyError):
    """The key ring file does not decrypt (wrong master key or tampered) or is not a key ring."""


class KeyUnavailableError(PrivacyError, LookupError):
    """No key exists for that day and none may be created (too far in the past or the future)."""


class KeyDestroyedError(KeyUnavailableError):
    """That day's key was destroyed after the retention period; its outputs cannot be recomputed."""


class SealError(PrivacyError, ValueError):
    """A sealed payload failed authentication or names an unknown key id."""
