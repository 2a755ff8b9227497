"""Helpers of the releaser tests: windows of exact partials to release, a client that crashes after
its n-th statement, and readers that check "one value per key" in release_cells and the ledger."""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from clickhouse_driver import Client
from pydantic import SecretStr

from hexpulse.settings import Settings
from privacy.release.ledger import fingerprint
from tests.support.aggregate import HEXPULSE, TEST_KEY


def ts(epoch_s: int) -> datetime:
    """Naive UTC, the form clickhouse-driver writes into DateTime('UTC')."""
    return datetime.fromtimestamp(epoch_s, UTC).replace(tzinfo=None)


def recent_window(hours_ago: float = 3.0) -> int:
    """A window start (epoch s) in the recent past: release-noise keys exist for days the key ring
    holds (today − key retention … tomorrow), so released windows must be recent."""
    return int(time.time() - hours_ago * 3600) // 60 * 60


def release_settings(base: Settings, db: str, keyring: Path, **update: Any) -> Settings:
    """A releaser's settings: own database and topic, 3 partitions, the test master key and ring."""
    return base.model_copy(
        update={
            "clickhouse_database": db,
            "topic_pings": f"pings-{db}",
            "topic_partitions": 3,
            "master_key": SecretStr(TEST_KEY),
            "keyring_path": keyring,
            **update,
        }
    )


PARTIAL_COLUMNS = "window_start, cell, partition, devices, moving, speed_sum, close_offset, speed_bins"


