"""Pings → Kafka messages: batching, ordering, malformed injection and serialization.

Order invariant (see ``config.MAX_BATCH_SPAN_MS``): a message holds one device's consecutive
pings spanning at most ``batch_span_ms`` of event time, and messages are emitted in order of their
last ping's ``ts`` (ties by device), so no simulated ping is late with the configured lateness.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import orjson
from kafka.partitioner.default import murmur2

from hexpulse.settings import Settings
from simulator.city import SOURCES, Pings
from simulator.malformed import REASONS, Malformed, build_malformed

IntArray = npt.NDArray[np.int64]
APPROX_PING_BYTES = 160
"""Generous size of one serialized ping, used to keep batches under the message size limit."""


@dataclass(frozen=True)
class MessagePlan:
    """Message ``m`` carries pings ``lo[m]:hi[m]`` (indexes into :class:`Pings`), emitted in order."""

    lo: IntArray
    hi: IntArray

    def __len__(self) -> int:
        return len(self.lo)


def plan_messages(pings: Pings, span_ms: int, max_pings: int, window_ms: int) -> MessagePlan:
    """Group each device's consecutive pings into messages and order them by last ``ts``.

    Event time is cut into bins of at most ``span_ms + 1`` ms that tile each window (aligned to the
    epoch, like the pipeline's windows), and a message holds one device's pings of one bin, so it
    spans ≤ ``span_ms`` and never crosses a window: the plan of a span of whole windows is the
    same whether it is planned alone or with its neighbours. Bins holding more than
    ``max_pings`` are split further. ``span_ms`` = 0 gives one ping per message (the generator
    never repeats a device's ``ts``).
    """
    n = len(pings.ts_ms)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return MessagePlan(empty, empty)
    dev = pings.device
    new_dev = np.ones(n, dtype=bool)
    new_dev[1:] = dev[1:] != dev[:-1]
    per_window = -(-window_ms // (span_ms + 1))  # bins per window
    width = -(-window_ms // per_window)  # ≤ span_ms + 1
    ts = pings.ts_ms
    bin_ = ts // window_ms * per_window + ts % window_ms // width
    start = new_dev.copy()
    start[1:] |= bin_[1:] != bin_[:-1]
    # Split over-full bins: position within the bin, every max_pings-th starts a new message.
    group = np.cumsum(start) - 1
    group_first = np.flatnonzero(start)
    rank = np.arange(n) - group_first[group]
    start |= (rank % max_pings) == 0
    lo = np.flatnonzero(start).astype(np.int64)
    hi = np.append(lo[1:], n).astype(np.int64)
    order = np.lexsort((dev[lo], pings.ts_ms[hi - 1]))
    return MessagePlan(lo[order], hi[order])


@dataclass(frozen=True)
class Injection:
    """A malformed message placed at ``index`` in the final stream (0-based)."""

    index: int
    message: Malformed


def plan_malformed(
    pings: Pings, plan: MessagePlan, rate: float, settings: Settings, rng: np.random.Generator
) -> list[Injection]:
    """Choose ``round(rate × good messages)`` positions and faults; reasons cycle through the
    catalogue from a random start so every reason appears once there are enough."""
    good = len(plan)
    count = int(round(rate * good))
    if count == 0 or good == 0:
        return []
    total = good + count
    positions = np.sort(rng.choice(total, size=count, replace=False))
    first = int(rng.integers(0, len(REASONS)))
    out: list[Injection] = []
    for i, pos in enumerate(positions.tolist()):
        # The message just before (in good-message order) lends a device and a plausible ts.
        neighbour = min(max(pos - i - 1, 0), good - 1)
        p = int(plan.hi[neighbour]) - 1
        device = pings.device_ids[int(pings.device[p])]
        reason = REASONS[(first + i) % len(REASONS)]
        msg = build_malformed(
            reason, device, int(pings.ts_ms[p]), float(pings.lat[p]), float(pings.lon[p]), settings
        )
        out.append(Injection(pos, msg))
    return out


def plan_malformed_by_window(
    pings: Pings, plan: MessagePlan, rate: float, settings: Settings, key: int, first_window: int
) -> list[Injection]:
    """:func:`plan_malformed` window by window (the window of each message's last ping), each
    with its own generator keyed by (``key``, window number since ``first_window``), so a span's
    injections do not depend on how the run is cut into spans. Positions are in the span's stream."""
    if len(plan) == 0:
        return []
    w = settings.window_ms
    win = pings.ts_ms[plan.hi - 1] // w
    cuts = np.flatnonzero(np.diff(win)) + 1
    bounds = [0, *cuts.tolist(), len(plan)]
    out: list[Injection] = []
    emitted = 0
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        rng = np.random.default_rng([key, int(win[a]) - first_window])
        part = plan_malformed(pings, MessagePlan(plan.lo[a:b], plan.hi[a:b]), rate, settings, rng)
        out.extend(Injection(emitted + i.index, i.message) for i in part)
        emitted += (b - a) + len(part)
    return out


def _ping_dicts(pings: Pings, idx: IntArray) -> list[dict[str, object]]:
    """The JSON objects of pings ``idx``; absent optional fields are omitted."""
    src_names: list[str | None] = [SOURCES[s] if s >= 0 else None for s in pings.src[idx].tolist()]
    out: list[dict[str, object]] = []
    append = out.append
    for ts, lat, lon, acc, spd, hdg, src in zip(
        pings.ts_ms[idx].tolist(),
        pings.lat[idx].tolist(),
        pings.lon[idx].tolist(),
        pings.acc[idx].tolist(),
        pings.spd[idx].tolist(),
        pings.hdg[idx].tolist(),
        src_names,
        strict=True,
    ):
        d: dict[str, object] = {"ts": ts, "lat": lat, "lon": lon}
        if acc == acc:  # NaN is "not sent"
            d["acc"] = acc
        if spd == spd:
            d["spd"] = spd
        if hdg == hdg:
            d["hdg"] = hdg
        if src is not None:
            d["src"] = src
        append(d)
    return out


def iter_messages(
    pings: Pings, plan: MessagePlan, injections: list[Injection], batched: bool, chunk: int = 20_000
) -> Iterator[tuple[bytes, bytes]]:
    """Serialize the stream: (Kafka key, value) per message, malformed ones at their positions."""
    dumps = orjson.dumps
    ids = [d.encode() for d in pings.device_ids]
    names = pings.device_ids
    inject = {inj.index: inj.message for inj in injections}
    index = 0
    for c0 in range(0, len(plan), chunk):
        lo = plan.lo[c0 : c0 + chunk]
        hi = plan.hi[c0 : c0 + chunk]
        sizes = hi - lo
        # All pings of this chunk of messages in message order, converted to dicts in one pass.
        ends = np.cumsum(sizes)
        idx = np.repeat(lo - (ends - sizes), sizes) + np.arange(int(ends[-1]))
        bodies = _ping_dicts(pings, idx)
        devs = pings.device[lo].tolist()
        for start, end, dev in zip((ends - sizes).tolist(), ends.tolist(), devs, strict=True):
            while index in inject:
                bad = inject.pop(index)
                yield bad.key, bad.value
                index += 1
            if batched:
                value = dumps({"v": 1, "device": names[dev], "pings": bodies[start:end]})
            else:
                value = dumps({"v": 1, "device": names[dev], **bodies[start]})
            yield ids[dev], value
            index += 1
    for pos in sorted(inject):
        yield inject[pos].key, inject[pos].value


@dataclass(frozen=True)
class Span:
    """A stretch of the message stream: pings, their messages and the malformed ones among them.

    ``start_ms`` is the span's first event time (a malformed message before any good one takes it);
    ``batched``: batch messages (else one ping per message)."""

    start_ms: int
    pings: Pings
    plan: MessagePlan
    injections: list[Injection]
    upload_delay_ms: int
    batched: bool

    def __len__(self) -> int:
        """Messages in the span, malformed ones included."""
        return len(self.plan) + len(self.injections)

    def messages(self) -> Iterator[tuple[bytes, bytes]]:
        """(Kafka key = device string, value = UTF-8 JSON), in the order they must be produced."""
        return iter_messages(self.pings, self.plan, self.injections, self.batched)

    def last_ts_ms(self) -> Iterator[int]:
        """Event time (ms) that each message of :meth:`messages` may be sent at (its last ping;
        a malformed message takes the one before it), for pacing in real time."""
        last = self.plan.hi - 1
        good = self.pings.ts_ms[last].tolist() if len(last) else []
        inject = {i.index for i in self.injections}
        g = 0
        current = self.start_ms
        for index in range(len(self)):
            if index not in inject:
                current = good[g]
                g += 1
            yield current

    def record_ts_ms(self) -> Iterator[int]:
        """The record timestamp (ms) of each message of :meth:`messages`: when it reaches the
        gateway, its last ping's ``ts`` + the upload delay (a malformed one: the one before)."""
        delay = self.upload_delay_ms
        return (t + delay for t in self.last_ts_ms())

    def partitions(self, home: IntArray, count: int) -> Iterator[tuple[int, int]]:
        """(Kafka partition, good pings carried) of each message of :meth:`messages`: a good one's
        device's ``home``; a malformed one's key's murmur2 partition (kafka-python's default)."""
        parts = home[self.pings.device[self.plan.lo]].tolist()
        sizes = (self.plan.hi - self.plan.lo).tolist()
        inject = {i.index: i.message.key for i in self.injections}
        g = 0
        for index in range(len(self)):
            if index in inject:
                yield (murmur2(inject[index]) & 0x7FFFFFFF) % count, 0
            else:
                yield parts[g], sizes[g]
                g += 1
