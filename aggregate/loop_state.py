"""What one consume loop holds: its clients, the aggregate state, and the bookkeeping that the
poll, commit, back-pressure and shutdown layers share.

The loop is built in layers, each a class over the one before, one module each (read bottom up):
:mod:`aggregate.loop_state` → :mod:`aggregate.commits` → :mod:`aggregate.assignment` →
:mod:`aggregate.backpressure` → :mod:`aggregate.shutdown` → :mod:`aggregate.consumer`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kafka import KafkaConsumer, TopicPartition

from aggregate.quarantine import Quarantine
from aggregate.sink import PartialsSink
from aggregate.state import Aggregator
from aggregate.watchdog import StallGuard, Watchdog
from hexpulse.errors import HexpulseError
from hexpulse.settings import Settings
from ingest import Ingestor

if TYPE_CHECKING:
    from aggregate.consumer import ConsumeLoop

log = logging.getLogger("aggregate.consumer")  # one logger for the whole loop, whatever module


@dataclass
class LoopStats:
    """Throughput of one run (monotonic seconds; records and pings seen)."""

    records: int = 0
    pings: int = 0
    first_record_s: float | None = None
    last_record_s: float | None = None
    last_flush_s: float | None = None


class LoopState:
    """The state of one member of the consumer group (see :class:`aggregate.consumer.ConsumeLoop`)."""

    def __init__(
        self,
        settings: Settings,
        ingestor: Ingestor,
        sink: PartialsSink | None = None,
        *,
        stop: threading.Event | None = None,
        stop_when: Callable[[ConsumeLoop], bool] | None = None,
        hard_exit: bool = False,
    ) -> None:
        self.settings = settings
        self.topic = settings.topic_pings
        self.ingestor = ingestor
        self.sink = sink or PartialsSink(settings)
        self.agg = Aggregator(settings, self.sink, self.topic)
        self.stop = stop or threading.Event()
        self.stop_when = stop_when
        self.stats = LoopStats()
        self.closers: list[Callable[[], None]] = []  # run by the owner after run() returns
        self.consumer: KafkaConsumer | None = None
        self._uninit: set[int] = set()
        self._group_generation = 0  # the Kafka group generation of the latest assignment
        self._last_seen: dict[int, float] = {}
        self._committed: dict[int, int] = {}
        self._sink_down_until = 0.0
        self._flush_started = 0.0
        self._backoff_s = 0.0
        self._paused_for_sink = False
        self._last_commit = 0.0
        self._init_retry_at = 0.0
        # kafka-python 3 runs rebalance callbacks on its IO thread, possibly while this thread is
        # between two calls: one lock guards the aggregate state; Kafka network calls are made
        # outside it (a callback holding the IO loop would otherwise wait for us, and we for it).
        self._lock = threading.RLock()
        self._generation = 0
        self._dlq_backoff_s = 0.0
        self._deadline: float | None = None  # set at shutdown: every wait after it ends by then
        self._run_thread: threading.Thread | None = None
        self._quarantine = Quarantine()
        self._fatal: HexpulseError | None = None  # raised by run() once it has shut down
        # No-progress watchdog (aggregate/watchdog.py); hard_exit: the guard may end the process.
        self.watchdog = Watchdog(settings.consumer_stall_timeout_s)
        self._guard = StallGuard(
            settings.consumer_stall_timeout_s, settings.shutdown_timeout_s, hard_exit=hard_exit
        )
        self._awaiting_assignment = True  # from start, and from a revoke to the next assignment
        self._records_seen = 0
        self._probe_at = 0.0

    def _tp(self, p: int) -> TopicPartition:
        return TopicPartition(self.topic, p)
