"""Errors raised by the aggregate stage (all under :class:`hexpulse.errors.HexpulseError`)."""

from __future__ import annotations

from hexpulse.errors import HexpulseError, ServiceUnavailableError, StoreError


class AggregateError(HexpulseError):
    """Base class for aggregate errors."""


class SinkUnavailableError(AggregateError, ServiceUnavailableError):
    """ClickHouse refused or dropped a partials/progress write; the batch is kept and retried."""


class ProgressError(AggregateError, StoreError):
    """The progress table holds something a consumer cannot resume from (names topic, partition)."""
