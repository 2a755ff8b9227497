"""Per-key token buckets: ``rate_limit_per_min`` requests per minute, bursts up to the same number."""

from __future__ import annotations

import threading
import time

from api.exceptions import RateLimitedError


class RateLimiter:
    """In-process buckets (one per key id). Several API processes each enforce the limit alone."""

    def __init__(self, per_min: int) -> None:
        self._capacity = float(per_min)
        self._rate = per_min / 60.0  # tokens per second
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, monotonic time)
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """Spend one token of ``key`` or raise RateLimitedError with the seconds until one is back."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self._capacity, now))
            tokens = min(self._capacity, tokens + (now - last) * self._rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self._rate
                raise RateLimitedError(
                    f"rate limit of {int(self._capacity)} requests per minute exceeded for this key",
                    retry_after_s=wait,
                )
            self._buckets[key] = (tokens - 1.0, now)