def moving_rows(partials: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``traffic_moving`` rows of partial rows ``(window_start, cell, partition, devices, moving,
    speed_sum, close_offset, speed_bins)`` (closing 0), as the aggregate layer writes them: one per
    moving device, its bin taken in order from ``speed_bins``. A device's pseudonym is a hash of
    (window, cell, partition, rank), so rewriting a partial rewrites the same devices' rows."""
    out = []
    for w, cell, part, _d, _m, _s, _o, bins in partials:
        rank = 0
        for b, n in enumerate(bins):
            for _ in range(n):
                key = f"{w.isoformat()}:{cell}:{part}:{rank}".encode()
                dev = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
                out.append((w, part, 0, dev, cell, b))
                rank += 1
    return out


def insert_exact(
    client: Client, s: Settings, partials: list[tuple[Any, ...]], moving: list[tuple[Any, ...]] | None = None
) -> None:
    """Insert partial rows (:data:`PARTIAL_COLUMNS`) and their ``traffic_moving`` rows (``moving``:
    (window_start, partition, closing, device, cell, speed_bin); default :func:`moving_rows`) with
    the ``traffic_movers`` rows they imply, as the sink writes them."""
    client.execute(f"INSERT INTO {s.exact_database}.partials ({PARTIAL_COLUMNS}) VALUES", partials)
    rows = moving_rows(partials) if moving is None else moving
    if rows:
        client.execute(
            f"INSERT INTO {s.exact_database}.traffic_moving "
            "(window_start, partition, closing, device, cell, speed_bin) VALUES",
            rows,
        )
        client.execute(
            f"INSERT INTO {s.exact_database}.traffic_movers "
            "(window_start, partition, closing, device) VALUES",
            sorted({r[:4] for r in rows}),
        )


def insert_partials(
    client: Client, s: Settings, windows: Iterable[int], cells: np.ndarray, seed: int
) -> None:
    """A crowd in 40 of ``cells`` per window, spread over the 3 partitions (deterministic); its
    moving devices each in one of the plan's speed bins (``s``'s edges), as the aggregate layer writes
    them."""
    rng = random.Random(seed)
    inner = len(s.traffic_speed_edges_kmh)
    rows = []
    for w in windows:
        for cell in rng.sample(list(cells.tolist()), 40):
            for part in range(3):
                n = rng.randint(0, 400)
                moving = rng.randint(0, n)
                cuts = sorted(rng.randint(0, moving) for _ in range(inner))
                bins = [b - a for a, b in zip([0, *cuts], [*cuts, moving], strict=True)]
                rows.append((ts(w), int(cell), part, n, moving, moving * rng.randint(5, 60), w, bins))
    insert_exact(client, s, rows)


def progress(client: Client, s: Settings, partition: int, horizon: int) -> None:
    client.execute(
        f"INSERT INTO {s.exact_database}.progress "
        "(topic, partition, horizon, watermark_ms, close_offset, closed_by, written_at) VALUES",
        [(s.topic_pings, partition, ts(horizon), horizon * 1000, horizon, "watermark", ts(horizon))],
    )


def complete(client: Client, s: Settings, horizon: int) -> None:
    """Every partition closed every window starting before ``horizon``."""
    for part in range(s.topic_partitions):
        progress(client, s, part, horizon)


class Crash(Exception):
    """Raised by :class:`CrashAfter` in place of the process dying."""


class CrashAfter:
    """A ClickHouse client that runs its first ``n`` statements, then fails every later one, as if
    the process had died right after the n-th (the database keeps exactly what was executed)."""

    def __init__(self, client: Client, n: int) -> None:
        self._client = client
        self.n = n
        self.calls = 0

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        if self.calls >= self.n:
            raise Crash(f"crashed after statement {self.n}")
        self.calls += 1
        return self._client.execute(*args, **kwargs)


def double_values(client: Client, db: str) -> list[tuple[Any, ...]]:
    """(window, res, cell) keys holding more than one distinct released value, in any part
    (no FINAL: rows not merged yet are seen too)."""
    return list(
        client.execute(
            "SELECT window_start, res, cell, uniqExact(count, moving, count_sigma, count_lo, count_hi, "
            "moving_sigma, ifNull(speed_kmh, -1), count_est, plan) AS n "
            f"FROM {db}.release_cells GROUP BY window_start, res, cell HAVING n > 1 LIMIT 10"
        )
    )


def double_draws(client: Client, db: str) -> list[tuple[Any, ...]]:
    """Ledger keys (window, res, metric) with more than one fingerprint (a second, different draw)."""
    return list(
        client.execute(
            "SELECT window_start, res, metric, uniqExact(fingerprint) AS n "
            f"FROM {db}.release_ledger GROUP BY window_start, res, metric HAVING n > 1 LIMIT 10"
        )
    )


def cells_match_ledger(client: Client, db: str, window_start: datetime) -> bool:
    """The stored cells of a window are the draw its ledger recorded (count and moving families)."""
    prints = {
        (int(res), str(metric)): int(fp)
        for res, metric, fp in client.execute(
            f"SELECT res, metric, any(fingerprint) FROM {db}.release_ledger "
            "WHERE window_start = %(w)s GROUP BY res, metric",
            {"w": window_start},
        )
    }
    rows = client.execute(
        f"SELECT res, count, moving FROM {db}.release_cells FINAL WHERE window_start = %(w)s "
        "ORDER BY res, cell",
        {"w": window_start},
    )
    if not rows:
        return False
    for res in {int(r[0]) for r in rows}:
        for col, metric in ((1, "count"), (2, "moving")):
            values = np.array([r[col] for r in rows if r[0] == res], dtype=np.int64)
            if prints.get((res, metric)) != fingerprint(values):
                return False
    return True


def release_env(s: Settings) -> dict[str, str]:
    """Environment for a ``hexpulse release`` subprocess bound to these settings."""
    keep = ("HEXPULSE_SQL_CAPTURE",)  # the modern-dialect replay checks the subprocess's SQL too
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEXPULSE_") or k in keep}
    env.update(
        HEXPULSE_CLICKHOUSE_DATABASE=s.clickhouse_database,
        HEXPULSE_CLICKHOUSE_HOST=s.clickhouse_host,
        HEXPULSE_CLICKHOUSE_PORT=str(s.clickhouse_port),
        HEXPULSE_TOPIC_PINGS=s.topic_pings,
        HEXPULSE_TOPIC_PARTITIONS=str(s.topic_partitions),
        HEXPULSE_STATE_DIR=str(s.state_dir),
        HEXPULSE_KEYRING_PATH=str(s.resolved_keyring_path()),
        HEXPULSE_MASTER_KEY=TEST_KEY,
        HEXPULSE_LOG_LEVEL="WARNING",
    )
    return env


RELEASE_CMD = [HEXPULSE, "release", "--poll-s", "0.2"]
