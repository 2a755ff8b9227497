"""The in-memory output of ingest: columns of accepted pings plus outcome counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass
class AcceptedPings:
    """Accepted pings of one poll of one partition, in (offset, index in message) order.

    Columns (all the same length):
    - ``offset`` int64: Kafka offset of the message that carried the ping;
    - ``index`` int32: position of the ping in its message (0 for a single ping);
    - ``device`` uint64: pseudonym of the device for the ping's UTC day (never the upstream id);
    - ``ts_ms`` int64: event time, ms since the epoch, UTC;
    - ``lat``, ``lon`` float64: WGS84 degrees;
    - ``speed`` float64: reported speed in m/s, NaN when the ping had none;
    - ``cell`` uint64: H3 cell at the base resolution (inside the service area);
    - ``record_ts`` int64: Kafka record timestamp of the message that carried the ping, ms since
      the epoch (set by the broker or the producing gateway, not by the device).

    ``counts`` maps outcome (``"accepted"`` or a :class:`ingest.contract.Reason` value) to pings,
    so ``pings_in == sum(counts.values())``. ``messages`` is the number of records seen.
    """

    offset: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    index: npt.NDArray[np.int32] = field(default_factory=lambda: np.empty(0, np.int32))
    device: npt.NDArray[np.uint64] = field(default_factory=lambda: np.empty(0, np.uint64))
    ts_ms: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    lat: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0, np.float64))
    lon: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0, np.float64))
    speed: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0, np.float64))
    cell: npt.NDArray[np.uint64] = field(default_factory=lambda: np.empty(0, np.uint64))
    record_ts: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    counts: Counter[str] = field(default_factory=Counter)
    messages: int = 0

    def __len__(self) -> int:
        return int(self.offset.size)

    @property
    def pings_in(self) -> int:
        """Pings seen in this poll (a message that could not be read counts as one)."""
        return sum(self.counts.values())

    @property
    def rejected(self) -> int:
        return self.pings_in - self.counts.get("accepted", 0)
