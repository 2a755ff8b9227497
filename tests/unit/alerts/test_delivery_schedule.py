"""The retry schedule: seconds, jittered, Retry-After honoured up to a cap."""

from __future__ import annotations

import random

from alerts.delivery import MAX_RETRY_AFTER_S, SCHEDULE_S, next_delay, retry_after


def test_the_schedule_is_seconds_with_jitter() -> None:
    rng = random.Random(1)
    for n, base in enumerate(SCHEDULE_S, start=1):
        d = next_delay(n, None, rng)
        assert 0.8 * base <= d <= 1.2 * base
    assert next_delay(50, None, rng) <= 1.2 * SCHEDULE_S[-1]


def test_retry_after_is_honoured_and_capped() -> None:
    rng = random.Random(1)
    assert next_delay(1, 30.0, rng) == 30.0
    assert next_delay(1, 10_000.0, rng) == MAX_RETRY_AFTER_S
    assert retry_after("7") == 7.0 and retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
