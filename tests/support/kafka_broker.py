"""A private Apache Kafka broker for fault tests: own ports, own data folder, started and stopped
by the same code as ``make services`` (``deploy/local/services.sh kafka-up``/``kafka-down``).

The shared broker is never touched. The jars are the ones ``make services`` resolved (the
session's ``HEXPULSE_LOCAL_STATE``, or ``.local``), so a private broker costs a JVM start, not a
download.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "deploy" / "local" / "services.sh"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a killed process whose parent has not reaped it yet does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def shared_libs() -> Path:
    """Where ``make services`` keeps the broker's jars."""
    if os.environ.get("HEXPULSE_KAFKA_LIBS"):
        return Path(os.environ["HEXPULSE_KAFKA_LIBS"])
    return Path(os.environ.get("HEXPULSE_LOCAL_STATE") or ROOT / ".local") / "kafka" / "libs"


class PrivateKafka:
    """One single-node KRaft broker under ``state``; ports stay the same across restarts."""

    def __init__(self, state: Path, heap: str = "-Xms128m -Xmx384m", extra_config: str = "") -> None:
        """``extra_config``: server.properties lines appended to the generated ones (later keys win)."""
        self.state = state
        self.port = _free_port()
        self.controller_port = _free_port()
        self.heap = heap
        self.extra_config = extra_config

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.state / "kafka" / "data"

    @property
    def log(self) -> Path:
        return self.state / "kafka" / "logs" / "server.log"

    def _services(self, command: str, timeout_s: float) -> None:
        env = {
            **os.environ,
            "HEXPULSE_LOCAL_STATE": str(self.state),
            "HEXPULSE_KAFKA_BOOTSTRAP": self.bootstrap,
            "HEXPULSE_KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "HEXPULSE_KAFKA_LIBS": str(shared_libs()),
            "HEXPULSE_KAFKA_HEAP_OPTS": self.heap,
        }
        if self.extra_config:
            self.state.mkdir(parents=True, exist_ok=True)
            extra = self.state / "extra.properties"
            extra.write_text(self.extra_config)
            env["HEXPULSE_KAFKA_EXTRA_CONFIG"] = str(extra)
        done = subprocess.run(
            [str(SERVICES), command], env=env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"services.sh {command} failed: {done.stderr.strip() or done.stdout.strip()}")

    def start(self, timeout_s: float = 120.0) -> None:
        """Start (or restart on the same data) and return once the broker is ready."""
        self._services("kafka-up", timeout_s)

    def pid(self) -> int | None:
        try:
            pid = int((self.state / "kafka.pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def kill9(self) -> None:
        """SIGKILL: no flush, no checkpoint, no controlled shutdown."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        """Clean stop (SIGTERM, then SIGKILL after 30 s); a no-op if it is not running."""
        if self.pid() is not None:
            self._services("kafka-down", 60.0)
