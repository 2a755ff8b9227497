"""Request limits that protect the API process from hostile clients (RELIABILITY.md §4).

- Bodies: at most ``api_max_body_bytes``. A declared ``Content-Length`` over it is refused before
  a byte is read; a chunked body is read up to the limit, then refused. 413 with a sentence.
- Endless streams (paths ending in ``/stream``): at most ``api_streams_per_key`` open at once per
  API key id (429) and ``api_max_streams`` per process (503), so a thousand idle SSE clients
  cannot take the event loop, the thread pool and ClickHouse from everyone else. The key id is read
  from the header unverified: a forged id is refused by the route at once, releasing its slot.

Pure ASGI (no BaseHTTPMiddleware): a streaming response passes through untouched.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hexpulse.settings import Settings

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _key_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            parts = value.decode("latin-1").partition(" ")[2].strip().split("_", 2)
            return parts[1] if len(parts) == 3 else ""
    return ""


async def _refuse(send: Send, status: int, code: str, detail: str, retry_after: int | None = None) -> None:
    headers = [(b"content-type", b"application/json")]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    body = orjson.dumps({"error": code, "detail": detail})
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class LimitsMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body = settings.api_max_body_bytes
        self.per_key = settings.api_streams_per_key
        self.max_streams = settings.api_max_streams
        self.streams: Counter[str] = Counter()  # open streams per key id ("" = none given)
        self.open_streams = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in _BODY_METHODS:
            await self._with_body(scope, receive, send)
        elif scope["path"].endswith("/stream"):
            await self._stream(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _with_body(self, scope: Scope, receive: Receive, send: Send) -> None:
        too_big = f"the request body is over the limit of {self.max_body} bytes"
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                await _refuse(send, 413, "body_too_large", too_big)
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await _refuse(send, 413, "body_too_large", too_big)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        # Deep nesting needs no check here: the parser's recursion limit makes it a quick 400.
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _key_id(scope)
        if self.open_streams >= self.max_streams:
            detail = f"this API process serves at most {self.max_streams} streams; retry later"
            await _refuse(send, 503, "too_many_streams", detail, 30)
            return
        if self.streams[key] >= self.per_key:
            detail = f"at most {self.per_key} open streams per API key; close one first"
            await _refuse(send, 429, "too_many_streams", detail, 30)
            return
        self.streams[key] += 1
        self.open_streams += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.open_streams -= 1
            self.streams[key] -= 1
            if not self.streams[key]:
                del self.streams[key]

    def snapshot(self) -> dict[str, Any]:
        """Open streams (in all, and the most any one key holds), for tests and metrics."""
        return {"open": self.open_streams, "max_per_key": max(self.streams.values(), default=0)}
