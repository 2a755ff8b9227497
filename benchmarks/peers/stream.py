"""The peers' input: one ping topic per message shape, and the one answer every correct peer gives.

The job is per-minute (60 s tumbling event-time windows, UTC), per-res-9-cell distinct-device
counts. hexpulse also bounds a device to one cell per window (L = 1), drops late and duplicate
pings and pings outside its service area; the peers do none of that. So the stream is built to
make those rules moot, and the answer is the same for every correct implementation:

- every device stays in one res-9 cell for the whole of each window (it may move between windows);
- a batch message never straddles a window, every window's messages are produced before the next
  window's (no late data for any lateness ≥ 0), and no device repeats a ping time (no duplicates);
- all points lie in the box the pipeline benchmark uses, inside the default service area.

Record timestamps are CreateTime = the message's last ping time, as a gateway that forwards an
upload on receipt would set them, so event-time windows are well defined for every peer.
After the data, one single ping per partition from a *closer* device, ``CLOSE_AFTER_MS`` after
the last window's start, closes every window in-stream for all peers; the closers' own window is
never closed and is not part of the answer.

The benchmark topics have **one partition**. The peers that repartition by cell (Kafka Streams,
and Quix with more than one input partition) merge the input partitions into one stream time,
read out of step; with two partitions, whichever finished first pushed its closer's time past
windows the other was still feeding, and those pings were dropped as late (seen in a first try,
with either grace tried). One partition keeps the closers last for every peer, so a 30 s grace
(hexpulse's allowed lateness, ``GRACE_MS``) loses nothing: no ping is late in event time.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import h3
import orjson
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

WINDOW_MS = 60_000
LAT = (23.09, 23.17)  # the box of benchmarks/bench_pipeline.py, inside the default service area
LON = (113.26, 113.39)
RES = 9
PINGS_PER_BATCH = 50
GRACE_MS = 30_000  # the peers' window grace: hexpulse's default allowed lateness
CLOSE_AFTER_MS = WINDOW_MS + GRACE_MS + 30_000  # past every data window's end + grace, with margin

Counts = dict[tuple[int, int], int]
"""Distinct devices per (window start ms UTC, res-9 cell as an unsigned 64-bit int)."""

_cell = h3.api.basic_int.latlng_to_cell


@dataclass(frozen=True)
class Stream:
    """A produced topic and its ground truth."""

    topic: str
    partitions: int
    records: int
    pings: int
    truth: Counts
    shape: str  # "batched" or "single"

    @property
    def pings_per_record(self) -> float:
        return self.pings / self.records


def create_topics(bootstrap: str, names: list[str], partitions: int, log_append: bool) -> None:
    """Create fresh topics; ``log_append``: broker-time timestamps (the peers' output topics)."""
    kind = "LogAppendTime" if log_append else "CreateTime"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=15_000)
    try:
        admin.create_topics(
            [NewTopic(n, partitions, 1, topic_configs={"message.timestamp.type": kind}) for n in names]
        )
    finally:
        admin.close()


def _producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        linger_ms=50,
        batch_size=1 << 20,
        acks=1,
        max_request_size=8 << 20,
    )


def _point(rng: random.Random) -> tuple[float, float, int]:
    lat, lon = round(rng.uniform(*LAT), 6), round(rng.uniform(*LON), 6)
    return lat, lon, _cell(lat, lon, RES)


def _close(producer: KafkaProducer, topic: str, partitions: int, ts: int, rng: random.Random) -> None:
    for p in range(partitions):
        lat, lon, _ = _point(rng)
        dev = f"closer-{p}"
        body = orjson.dumps({"v": 1, "device": dev, "ts": ts, "lat": lat, "lon": lon})
        producer.send(topic, key=dev.encode(), value=body, partition=p, timestamp_ms=ts)


def produce_batched(
    bootstrap: str, topic: str, partitions: int, devices: int, windows: int, w0: int, seed: int = 11
) -> Stream:
    """``devices`` × ``windows`` messages of 50 pings 1 s apart, one message per device and window."""
    rng = random.Random(seed)
    truth: Counter[tuple[int, int]] = Counter()
    producer = _producer(bootstrap)
    for k in range(windows):
        w = w0 + k * WINDOW_MS
        for d in range(devices):
            lat, lon, cell = _point(rng)
            truth[(w, cell)] += 1
            start = w + (d % 50) * 200  # last ping at most w + 58.8 s: inside the window
            pings = []
            for i in range(PINGS_PER_BATCH):
                plat = round(lat + rng.gauss(0, 0.00002), 6)
                plon = round(lon + rng.gauss(0, 0.00002), 6)
                if _cell(plat, plon, RES) != cell:
                    plat, plon = lat, lon
                p: dict[str, float | int] = {"ts": start + i * 1000, "lat": plat, "lon": plon}
                if i % 3:
                    p["spd"] = round(rng.uniform(0, 20), 2)
                pings.append(p)
            dev = f"dev-{d}"
            body = orjson.dumps({"v": 1, "device": dev, "pings": pings})
            producer.send(topic, key=dev.encode(), value=body, timestamp_ms=start + 49_000)
    _close(producer, topic, partitions, w0 + (windows - 1) * WINDOW_MS + CLOSE_AFTER_MS, rng)
    producer.flush()
    producer.close()
    records = devices * windows + partitions
    return Stream(topic, partitions, records, devices * windows * PINGS_PER_BATCH + partitions,
                  dict(truth), "batched")


def produce_single(bootstrap: str, topic: str, partitions: int, n: int, w0: int, seed: int = 12) -> Stream:
    """``n`` single pings of ``n`` distinct devices, all in the window starting at ``w0``."""
    rng = random.Random(seed)
    truth: Counter[tuple[int, int]] = Counter()
    producer = _producer(bootstrap)
    send = producer.send
    for d in range(n):
        lat, lon, cell = _point(rng)
        truth[(w0, cell)] += 1
        ts = w0 + rng.randrange(WINDOW_MS)
        dev = f"d{d}"
        body = {"v": 1, "device": dev, "ts": ts, "lat": lat, "lon": lon, "spd": round(rng.uniform(0, 20), 2)}
        send(topic, key=dev.encode(), value=orjson.dumps(body), timestamp_ms=ts)
    _close(producer, topic, partitions, w0 + CLOSE_AFTER_MS, rng)
    producer.flush()
    producer.close()
    return Stream(topic, partitions, n + partitions, n + partitions, dict(truth), "single")
