"""Prometheus metrics of the API (served at /metrics to admin keys)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("hexpulse_api_requests_total", "API requests", ["route", "status"])
LATENCY = Histogram(
    "hexpulse_api_request_seconds",
    "API request latency in seconds",
    ["route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
CACHE = Counter("hexpulse_api_payload_cache_total", "Density payload cache lookups", ["result"])
SSE_SUBSCRIBERS = Gauge("hexpulse_api_sse_subscribers", "Open live-stream subscribers")


class MetricsMiddleware:
    """Counts requests by route template (never the raw path: it could carry cell ids)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            name = getattr(route, "path", "unmatched")
            REQUESTS.labels(name, str(status[0])).inc()
            if name != "/v1/density/stream":
                LATENCY.labels(name).observe(time.perf_counter() - started)
