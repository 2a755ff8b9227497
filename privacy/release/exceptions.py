"""Errors of the differential-privacy release, all under :class:`privacy.exceptions.PrivacyError`."""

from __future__ import annotations

from hexpulse.errors import ConfigError
from privacy.exceptions import PrivacyError


class BudgetError(PrivacyError, ConfigError):
    """The configured releases cannot be paid for by the daily privacy budget."""


class ReleaseError(PrivacyError):
    """A window could not be released (the message names the window); nothing was published."""


class PlanConflictError(ReleaseError):
    """A window is claimed under another release plan; it is not drawn (retried later)."""


class DoubleDrawError(ReleaseError):
    """A window's ledger holds two different draws of one family; the window is not published."""

