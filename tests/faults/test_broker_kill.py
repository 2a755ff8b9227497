"""The full-size Kafka broker kill of ``make faults``: a private broker SIGKILLed mid-stream for
``FAULTS_OUTAGE_S`` seconds (default 60, as the ClickHouse outage) under two consumers and a city
ten times the CI-sized test's (tests/integration/aggregate/test_broker_restart.py), then restarted
on its own log. Nothing lost, nothing doubled (partials equal the expected ones and a fault-free
consumer's); the figures go to RELIABILITY.md §1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hexpulse.settings import Settings
from tests.support.broker_kill import kill_broker_mid_stream
from tests.support.figures import needs_full, record_figure

pytestmark = [pytest.mark.integration, pytest.mark.slow, needs_full]
OUTAGE_S = float(os.environ.get("FAULTS_OUTAGE_S", "60"))


def test_broker_down_60s_loses_nothing(migrated: Settings, unique_name: str, tmp_path: Path) -> None:
    got = kill_broker_mid_stream(migrated, unique_name, tmp_path, devices=2_000, span_s=600, down_s=OUTAGE_S)
    record_figure("broker_kill", "messages / pings", f"{got.messages} / {got.pings}", "")
    record_figure("broker_kill", "partials rows (equal to a fault-free consumer's)", got.partial_rows, "rows")
    record_figure("broker_kill", "broker down", got.down_s, "s")
    record_figure("broker_kill", "all windows closed after the restart", got.finished_after_restart_s, "s")
    peak = got.consumer_peak_rss_mib
    record_figure("broker_kill", "two consumers' peak RSS, outage and catch-up", peak, "MiB")
