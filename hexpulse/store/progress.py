"""What the ``progress`` table means: which closing decision counts for each partition and window.

Aggregate writes one progress row per *closing* (every window in ``[from_horizon, horizon)`` of a
partition is closed, and its partial rows carry the closing's id in ``partials.closing``) and one
*claim* row each time a consumer takes a partition over (``closed_by = 'claim'``, ``horizon`` =
where it resumes, a new ``epoch``). The releaser counts, per (partition, window), only the partials
of the one closing this module picks, so rows that no progress row vouches for (a crash between
the partials and the progress insert, followed by a replay that closed differently) and rows of a
fenced-off owner never count (issue #9, hole 4).

Fencing: a closing is superseded from a claim's resume horizon on when that claim has a higher
(epoch, generation) than the closing. A consumer that lost its partition but still writes (a
zombie after a rebalance) therefore cannot make a window complete or count in it once the new
owner has claimed the partition; the window is complete when the new owner closes it. Aggregate
resumes a partition from the same rule (:meth:`Coverage.resume`), so the two always agree.

Legacy rows (before migration 0008) have epoch 0 and closing 0 and are matched by closing 0.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

CLAIM = "claim"
"""``closed_by`` of a claim row (the other values, ``watermark`` and ``idle``, are closings)."""

COLUMNS = (
    "partition, toInt64(toUnixTimestamp(from_horizon)) * 1000, toInt64(toUnixTimestamp(horizon)) * 1000, "
    "watermark_ms, closing, epoch, generation, closed_by"
)
"""The columns :meth:`ProgressRow.of` reads, as a SELECT list over ``progress``."""


@dataclass(frozen=True)
class ProgressRow:
    """One progress row; times in ms since the epoch (whole seconds, as stored)."""

    partition: int
    from_ms: int
    to_ms: int
    watermark_ms: int
    closing: int
    epoch: int
    generation: int
    closed_by: str

    @classmethod
    def of(cls, row: tuple[Any, ...]) -> ProgressRow:
        """A row as the driver returns :data:`COLUMNS`."""
        p, f, t, wm, closing, epoch, gen, by = row
        return cls(int(p), int(f), int(t), int(wm), int(closing), int(epoch), int(gen), str(by))

    @property
    def is_claim(self) -> bool:
        return self.closed_by == CLAIM

    @property
    def owner(self) -> tuple[int, int]:
        """Order of owners: a later claim of a partition has a higher (epoch, Kafka generation)."""
        return (self.epoch, self.generation)


@dataclass(frozen=True)
class Counted:
    """The closing that counts for a window of a partition: its id and where its range ends."""

    closing: int
    valid_to_ms: int


class Coverage:
    """The counted closings of every partition in a set of progress rows.

    Give it every claim of the partitions concerned and every closing that may cover the windows
    asked about (a closing is only ever cut short by a claim, never extended).
    """

    def __init__(self, rows: list[ProgressRow]) -> None:
        claims: dict[int, list[ProgressRow]] = defaultdict(list)
        closings: dict[int, list[ProgressRow]] = defaultdict(list)
        self._epoch: dict[int, int] = {}
        for r in rows:
            (claims if r.is_claim else closings)[r.partition].append(r)
            self._epoch[r.partition] = max(self._epoch.get(r.partition, 0), r.epoch)
        self._claims = dict(claims)
        self._valid: dict[int, list[tuple[ProgressRow, int]]] = {}
        for p, mine in closings.items():
            valid = []
            for c in mine:
                end = min(c.to_ms, self._fence(p, c))
                if end > c.from_ms:
                    valid.append((c, end))
            # Highest owner first, so the first closing that covers a window is the one to count.
            valid.sort(key=lambda v: (v[0].owner, v[0].to_ms, v[0].closing), reverse=True)
            self._valid[p] = valid

    def _fence(self, partition: int, closing: ProgressRow) -> int:
        """Where claims of later owners cut ``closing`` off (ms; far future if nowhere)."""
        later = [k.to_ms for k in self._claims.get(partition, ()) if k.owner > closing.owner]
        return min(later, default=2**62)

    def horizon(self, partition: int) -> int | None:
        """Every window of ``partition`` starting before this (ms) has a counted closing; None if
        the partition has none yet."""
        ends = [end for _, end in self._valid.get(partition, ())]
        return max(ends) if ends else None

    def counted(self, partition: int, window_ms: int) -> Counted | None:
        """The closing whose partials count for the window starting at ``window_ms``."""
        for c, end in self._valid.get(partition, ()):
            if c.from_ms <= window_ms < end:
                return Counted(c.closing, end)
        return None

    def resume(self, partition: int) -> ProgressRow | None:
        """The row a new owner resumes from: the highest horizon among claims and closings no
        later claim has cut short (ties: the highest watermark)."""
        whole = [c for c, end in self._valid.get(partition, ()) if end == c.to_ms]
        candidates = whole + self._claims.get(partition, [])
        if not candidates:
            return None
        return max(candidates, key=lambda r: (r.to_ms, r.watermark_ms))

    def latest_epoch(self, partition: int) -> int:
        """The highest epoch any row of ``partition`` carries (0 when none)."""
        return self._epoch.get(partition, 0)
