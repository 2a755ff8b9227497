"""Errors raised by the aggregate stage (all under :class:`hexpulse.errors.HexpulseError`)."""

from __future__ import annotations

from hexpulse.errors import HexpulseError, ServiceUnavailableError, StoreError


class AggregateError(HexpulseError):
    """Base class for aggregate errors."""


class SinkUnavailableError(AggregateError, ServiceUnavailableError):
    """ClickHouse refused or dropped a partials/progress write; the batch is kept and retried."""


class ProgressError(AggregateError, StoreError):
    """The progress table holds something a consumer cannot resume from (names topic, partition)."""


class ConsumerStalledError(AggregateError):
    """The consume loop owed work and made no progress for ``consumer_stall_timeout_s``; the
    process exits with ``exit_code`` so its supervisor restarts it (aggregate/watchdog.py)."""

    exit_code = 75
