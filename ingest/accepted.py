"""The in-memory output of ingest: columns of accepted pings plus outcome counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from hexpulse.pings import PingColumns


@dataclass(frozen=True)
class AcceptedPings(PingColumns):
    """Accepted pings of one poll of one partition, in (offset, index in message) order.

    The columns of :class:`hexpulse.pings.PingColumns`, plus ``index`` int32: position of the
    ping in its message (0 for a single ping), and ``record_ts`` int64: Kafka record timestamp of
    the message that carried the ping, ms since the epoch (set by the broker or the producing
    gateway, not by the device). ``counts`` maps outcome (``"accepted"`` or a
    :class:`ingest.contract.Reason` value) to pings, so ``pings_in == sum(counts.values())``.
    ``messages`` is the number of records seen.
    """

    index: npt.NDArray[np.int32] = field(default_factory=lambda: np.empty(0, np.int32))
    record_ts: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    counts: Counter[str] = field(default_factory=Counter)
    messages: int = 0

    @classmethod
    def none(cls) -> AcceptedPings:
        """No accepted ping (counts are added by the caller)."""
        empty = PingColumns.empty()
        return cls(empty.offset, empty.device, empty.ts_ms, empty.lat, empty.lon, empty.speed, empty.cell)

    @property
    def pings_in(self) -> int:
        """Pings seen in this poll (a message that could not be read counts as one)."""
        return sum(self.counts.values())

    @property
    def rejected(self) -> int:
        return self.pings_in - self.counts.get("accepted", 0)
