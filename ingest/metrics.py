"""Prometheus metrics of ingest outcomes (module level, default registry).

Outcome labels: ``accepted`` or a reason code (docs/PINGS.md); aggregate adds ``late`` and
``duplicate`` to the same counter so that the accounting identity
``pings in = accepted + rejected(by reason) + late + duplicate`` can be read off one metric.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

import numpy as np
import numpy.typing as npt
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

PINGS = Counter("hexpulse_ingest_pings", "Pings seen by ingest, by outcome", ["outcome"])
DLQ_RECORDS = Counter(
    "hexpulse_ingest_dlq_records", "Records written to the DLQ topic, by reason", ["reason"]
)
MESSAGES = Counter("hexpulse_ingest_messages", "Kafka records decoded by ingest")

BATCH_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


class BatchSizeHistogram(Collector):
    """Pings per message, observed a whole poll at a time (prometheus_client has no bulk observe)."""

    def __init__(self, buckets: tuple[float, ...] = BATCH_BUCKETS) -> None:
        self._bounds = np.asarray(buckets, dtype=np.float64)
        self._counts = np.zeros(len(buckets) + 1, dtype=np.int64)  # last slot = +Inf
        self._sum = 0.0
        self._lock = threading.Lock()  # collect() runs on the metrics server's thread

    def observe_many(self, sizes: npt.NDArray[np.int64]) -> None:
        if sizes.size == 0:
            return
        slots = np.searchsorted(self._bounds, sizes, side="left")
        counts = np.bincount(slots, minlength=self._counts.size)
        with self._lock:
            self._counts += counts
            self._sum += float(sizes.sum())

    def collect(self) -> Iterable[HistogramMetricFamily]:
        with self._lock:
            cumulative = np.cumsum(self._counts)
            total = self._sum
        buckets = [(repr(float(b)), float(c)) for b, c in zip(self._bounds, cumulative[:-1], strict=True)]
        buckets.append(("+Inf", float(cumulative[-1])))
        family = HistogramMetricFamily("hexpulse_ingest_batch_pings", "Pings per Kafka message")
        family.add_metric([], buckets, total)
        yield family


BATCH_SIZES = BatchSizeHistogram()
REGISTRY.register(BATCH_SIZES)


def record_outcomes(counts: Mapping[str, int]) -> None:
    """Add one poll's outcome counts (pings) to the outcome counter."""
    for outcome, n in counts.items():
        if n:
            PINGS.labels(outcome=outcome).inc(n)
