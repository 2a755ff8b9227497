"""The root of every hexpulse exception.

Each package (ingest, aggregate, privacy, api) defines its own exceptions in its ``exceptions.py``
under :class:`HexpulseError`. Where an error is also a classic Python error, it inherits that
built-in too (as h3-py does), so callers can catch either.
"""


class HexpulseError(Exception):
    """Base class for every error hexpulse raises on purpose."""


class ConfigError(HexpulseError, ValueError):
    """A setting is missing or invalid; the message is one sentence a person can act on."""


class ServiceUnavailableError(HexpulseError, ConnectionError):
    """A backing service (Kafka, ClickHouse) could not be reached."""


class StoreError(HexpulseError):
    """ClickHouse rejected a statement; the message names the table or migration."""
