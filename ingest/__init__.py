"""Ingest: Kafka records → validated, pseudonymized, H3-binned columns; rejections → DLQ.

The aggregate layer calls one thing, per poll and per partition::

    ingestor = Ingestor(settings, area, pseudonymizer, dlq)
    accepted = ingestor.ingest(topic, partition, records, now_ms)   # -> AcceptedPings
    ...
    ingestor.flush()        # DLQ durable; call before committing offsets

``accepted`` holds numpy columns (offset, index, device pseudonym, ts_ms, lat, lon, speed, cell) in
offset order and ``accepted.counts`` (outcome → pings) for the accounting identity
``pings in = accepted + rejected(by reason) + late + duplicate``. The contract of the messages
is docs/PINGS.md; reason codes are :class:`ingest.contract.Reason`.
"""

from ingest.accepted import AcceptedPings
from ingest.contract import ACCEPTED, CONTRACT_VERSION, Limits, Reason
from ingest.dlq import DeadLetter, DeadLetterSink, KafkaDeadLetterSink, Sealer
from ingest.exceptions import DeadLetterError, IngestError
from ingest.ingestor import Ingestor
from ingest.pseudonyms import Pseudonymizer

__all__ = [
    "ACCEPTED",
    "CONTRACT_VERSION",
    "AcceptedPings",
    "DeadLetter",
    "DeadLetterError",
    "DeadLetterSink",
    "IngestError",
    "Ingestor",
    "KafkaDeadLetterSink",
    "Limits",
    "Pseudonymizer",
    "Reason",
    "Sealer",
]
