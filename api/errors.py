"""The one place errors become HTTP responses: ``{"error": code, "detail": sentence}``.

HexpulseError subclasses map to their status; request validation to 422 with the field named;
anything else to a JSON 500 without a stack (tests assert it never happens).
"""

from __future__ import annotations

import logging
import math

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from api.exceptions import ApiError, AuthenticationError, RateLimitedError
from hexpulse.errors import HexpulseError, ServiceUnavailableError, StoreError
from hexpulse.logs import log_event

log = logging.getLogger("hexpulse.api")


def error_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps({"error": code, "detail": detail})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _validation_sentence(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "the request is malformed"
    err = errors[0]
    loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body"))
    msg = str(err.get("msg", "invalid value"))
    if err.get("type") == "json_invalid":
        return "the request body is not valid JSON"
    return f"{loc or 'request'}: {msg}"


def install(app: FastAPI) -> None:
    @app.exception_handler(HexpulseError)
    async def hexpulse_error(request: Request, exc: HexpulseError) -> Response:
        if isinstance(exc, ApiError):
            headers = None
            if isinstance(exc, RateLimitedError):
                headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))}
            elif isinstance(exc, AuthenticationError):
                headers = {"WWW-Authenticate": "Bearer"}
            return error_response(exc.status_code, exc.code, str(exc), headers)
        if isinstance(exc, ServiceUnavailableError | StoreError):
            log_event(log, "store_unavailable", logging.WARNING, error=type(exc).__name__)
            return error_response(503, "unavailable", "the release store is unavailable; retry shortly")
        log_event(log, "hexpulse_error", logging.ERROR, error=type(exc).__name__)
        return error_response(500, "internal", "internal error")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return error_response(422, "invalid_request", _validation_sentence(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(exc.status_code, "http_error", str(exc.detail), dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log_event(log, "unexpected_error", logging.ERROR, error=type(exc).__name__)
        return error_response(500, "internal", "internal error")
