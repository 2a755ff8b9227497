"""ClickHouse writes of aggregate: exact partials, then the progress row that vouches for them.

Both tables live in the restricted exact database (``Settings.exact_database``), which only the
pipeline user can read, with ``tourism_presence`` (aggregate/presence.py), the tourism areas'
pseudonyms per window, and ``traffic_moving`` / ``traffic_movers``, each moving device-window's
cells and speed bin, and who moved (the speed bins' per-device-day bound:
privacy/release/traffic_bound.py), written in the same unit: after the partials, before the progress row.

Order matters: a progress row says "every window in ``[from_horizon, horizon)`` is written, as
the partial rows carrying this closing id", so it goes in after the partials. A crash between the
two leaves partial rows that no progress row names; the releaser ignores them, and the next owner
replays and writes its own closing (hexpulse/store/progress.py). Taking a partition over starts
with a claim row, which fences off the previous owner's later writes.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
from clickhouse_driver import Client

from aggregate.bounding import Contributions, Partials
from aggregate.exceptions import ProgressError, SinkUnavailableError
from aggregate.presence import Presence, TourismZones, tourism_cells_query, zone_cells
from aggregate.windows import NO_TIME, Closing
from hexpulse.errors import HexpulseError
from hexpulse.settings import Settings
from hexpulse.store import connect
from hexpulse.store.errors import DRIVER_FAILURES, store_failure
from hexpulse.store.progress import CLAIM, COLUMNS, Coverage, ProgressRow

_NO_PARTIALS = Partials(
    np.empty(0, np.int64), np.empty(0, np.uint64), np.empty(0, np.int64), np.empty(0, np.int64),
    np.empty(0, np.int64), 0, np.zeros((0, 0), np.int64),
)  # fmt: skip


_PROGRESS_COLUMNS = (
    "topic, partition, horizon, from_horizon, watermark_ms, close_offset, closed_by, closing, epoch, "
    "generation, written_at"
)


@dataclass(frozen=True)
class Resume:
    """Where a partition's previous owners got to: horizon and watermark in ms since epoch (None
    for a fresh partition), and the highest owner epoch recorded for it."""

    horizon_ms: int | None
    watermark_ms: int | None
    epoch: int


def _s(ms: int) -> int:
    """A ms time as the whole seconds of a ``DateTime`` column (times before 1970 become 0)."""
    return max(ms // 1000, 0)


def progress_row(c: Closing) -> ProgressRow:
    """How the progress row that :meth:`PartialsSink.write` stores for ``c`` reads back."""
    return ProgressRow(
        partition=c.partition,
        from_ms=_s(c.from_horizon_ms) * 1000,
        to_ms=_s(c.horizon_ms) * 1000,
        watermark_ms=c.watermark_ms,
        closing=c.closing_id,
        epoch=c.epoch,
        generation=c.generation,
        closed_by=c.closed_by,
    )


def _moving(c: Closing) -> Contributions | None:
    """The contributions of ``c``'s moving device-windows (None when it has none)."""
    con = c.partials.contributions
    if con is None or not np.any(con.speed_bin >= 0):
        return None
    hit = con.speed_bin >= 0
    return Contributions(con.window_start_ms[hit], con.cell[hit], con.device[hit], con.speed_bin[hit])


