"""Peer (b): per-minute, per-res-9-cell distinct-device counts with Quix Streams 3.x.

The pipeline a Quix user would write: message → the distinct (cell, device) pairs of the message
with their first ping time (``orjson``, ``h3`` int API) → ``set_timestamp`` to that event time →
``group_by`` cell (a repartition topic when the input has more than one partition; with the
benchmark's one partition Quix re-keys in process) → 60 s tumbling windows with 30 s grace (hexpulse's
allowed lateness), closing per partition → ``collect`` the devices → on close, the number of
distinct devices → output topic, value ``"windowStartMs,cell,count"``.

Usage: ``python benchmarks/peers/quix_app.py BOOTSTRAP INPUT OUTPUT GROUP STATE_DIR``. Runs until
SIGTERM, then prints one JSON line: ``first_record_ms`` (wall clock), ``records``, ``pings``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import h3
import orjson
from quixstreams import Application

WINDOW_MS = 60_000
GRACE_MS = 30_000  # hexpulse's allowed lateness (peers/stream.py GRACE_MS)
RES = 9

_cell = h3.api.basic_int.latlng_to_cell
stats = {"first_record_ms": 0, "records": 0, "pings": 0}


def pairs(value: bytes) -> list[list[Any]]:
    """One message's distinct [cell, device, first ping ms] (a device sits in one cell per window)."""
    if not stats["records"]:
        stats["first_record_ms"] = int(time.time() * 1000)
    stats["records"] += 1
    msg = orjson.loads(value)
    device = msg["device"]
    pings = msg.get("pings") or [msg]
    stats["pings"] += len(pings)
    first: dict[tuple[int, int], int] = {}
    for p in pings:
        ts = p["ts"]
        key = (ts // WINDOW_MS, _cell(p["lat"], p["lon"], RES))
        if key not in first or ts < first[key]:
            first[key] = ts
    return [[cell, device, ts] for (_, cell), ts in first.items()]


def main(argv: list[str]) -> int:
    bootstrap, source, sink, group, state_dir = argv
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        loglevel="WARNING",
    )
    pings = app.topic(source, key_deserializer="bytes", value_deserializer="bytes")
    out = app.topic(sink, key_serializer="str", value_serializer="str")
    sdf = app.dataframe(pings)
    sdf = sdf.apply(pairs, expand=True)
    sdf = sdf.set_timestamp(lambda value, key, timestamp, headers: value[2])
    sdf = sdf.group_by(lambda value: value[0], name="cell")
    sdf = sdf.apply(lambda value: value[1])
    sdf = sdf.tumbling_window(WINDOW_MS, grace_ms=GRACE_MS).collect().final(closing_strategy="partition")
    sdf = sdf.apply(
        lambda window, key, timestamp, headers: f"{window['start']},{key},{len(set(window['value']))}",
        metadata=True,
    )
    sdf.to_topic(out, key=lambda value: value.rsplit(",", 1)[0])
    app.run()
    print(orjson.dumps(stats).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
