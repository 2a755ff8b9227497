"""Errors raised by the API layer, all under :class:`ApiError`.

Each carries the HTTP status it maps to; one handler in :mod:`api.errors` turns any of them into a
JSON body ``{"error": <code>, "detail": <sentence>}``. Client mistakes also inherit ``ValueError``
(as h3-py's errors do), so plain Python callers can catch either.
"""

from __future__ import annotations

from hexpulse.errors import HexpulseError


class ApiError(HexpulseError):
    """Root of every error raised on purpose by ``api/``."""

    status_code = 500
    code = "internal"


class BadRequestError(ApiError, ValueError):
    """The request is malformed or out of the allowed limits (bbox, area, res, time range)."""

    status_code = 400
    code = "bad_request"


class UnknownCellError(BadRequestError):
    """A cell id is not a valid H3 index, or not at a released resolution."""

    code = "unknown_cell"


class NotFoundError(ApiError, LookupError):
    """Nothing released matches (no window at that time, no such key)."""

    status_code = 404
    code = "not_found"


class AuthenticationError(ApiError):
    """No API key, or an unknown, malformed or revoked one."""

    status_code = 401
    code = "unauthorized"


class ForbiddenError(ApiError):
    """The key is valid but lacks the scope the endpoint needs."""

    status_code = 403
    code = "forbidden"


class RateLimitedError(ApiError):
    """The key spent its token bucket; ``retry_after_s`` says when one token is back."""

    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotReadyError(ApiError):
    """ClickHouse is unreachable or releases are stale (readiness probe)."""

    status_code = 503
    code = "not_ready"


class ConflictError(ApiError):
    """The request contradicts stored state (a zone overlapping another of its set, a taken id)."""

    status_code = 409
    code = "conflict"
