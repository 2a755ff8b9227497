"""Errors raised by the privacy layer, all under :class:`PrivacyError`.

Key-handling errors also inherit the matching built-in or hexpulse class (as h3-py does), so a
missing master key is both a ``PrivacyError`` and a ``ConfigError`` and stops start-up with one
sentence.
"""

from __future__ import annotations

from hexpulse.errors import ConfigError, HexpulseError


class PrivacyError(HexpulseError):
    """Root of every error raised on purpose by ``privacy/``."""


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


class BudgetError(PrivacyError, ConfigError):
    """The configured releases cannot be paid for by the daily privacy budget."""


class ReleaseError(PrivacyError):
    """A window could not be released (the message names the window); nothing was published."""
