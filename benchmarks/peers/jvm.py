"""The Java peers: built with Maven into ``.local/peers/`` (git-ignored), run with the JDK 17 on PATH.

- (a) the Kafka Streams application in ``kafka-streams/`` (``hexpulse.peers.CellCounts``), in two
  topologies: ``dsl`` (repartition by cell) and ``local`` (Processor API, per input partition);
- (d) the consumer ceiling: ``org.apache.kafka.tools.ConsumerPerformance`` from
  ``org.apache.kafka:kafka-tools:4.4.0`` (what ``kafka-consumer-perf-test.sh`` runs), jars
  resolved by ``consumer-perf/pom.xml``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parents[1] / ".local" / "peers"
STREAMS_HEAP = "-Xmx1g"  # bounded: the machine is shared with ClickHouse and the broker
PERF_HEAP = "-Xmx512m"
QUIET = "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"
FETCH_BYTES = 8 << 20


class BuildError(RuntimeError):
    """A Java peer could not be built (Maven or the JDK missing, or a resolution/compile error)."""


def _mvn(pom: Path, out: Path, goals: list[str]) -> None:
    mvn = shutil.which("mvn")
    if mvn is None or shutil.which("java") is None:
        raise BuildError("the Java peers need Maven and a JDK 17 (Debian: apt-get install -y maven)")
    proc = subprocess.run(
        [mvn, "-q", "-B", "-f", str(pom), f"-Dpeers.out={out}", *goals],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise BuildError(f"mvn {' '.join(goals)} failed for {pom.relative_to(HERE.parents[1])}")


def build() -> None:
    """Compile the Kafka Streams peer and resolve both peers' jars (Maven's own caching applies)."""
    copy = "dependency:copy-dependencies"
    _mvn(HERE / "kafka-streams" / "pom.xml", OUT / "kafka-streams", ["package", copy])
    _mvn(HERE / "consumer-perf" / "pom.xml", OUT / "consumer-perf", [copy])


def streams_command(
    bootstrap: str, source: str, sink: str, app_id: str, state_dir: Path, commit_ms: int, topology: str
) -> list[str]:
    """``topology``: ``dsl`` (repartition by cell, windowed aggregate, suppress) or ``local``."""
    base = OUT / "kafka-streams"
    classpath = f"{base / 'target' / 'cell-counts-streams-1.jar'}:{base / 'libs'}/*"
    return [
        "java", STREAMS_HEAP, QUIET, "-cp", classpath, "hexpulse.peers.CellCounts",
        bootstrap, source, sink, app_id, str(state_dir), str(commit_ms), f"topology={topology}",
    ]  # fmt: skip


def consumer_ceiling(bootstrap: str, topic: str, records: int, group: str) -> float:
    """Records/s that ConsumerPerformance fetches and decodes (``fetch.nMsg.sec``: group join excluded)."""
    classpath = f"{OUT / 'consumer-perf' / 'libs'}/*"
    proc = subprocess.run(
        [
            "java", PERF_HEAP, QUIET, "-cp", classpath, "org.apache.kafka.tools.ConsumerPerformance",
            "--bootstrap-server", bootstrap, "--topic", topic, "--num-records", str(records),
            "--group", group, "--timeout", "30000",
            # hexpulse's own fetch size (HEXPULSE_CONSUMER_FETCH_BYTES) and poll size; the 1 MB
            # default fetch measured 16 k instead of 25 k batched records/s (one partition).
            "--fetch-size", str(FETCH_BYTES), "--command-property", "max.poll.records=5000",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [ln for ln in proc.stdout.splitlines() if "," in ln]
    if proc.returncode != 0 or len(lines) < 2:
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-2000:])
        raise RuntimeError(f"ConsumerPerformance failed on {topic} (exit {proc.returncode})")
    row = dict(zip([h.strip() for h in lines[0].split(",")], [v.strip() for v in lines[-1].split(",")],
                   strict=True))
    if int(row["data.consumed.in.nMsg"]) < records:
        raise RuntimeError(f"ConsumerPerformance read {row['data.consumed.in.nMsg']} of {records} records")
    return float(row["fetch.nMsg.sec"])
