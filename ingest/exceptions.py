"""Errors raised by ingest. Bad *input* never raises: it becomes a DLQ reason code."""

from __future__ import annotations

from hexpulse.errors import HexpulseError


class IngestError(HexpulseError):
    """Root of the ingest package's errors."""


class DeadLetterError(IngestError, ConnectionError):
    """The DLQ topic did not acknowledge some records; offsets must not be committed."""
