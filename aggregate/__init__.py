"""Aggregate: per-partition event-time windows → per-device bounding → exact partials in ClickHouse.

``hexpulse consume`` (aggregate/cli.py) runs :class:`aggregate.consumer.ConsumeLoop`: Kafka records
→ ``ingest.Ingestor`` → :class:`aggregate.windows.PartitionWindows` (watermark, horizon, late pings)
→ :func:`aggregate.bounding.compute_partials` (dedupe, day cap, L cells per device, speed) →
:class:`aggregate.sink.PartialsSink` (partials, then progress). Offsets are committed only up to the
first offset of the oldest unwritten window, so crashes, restarts and rebalances replay into
identical rows (docs/ARCHITECTURE.md, "Counting semantics").
"""
