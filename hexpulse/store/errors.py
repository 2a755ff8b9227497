"""The one translation of clickhouse-driver failures into hexpulse errors.

Every statement issued through :func:`hexpulse.store.connect` can fail in two ways that callers
treat differently: ClickHouse is unreachable (a network error or the driver's socket-timeout and
connection-refused codes: retry later, HTTP 503) or it rejected the statement (a bug or a schema
problem: :class:`hexpulse.errors.StoreError`). Stages pass their own error classes when they need
one (the aggregate sink, the releaser) but never inspect driver exceptions themselves.
"""

from __future__ import annotations

from clickhouse_driver.errors import Error as DriverError

from hexpulse.errors import HexpulseError, ServiceUnavailableError, StoreError

DRIVER_FAILURES: tuple[type[BaseException], ...] = (DriverError, OSError, EOFError)
"""What a clickhouse-driver call raises when the statement did not run."""

_UNREACHABLE_CODES = frozenset({209, 210})  # socket timeout, connection refused


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says ClickHouse could not be reached (rather than refusing a statement)."""
    return isinstance(exc, OSError | EOFError) or getattr(exc, "code", None) in _UNREACHABLE_CODES


def reason(exc: BaseException) -> str:
    """ClickHouse's own first line for a rejected statement, else the exception's type name."""
    message = getattr(exc, "message", None)
    if isinstance(exc, DriverError) and message and not is_unreachable(exc):
        return str(message).splitlines()[0]
    return type(exc).__name__


def store_failure(
    exc: BaseException,
    what: str,
    *,
    unavailable: type[HexpulseError] = ServiceUnavailableError,
    rejected: type[HexpulseError] = StoreError,
) -> HexpulseError:
    """The hexpulse error for a failed ``what`` (e.g. "insert into partials"), one sentence."""
    if is_unreachable(exc):
        return unavailable(f"ClickHouse is not reachable ({what} failed: {type(exc).__name__})")
    return rejected(f"ClickHouse refused {what}: {reason(exc)}")
