"""A corrupt record batch on the broker's disk: the consumer stops that partition at the batch with
one error line naming topic, partition and offset, keeps aggregating its other partitions
exactly, and still stops cleanly on SIGTERM (kafka-python 3.0.12 alone would spin in poll()
forever; aggregate/kafka/records.py, DrainingPartitionRecords).

The corruption is real: one byte inside a batch's CRC-covered records, flipped in the log segment
of a private broker stopped cleanly (a clean stop leaves no log recovery to run, so the broker
serves the batch as it is on disk; docs/KAFKA.md, "A corrupt record batch").
"""

from __future__ import annotations

import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest

from hexpulse.settings import Settings
from hexpulse.store.scratch import drop_database
from tests.support.aggregate import (
    HEXPULSE,
    agg_settings,
    env_for,
    expected,
    free_port,
    produce_stream,
    read_horizons,
    read_partials,
    scrape,
)
from tests.support.kafka_broker import PrivateKafka

pytestmark = pytest.mark.integration

BATCH_HEADER = 61  # bytes of a v2 record batch before its records (the CRC covers 21.. to the end)
BROKEN = 0  # the partition whose log gets the bad batch


def corrupt_middle_batch(segment: Path) -> int:
    """Flip one byte in the records of the batch holding the segment's middle offset; its base offset."""
    data = bytearray(segment.read_bytes())
    batches = []
    pos = 0
    while pos + 12 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        batches.append((pos, base, length))
        pos += 12 + length
    last = batches[-1][1]
    pos, base, length = next(b for b in batches if b[1] >= last // 2)
    data[pos + BATCH_HEADER + (12 + length - BATCH_HEADER) // 2] ^= 0xFF
    segment.write_bytes(bytes(data))
    return int(base)


@pytest.mark.parametrize("fast_decode", [True, False], ids=["hexpulse-decoder", "kafka-python-decoder"])
def test_corrupt_batch_stops_its_partition_only(
    migrated: Settings, unique_name: str, tmp_path: Path, fast_decode: bool
) -> None:
    broker = PrivateKafka(tmp_path / "kafka-state")
    broker.start()
    proc: subprocess.Popen[bytes] | None = None
    s = migrated
    try:
        s = agg_settings(
            migrated.model_copy(update={"kafka_bootstrap": broker.bootstrap}),
            unique_name,
            state_dir=tmp_path,
            shutdown_timeout_s=8.0,
            metrics_port=free_port(),
        )
        stream = produce_stream(s, devices=120, span_s=120, seed=17)
        broker.stop()
        bad_offset = corrupt_middle_batch(broker.data_dir / f"{s.topic_pings}-{BROKEN}" / f"{0:020d}.log")
        broker.start()

        log = tmp_path / "consume.log"
        env = {**env_for(s), "HEXPULSE_CONSUMER_FAST_DECODE": str(fast_decode).lower()}
        with log.open("ab") as fh:
            proc = subprocess.Popen([HEXPULSE, "consume"], env=env, stdout=fh, stderr=fh)
        need = stream.max_ts_ms // s.window_ms * s.window_ms + s.window_ms
        deadline = time.monotonic() + 120
        while True:
            horizons = read_horizons(s)
            healthy_done = all(horizons.get(p, 0) >= need for p in range(1, s.topic_partitions))
            if healthy_done and '"corrupt record batch; partition stopped"' in log.read_text():
                break
            assert time.monotonic() < deadline, "healthy partitions unfinished, or no error logged"
            assert proc.poll() is None, f"the consumer exited with {proc.returncode}"
            time.sleep(0.5)
        assert scrape(s.metrics_port)["hexpulse_aggregate_quarantined_partitions"] == 1
        assert horizons.get(BROKEN, 0) < need  # stopped at the batch, not closed past it

        errors = [line for line in log.read_text().splitlines() if '"corrupt record batch' in line]
        assert len(errors) == 1  # reported once, not once per poll
        assert f'"partition":{BROKEN}' in errors[0] and f'"offset":{bad_offset}' in errors[0]
        assert f'"topic":"{s.topic_pings}"' in errors[0]

        # The healthy partitions are exact; of the broken one only windows closed before the batch.
        want, _, _ = expected(s, stream)
        got = read_partials(s)
        assert {k: v for k, v in got.items() if k[2] != BROKEN} == {
            k: v for k, v in want.items() if k[2] != BROKEN
        }
        assert all(want.get(k) == v for k, v in got.items() if k[2] == BROKEN)

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=s.shutdown_timeout_s + 15) == 0
        proc = None
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        broker.stop()
        drop_database(s)
