"""The ping columns every stage passes on: one numpy array per field, rows in Kafka offset order.

Ingest produces them (:class:`ingest.accepted.AcceptedPings` adds its outcome counts), aggregate
windows and bounds them, tests and benchmarks build them directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]
F64S = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]


class PingColumnsLike(Protocol):
    offset: Any
    device: Any
    ts_ms: Any
    lat: Any
    lon: Any
    speed: Any
    cell: Any


@dataclass(frozen=True)
class PingColumns:
    """Accepted pings of one partition (all columns the same length).

    - ``offset`` int64: Kafka offset of the message that carried the ping;
    - ``device`` uint64: pseudonym of the device for the ping's UTC day (never the upstream id);
    - ``ts_ms`` int64: event time, ms since the epoch, UTC;
    - ``lat``, ``lon`` float64: WGS84 degrees;
    - ``speed`` float64: reported speed in m/s, NaN when the ping had none;
    - ``cell`` uint64: H3 cell at the base resolution (inside the service area).
    """

    offset: I64
    device: U64
    ts_ms: I64
    lat: F64
    lon: F64
    speed: F64S
    cell: U64

    def __len__(self) -> int:
        return int(self.offset.size)

    @classmethod
    def of(cls, src: PingColumnsLike) -> PingColumns:
        """Copy-free view of any object with the same columns, in these dtypes."""
        return PingColumns(
            offset=np.asarray(src.offset, dtype=np.int64),
            device=np.asarray(src.device, dtype=np.uint64),
            ts_ms=np.asarray(src.ts_ms, dtype=np.int64),
            lat=np.asarray(src.lat, dtype=np.float64),
            lon=np.asarray(src.lon, dtype=np.float64),
            speed=np.asarray(src.speed, dtype=np.float64),
            cell=np.asarray(src.cell, dtype=np.uint64),
        )

    @classmethod
    def empty(cls) -> PingColumns:
        return PingColumns(
            offset=np.empty(0, np.int64),
            device=np.empty(0, np.uint64),
            ts_ms=np.empty(0, np.int64),
            lat=np.empty(0, np.float64),
            lon=np.empty(0, np.float64),
            speed=np.empty(0, np.float64),
            cell=np.empty(0, np.uint64),
        )

    def take(self, index: Bool | I64) -> PingColumns:
        return PingColumns(
            offset=self.offset[index],
            device=self.device[index],
            ts_ms=self.ts_ms[index],
            lat=self.lat[index],
            lon=self.lon[index],
            speed=self.speed[index],
            cell=self.cell[index],
        )

    @classmethod
    def concat(cls, parts: list[PingColumns]) -> PingColumns:
        if not parts:
            return PingColumns.empty()
        if len(parts) == 1:
            return parts[0]
        return PingColumns(
            offset=np.concatenate([p.offset for p in parts]),
            device=np.concatenate([p.device for p in parts]),
            ts_ms=np.concatenate([p.ts_ms for p in parts]),
            lat=np.concatenate([p.lat for p in parts]),
            lon=np.concatenate([p.lon for p in parts]),
            speed=np.concatenate([p.speed for p in parts]),
            cell=np.concatenate([p.cell for p in parts]),
        )

    @property
    def nbytes(self) -> int:
        return sum(
            a.nbytes
            for a in (self.offset, self.device, self.ts_ms, self.lat, self.lon, self.speed, self.cell)
        )
