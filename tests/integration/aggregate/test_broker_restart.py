"""Broker kill -9 and restart mid-stream: two consumers keep running through the outage, resume on
the restarted broker (same data folder, same ports) and leave exactly the partials of a fault-free
run, close offsets included: nothing lost, nothing counted twice (DESIGN-NOTES invariant 1).

Only a broker that keeps its log across a restart can be tested this way; the broker is a
private one (tests/support/kafka_broker.py), never the shared one. The full-size run with a
60-second outage is tests/faults/test_broker_kill.py (``make faults``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hexpulse.settings import Settings
from tests.support.broker_kill import kill_broker_mid_stream

pytestmark = pytest.mark.integration


def test_broker_kill9_restart_mid_stream_gives_fault_free_partials(
    migrated: Settings, unique_name: str, tmp_path: Path
) -> None:
    kill_broker_mid_stream(migrated, unique_name, tmp_path, devices=400, span_s=400, down_s=8.0)
