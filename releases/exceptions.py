"""Errors of the read side, under :class:`hexpulse.errors.HexpulseError`."""

from hexpulse.errors import ConfigError, HexpulseError


class ReleasesError(HexpulseError):
    """Base class of the read side's errors."""


class FollowerNameError(ReleasesError, ConfigError):
    """A follower name that cannot key a cursor; the message says what is allowed."""
