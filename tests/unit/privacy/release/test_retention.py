"""Retention scheduling and cut-offs that need no ClickHouse."""

from __future__ import annotations

import logging

import pytest

from hexpulse.errors import StoreError
from hexpulse.settings import load_settings
from privacy.release.retention import RetentionSchedule, enforce_retention


def test_a_failing_run_is_logged_and_retried_later(caplog: pytest.LogCaptureFixture) -> None:
    # Port 1 on localhost refuses connections at once: retention fails without a server.
    s = load_settings(clickhouse_port=1)
    with pytest.raises(StoreError, match="retention on database"):
        enforce_retention(s)
    schedule = RetentionSchedule(s, interval_s=3600, retry_s=60)
    with caplog.at_level(logging.WARNING, logger="hexpulse.retention"):
        assert schedule.maybe_run() is None
    assert any(r.getMessage() == "retention failed; will retry" for r in caplog.records)
    caplog.clear()
    assert schedule.maybe_run() is None  # not retried before retry_s
    assert not caplog.records
