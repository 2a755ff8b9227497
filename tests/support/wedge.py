"""``hexpulse consume`` with kafka-python's group coordinator wedged mid-stream, as seen under load:
run ``python -m tests.support.wedge MODE RECORDS`` (environment as for ``hexpulse consume``).

Once the consumer's polls have returned ``RECORDS`` records, MODE decides what breaks:

- ``join``: the member is asked to rejoin and its JoinGroup never completes. Every later poll
  waits on the same join attempt and returns nothing while the group is not joined: the consumer
  lives and polls but owes its partitions (the stall after a failed rejoin).
- ``stale``: not a wedge but the race itself: the next rebalance is one that kafka-python 3.0.12
  stops driving halfway (a leader's stale assignment snapshot, a SyncGroup answer slower than a
  poll), which left consumers assigned nothing, silent, evicted (RELIABILITY.md, issue #15).
- ``block``: the next poll never returns (a cross-thread wait inside kafka-python that nobody
  answers): the loop itself is stuck and only the guard thread can see it.

Nothing here changes what the consumer computes; only the client stops moving.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from kafka import KafkaConsumer
from kafka.coordinator.base import BaseCoordinator
from kafka.future import Future


def _wedge_join(consumer: KafkaConsumer) -> None:
    async def never(self: BaseCoordinator) -> bytes:
        return await Future()  # type: ignore[no-any-return]  # a JoinGroup nobody answers

    BaseCoordinator._do_join_and_sync_async = never  # type: ignore[method-assign]
    consumer._coordinator.request_rejoin()


def _stale_assignment(consumer: KafkaConsumer) -> None:
    """The leader's next rebalance is the one kafka-python 3.0.12 can orphan: its assignment
    snapshot is stale (as when the group was first assigned before the topic's metadata arrived),
    and the SyncGroup answer takes longer than one poll (as under CPU load)."""
    coordinator = consumer._coordinator
    manager = coordinator._manager
    real_send = manager.send

    def send(request: Any, node_id: Any = None, request_timeout_ms: Any = None) -> Any:
        fut = real_send(request, node_id=node_id, request_timeout_ms=request_timeout_ms)
        if not type(request).__name__.startswith("SyncGroupRequest"):
            return fut

        async def later() -> Any:
            value = await fut
            await manager._net.sleep(0.6)  # three 200 ms polls
            return value

        return manager.call_soon(later)

    manager.send = send
    coordinator._assignment_snapshot = {t: set() for t in consumer.subscription() or ()}


def _wedge_block(consumer: KafkaConsumer) -> None:
    def stuck(self: KafkaConsumer, *args: Any, **kwargs: Any) -> Any:
        threading.Event().wait()

    KafkaConsumer.poll = stuck  # type: ignore[method-assign]


WEDGES = {"join": _wedge_join, "stale": _stale_assignment, "block": _wedge_block}


def install(mode: str, after_records: int) -> None:
    """Patch :class:`KafkaConsumer` so that ``mode`` strikes after ``after_records`` records."""
    wedge = WEDGES[mode]
    real_poll = KafkaConsumer.poll
    seen = {"records": 0, "struck": False}

    def poll(self: KafkaConsumer, *args: Any, **kwargs: Any) -> Any:
        batch = real_poll(self, *args, **kwargs)
        seen["records"] += sum(len(v) for v in batch.values())
        if not seen["struck"] and seen["records"] >= after_records:
            seen["struck"] = True
            sys.stderr.write(f'{{"event": "wedge struck", "mode": "{mode}"}}\n')
            wedge(self)
        return batch

    KafkaConsumer.poll = poll  # type: ignore[method-assign]


def main() -> None:
    mode, after = sys.argv[1], int(sys.argv[2])
    install(mode, after)
    from hexpulse.cli import main as hexpulse_main

    sys.argv = ["hexpulse", "consume"]
    hexpulse_main()


if __name__ == "__main__":
    main()
