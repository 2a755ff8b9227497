"""Ingest's Prometheus metrics move with what ingest decided."""

from __future__ import annotations

from prometheus_client import REGISTRY

from hexpulse.service_area import load_service_area
from hexpulse.settings import load_settings
from ingest import Ingestor
from tests.support.ingest import KeyedHashPseudonymizer, ListSink, batch, ping, record, single


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_outcomes_and_batch_sizes_are_counted() -> None:
    s = load_settings(topic_partitions=1)
    ingestor = Ingestor(s, load_service_area(s), KeyedHashPseudonymizer(), ListSink())
    before = {
        "acc": sample("hexpulse_ingest_pings_total", outcome="accepted"),
        "lat": sample("hexpulse_ingest_pings_total", outcome="lat_range"),
        "json": sample("hexpulse_ingest_pings_total", outcome="not_json"),
        "b1": sample("hexpulse_ingest_batch_pings_bucket", le="1.0"),
        "b5": sample("hexpulse_ingest_batch_pings_bucket", le="5.0"),
        "inf": sample("hexpulse_ingest_batch_pings_bucket", le="+Inf"),
        "sum": sample("hexpulse_ingest_batch_pings_sum"),
        "msgs": sample("hexpulse_ingest_messages_total"),
    }
    records = [
        record(single(), offset=0),
        record(batch([ping(), ping(lat=91.0), ping()]), offset=1),
        record(b"nope", offset=2),
    ]
    ingestor.ingest("pings", 0, records, None)
    assert sample("hexpulse_ingest_pings_total", outcome="accepted") - before["acc"] == 3
    assert sample("hexpulse_ingest_pings_total", outcome="lat_range") - before["lat"] == 1
    assert sample("hexpulse_ingest_pings_total", outcome="not_json") - before["json"] == 1
    assert sample("hexpulse_ingest_batch_pings_bucket", le="1.0") - before["b1"] == 1
    assert sample("hexpulse_ingest_batch_pings_bucket", le="5.0") - before["b5"] == 2
    assert sample("hexpulse_ingest_batch_pings_bucket", le="+Inf") - before["inf"] == 2
    assert sample("hexpulse_ingest_batch_pings_sum") - before["sum"] == 4
    assert sample("hexpulse_ingest_messages_total") - before["msgs"] == 3
