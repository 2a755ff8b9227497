"""Bearer-key authentication, scope checks and rate limiting as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio.to_thread
from fastapi import Request

from api.exceptions import AuthenticationError, ForbiddenError
from api.keys import ApiKey, KeyStore
from api.ratelimit import RateLimiter


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("send an API key as 'Authorization: Bearer <key>'")
    return token.strip()


def require(scope: str) -> Callable[[Request], Awaitable[ApiKey]]:
    """A dependency that authenticates the caller, checks ``scope`` and spends one rate token."""

    async def dependency(request: Request) -> ApiKey:
        token = bearer_token(request)
        keys: KeyStore = request.app.state.keys
        # HKDF costs microseconds; only a snapshot refresh (a ClickHouse read) goes to a thread.
        key = keys.verify(token) if keys.fresh else await anyio.to_thread.run_sync(keys.verify, token)
        if not key.allows(scope):
            raise ForbiddenError(f"this key lacks the '{scope}' scope")
        limiter: RateLimiter = request.app.state.limiter
        limiter.take(key.key_id)
        return key

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency
