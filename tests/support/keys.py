"""Shared fixtures of the key-ring tests: a fixed day, a fixed master key and a hand-moved clock."""

from __future__ import annotations

DAY = 20_784  # 2026-11-27
MASTER = bytes(range(32))


class FakeClock:
    """Seconds since the epoch, moved by hand."""

    def __init__(self, ts_ms: int) -> None:
        self.ms = ts_ms

    def __call__(self) -> float:
        return self.ms / 1000