def moving_columns(c: Closing) -> list[list[int]]:
    """``traffic_moving`` columns of one closing (window start s, partition, closing, pseudonym,
    base cell, speed bin): the contributions of moving device-windows."""
    con = _moving(c)
    if con is None:
        return [[] for _ in range(6)]
    n = len(con)
    return [(con.window_start_ms // 1000).tolist(), [c.partition] * n, [c.closing_id] * n,
            con.device.tolist(), con.cell.tolist(), con.speed_bin.tolist()]  # fmt: skip


def mover_columns(c: Closing) -> list[list[int]]:
    """``traffic_movers`` columns of one closing (window start s, partition, closing, pseudonym):
    each moving device-window once, whatever its number of cells (vectorized: no row in Python)."""
    con = _moving(c)
    if con is None:
        return [[] for _ in range(4)]
    pairs = np.unique(np.stack([con.window_start_ms // 1000, con.device.astype(np.int64)], axis=1), axis=0)
    n = int(pairs.shape[0])
    return [pairs[:, 0].tolist(), [c.partition] * n, [c.closing_id] * n,
            pairs[:, 1].astype(np.uint64).tolist()]  # fmt: skip


class PartialsSink:
    """One ClickHouse connection, reconnected lazily after any failure."""

    def __init__(self, settings: Settings, tourism: TourismZones | None = None) -> None:
        self._settings = settings
        self._exact = settings.exact_database
        self._client: Client | None = None
        self.tourism = tourism or TourismZones(self._load_tourism)

    def _load_tourism(self, window_s: int) -> dict[int, tuple[str, ...]]:
        sql, params = tourism_cells_query(self._settings.clickhouse_database, window_s)
        return zone_cells(self._execute("read tourism zones", sql, params))

    def presence(self, closing: Closing) -> Presence:
        """The tourism presence rows of ``closing`` (none for a claim or an empty closing)."""
        c = closing.partials.contributions
        if c is None or not len(c):
            return Presence(np.empty(0, np.int64), [], np.empty(0, np.uint64))
        return self.tourism.presence(c.window_start_ms, c.cell, c.device)

    def _conn(self) -> Client:
        if self._client is None:
            self._client = connect(self._settings)
        return self._client

    def _fail(self, what: str, exc: BaseException) -> HexpulseError:
        if self._client is not None:
            with contextlib.suppress(*DRIVER_FAILURES):  # already broken; dropping it is all we want
                self._client.disconnect()
            self._client = None
        return store_failure(exc, what, unavailable=SinkUnavailableError, rejected=SinkUnavailableError)

    def _execute(self, what: str, sql: str, params: Any = None, *, columnar: bool = False) -> Any:
        try:
            return self._conn().execute(sql, params, columnar=columnar)
        except DRIVER_FAILURES as exc:
            raise self._fail(what, exc) from None

    def write(self, topic: str, closings: list[Closing]) -> None:
        """Insert the partials of ``closings`` (one columnar insert), then their progress rows.

        Raises SinkUnavailableError; a retry rewrites the same rows, which the table's key absorbs.
        """
        parts = [c for c in closings if len(c.partials)]
        if parts:
            columns = [
                np.concatenate([c.partials.window_start_ms // 1000 for c in parts]).tolist(),
                np.concatenate([c.partials.cell for c in parts]).tolist(),
                np.concatenate([np.full(len(c.partials), c.partition, np.int64) for c in parts]).tolist(),
                np.concatenate([np.full(len(c.partials), c.closing_id, np.uint64) for c in parts]).tolist(),
                np.concatenate([c.partials.devices for c in parts]).tolist(),
                np.concatenate([c.partials.moving for c in parts]).tolist(),
                np.concatenate([c.partials.speed_sum for c in parts]).tolist(),
                np.concatenate([c.close_offsets for c in parts]).tolist(),
                np.concatenate([c.partials.speed_bins for c in parts]).tolist(),
            ]
            self._execute(
                "insert into partials",
                f"INSERT INTO {self._exact}.partials (window_start, cell, partition, closing, devices, "
                "moving, speed_sum, close_offset, speed_bins) VALUES",
                columns,
                columnar=True,
            )
            self._write_presence(parts)
            self._write_moving(parts)
        now_s = int(time.time())
        self._execute(
            "insert into progress",
            f"INSERT INTO {self._exact}.progress ({_PROGRESS_COLUMNS}) VALUES",
            [
                (
                    topic,
                    c.partition,
                    _s(c.horizon_ms),
                    _s(c.from_horizon_ms),
                    c.watermark_ms,
                    c.close_offset,
                    c.closed_by,
                    c.closing_id,
                    c.epoch,
                    c.generation,
                    now_s,
                )
                for c in closings
            ],
        )

    def _write_presence(self, closings: list[Closing]) -> None:
        """Insert the tourism presence rows of ``closings`` (one columnar insert, if any)."""
        wins: list[int] = []
        zones: list[str] = []
        parts: list[int] = []
        ids: list[int] = []
        devs: list[int] = []
        for c in closings:
            pres = self.presence(c)
            wins += (pres.window_start_ms // 1000).tolist()
            zones += pres.zone_id
            parts += [c.partition] * len(pres)
            ids += [c.closing_id] * len(pres)
            devs += pres.device.tolist()
        if zones:
            self._execute(
                "insert into tourism_presence",
                f"INSERT INTO {self._exact}.tourism_presence (window_start, zone_id, partition, closing, "
                "device) VALUES",
                [wins, zones, parts, ids, devs],
                columnar=True,
            )

    def _write_moving(self, closings: list[Closing]) -> None:
        """Insert the ``traffic_moving`` rows of ``closings`` (one per moving contribution), then
        their ``traffic_movers`` rows (one per moving device-window, no cell)."""
        rows = [moving_columns(c) for c in closings]
        if not sum(len(r[0]) for r in rows):
            return
        cols = [list(chain.from_iterable(r[i] for r in rows)) for i in range(6)]
        self._execute(
            "insert into traffic_moving",
            f"INSERT INTO {self._exact}.traffic_moving (window_start, partition, closing, device, cell, "
            "speed_bin) VALUES",
            cols,
            columnar=True,
        )
        movers = [mover_columns(c) for c in closings]
        self._execute(
            "insert into traffic_movers",
            f"INSERT INTO {self._exact}.traffic_movers (window_start, partition, closing, device) VALUES",
            [list(chain.from_iterable(m[i] for m in movers)) for i in range(4)],
            columnar=True,
        )

    def load_resume(self, topic: str, partition: int) -> Resume:
        """Where a new owner of ``partition`` starts: the highest horizon no later claim has cut
        short (hexpulse/store/progress.py), and the highest epoch so far."""
        cov = Coverage(self._progress(topic, partition))
        row = cov.resume(partition)
        epoch = cov.latest_epoch(partition)
        if row is None:
            return Resume(None, None, epoch)
        if row.to_ms < 0:
            raise ProgressError(f"progress of {topic}[{partition}] holds a negative horizon")
        return Resume(row.to_ms, row.watermark_ms, epoch)

    def _progress(self, topic: str, partition: int) -> list[ProgressRow]:
        """Every claim of the partition, and the closings that end after the latest claim's horizon
        (earlier ones cannot hold the resume point: a claim resumes at or after them)."""
        rows = self._execute(
            "read progress",
            f"SELECT {COLUMNS} FROM {self._exact}.progress FINAL "
            "WHERE topic = %(topic)s AND partition = %(partition)s "
            f"AND (closed_by = %(claim)s OR horizon >= (SELECT max(horizon) FROM {self._exact}.progress "
            "WHERE topic = %(topic)s AND partition = %(partition)s AND closed_by = %(claim)s))",
            {"topic": topic, "partition": partition, "claim": CLAIM},
        )
        return [ProgressRow.of(r) for r in rows]

    def claim(self, topic: str, partition: int, resume: Resume, generation: int) -> int:
        """Record that a new owner takes ``partition`` over from ``resume``; return its epoch.

        Written before the owner reads a record, so every closing it writes later carries an epoch
        above those of all previous owners, whose later writes this claim fences off.
        """
        epoch = resume.epoch + 1
        horizon = NO_TIME if resume.horizon_ms is None else resume.horizon_ms
        claim = Closing(
            partition=partition,
            horizon_ms=horizon,
            watermark_ms=NO_TIME if resume.watermark_ms is None else resume.watermark_ms,
            close_offset=-1,
            closed_by=CLAIM,
            partials=_NO_PARTIALS,
            close_offsets=np.empty(0, np.int64),
            first_offset=None,
            pings=0,
            from_horizon_ms=horizon,
            epoch=epoch,
            generation=generation,
        )
        self.write(topic, [claim])
        return epoch

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(*DRIVER_FAILURES):
                self._client.disconnect()
            self._client = None
