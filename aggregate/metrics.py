"""Prometheus metrics of the aggregate stage (default registry; served by ``hexpulse consume``).

Outcomes ``late`` and ``duplicate`` are added to ingest's outcome counter, so
``pings in = accepted + rejected(by reason) + late + duplicate`` reads off one metric family once
``hexpulse_aggregate_pings{outcome="accepted"}`` (what reached a closed window) is used for the
accepted term.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from ingest.metrics import PINGS as INGEST_PINGS

AGG_PINGS = Counter(
    "hexpulse_aggregate_pings", "Pings after windowing, by outcome (accepted, late, duplicate)", ["outcome"]
)
WINDOWS_FLUSHED = Counter(
    "hexpulse_aggregate_windows_flushed", "Closing decisions written to ClickHouse", ["closed_by"]
)
PARTIAL_ROWS = Counter("hexpulse_aggregate_partial_rows", "Partials rows written to ClickHouse")
SINK_FAILURES = Counter("hexpulse_aggregate_sink_failures", "Failed ClickHouse writes (retried)")
FLUSH_SECONDS = Histogram(
    "hexpulse_aggregate_flush_seconds",
    "Time to compute and write one closing decision, seconds",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
POLL_RECORDS = Histogram(
    "hexpulse_aggregate_poll_records",
    "Kafka records returned per partition per poll",
    buckets=(1, 10, 50, 100, 500, 1000, 5000, 10000, 50000),
)
WATERMARK_LAG = Gauge(
    "hexpulse_aggregate_watermark_lag_seconds", "Wall clock minus partition watermark, seconds", ["partition"]
)
CONSUMER_LAG = Gauge(
    "hexpulse_aggregate_consumer_lag_records", "High watermark minus position", ["partition"]
)
BUFFERED_PINGS = Gauge("hexpulse_aggregate_buffered_pings", "Pings held in open windows (all partitions)")
PAUSED = Gauge("hexpulse_aggregate_paused", "1 while partitions are paused for ClickHouse backpressure")
CORRUPT_BATCHES = Counter(
    "hexpulse_aggregate_corrupt_batches", "Fetches that stopped at a corrupt record batch"
)
QUARANTINED = Gauge(
    "hexpulse_aggregate_quarantined_partitions", "Partitions stopped at a corrupt record batch"
)


def count_outcome(outcome: str, n: int) -> None:
    """Record ``n`` pings with outcome ``late``/``duplicate``/``accepted`` (no-op for 0)."""
    if n:
        AGG_PINGS.labels(outcome=outcome).inc(n)
        if outcome != "accepted":
            INGEST_PINGS.labels(outcome=outcome).inc(n)
