"""Prometheus metrics of the alerts process (served on ``HEXPULSE_ALERTS_METRICS_PORT``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERIES = Counter(
    "hexpulse_alerts_deliveries_total",
    "Webhook delivery attempts by subscription and result (delivered, failed, dead, refused)",
    ["subscription", "result"],
)
DELIVERY_SECONDS = Histogram(
    "hexpulse_alerts_delivery_seconds", "Webhook request time in seconds", ["subscription"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)  # fmt: skip
EVENTS = Counter("hexpulse_alerts_events_total", "Alert events emitted, by kind", ["kind"])
EVAL_SECONDS = Histogram(
    "hexpulse_alerts_eval_seconds", "Time to evaluate every subscription at one window (s)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)  # fmt: skip
QUEUE = Gauge("hexpulse_alerts_queue_due", "Webhook deliveries due now")
HOLDER = Gauge("hexpulse_alerts_lease_held", "1 while this process is the active evaluator")
