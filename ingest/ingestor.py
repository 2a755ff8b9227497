"""The entry point aggregate calls: one poll of one partition → :class:`AcceptedPings`."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from operator import attrgetter

import numpy as np
import numpy.typing as npt

from hexpulse.logs import log_event
from hexpulse.service_area import ServiceArea
from hexpulse.settings import Settings
from hexpulse.times import MS_PER_DAY
from ingest.accepted import AcceptedPings
from ingest.binning import CellBinner
from ingest.contract import ACCEPTED, Limits, Reason
from ingest.decode import Decoded, RecordLike, decode
from ingest.dlq import DeadLetter, DeadLetterSink
from ingest.metrics import BATCH_SIZES, MESSAGES, record_outcomes
from ingest.partitioning import PartitionMap
from ingest.pseudonyms import Pseudonymizer
from ingest.validate import CODE, OK, REASON_OF_CODE, validate
from privacy.keys.exceptions import KeyUnavailableError

_log = logging.getLogger(__name__)
_offset_of = attrgetter("offset")
_timestamp_of = attrgetter("timestamp")
_ELSEWHERE = -1
"""Verdict code of a ping whose whole message was rejected for ``wrong_partition``."""


class Ingestor:
    """Decode, validate, bin, filter to the service area and pseudonymize; dead-letter the rest.

    One instance per consumer process; it keeps no per-partition state, so a rebalance needs
    nothing from it. Records must sit in the partition their key maps to among
    ``settings.topic_partitions`` (:mod:`ingest.partitioning`); others are ``wrong_partition``.
    """

    def __init__(
        self,
        settings: Settings,
        area: ServiceArea,
        pseudonymizer: Pseudonymizer,
        dlq: DeadLetterSink | None,
        *,
        fast_path: bool = True,
    ) -> None:
        self._limits = Limits.from_settings(settings)
        self._fast_path = fast_path
        self._binner = CellBinner(area, settings.base_resolution)
        self._partitions = PartitionMap(settings.topic_partitions)
        self._pseudonymizer = pseudonymizer
        self._dlq = dlq

    def ingest(
        self,
        topic: str,
        partition: int,
        records: Sequence[RecordLike],
        now_ms: int | None = None,
    ) -> AcceptedPings:
        """Turn one poll's records of ``topic``/``partition`` (offset order) into accepted pings.

        ``now_ms`` (ms since the epoch, UTC) is the reference for the ``future_ts``/``stale_ts``
        checks. With ``None`` each message is judged against its own Kafka record timestamp, which
        makes the verdict a pure function of the record (identical on replay). Rejected pings are
        handed to the DLQ sink (asynchronously; see :meth:`flush`) and counted by reason.
        Never raises on bad input.
        """
        decoded = decode(records, self._limits, fast_path=self._fast_path)
        counts: Counter[str] = Counter()
        out = self._accept(decoded, now_ms, counts, topic, partition)
        for rej in decoded.rejects:
            counts[rej.reason.value] += max(1, rej.pings or 0)
            if self._dlq is not None:
                letter = DeadLetter(rej.reason.value, topic, partition, rej.offset, None, rej.pings)
                self._dlq.send([letter], rej.value)
        MESSAGES.inc(len(records))
        record_outcomes(counts)
        return replace(out, counts=counts, messages=len(records))

    def warm(self) -> None:
        """Do start-up work now rather than on the first polls (see :meth:`CellBinner.warm`)."""
        tiles = self._binner.warm()
        log_event(_log, "ingest warmed", binning_tiles=tiles)

    def flush(self, timeout_s: float | None = 30.0) -> None:
        """Block until every dead letter sent so far is acknowledged (raises DeadLetterError)."""
        if self._dlq is not None:
            self._dlq.flush(timeout_s)

    def _accept(
        self, d: Decoded, now_ms: int | None, outcome_counts: Counter[str], topic: str, partition: int
    ) -> AcceptedPings:
        n_msgs = len(d.msg_records)
        if n_msgs == 0:
            return AcceptedPings.none()
        per_msg = np.asarray(d.msg_pings, dtype=np.int64)
        BATCH_SIZES.observe_many(per_msg)
        # Pings are laid out as decode keeps them: the typed messages' first, then the others'.
        typed = np.asarray(d.msg_typed, dtype=bool)
        mixed = bool(typed.any()) and not bool(typed.all())
        layout = np.concatenate([np.flatnonzero(typed), np.flatnonzero(~typed)]) if mixed else None
        msgs = np.arange(n_msgs, dtype=np.int64) if layout is None else layout
        counts = per_msg[msgs]
        msg_of_ping = np.repeat(msgs, counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        index = (np.arange(msg_of_ping.size, dtype=np.int64) - starts).astype(np.int32)
        stamps = np.fromiter(map(_timestamp_of, d.msg_records), dtype=np.int64, count=n_msgs)
        ref = stamps[msg_of_ping] if now_ms is None else np.full(msg_of_ping.size, now_ms, dtype=np.int64)
        cols = validate(d, ref, self._limits, self._binner)
        code = cols.code
        expected = self._partitions.expected(d.msg_device)
        elsewhere = np.flatnonzero(expected != partition)
        if elsewhere.size:
            # One device in two partitions would be bounded twice per window (issue #9, hole 2).
            code[np.isin(msg_of_ping, elsewhere)] = _ELSEWHERE
            self._reject_elsewhere(d, elsewhere, expected, outcome_counts, topic, partition)

        ok_pos = np.flatnonzero(code == OK)
        if mixed:  # back to record order: stable by message, and a message's pings are in order
            ok_pos = ok_pos[np.argsort(msg_of_ping[ok_pos], kind="stable")]
        ts_ok = cols.ts[ok_pos]
        devices, keyless = self._pseudonyms(d.msg_device, msg_of_ping[ok_pos], ts_ok // MS_PER_DAY)
        if keyless is not None:
            code[ok_pos[keyless]] = CODE[Reason.NO_KEY]
            ok_pos, ts_ok, devices = ok_pos[~keyless], ts_ok[~keyless], devices[~keyless]
        outcome_counts[ACCEPTED] += int(ok_pos.size)
        if ok_pos.size < code.size:
            self._reject(d, code, msg_of_ping, index, outcome_counts, topic, partition)

        offsets = np.asarray(list(map(_offset_of, d.msg_records)), dtype=np.int64)
        msg_ok = msg_of_ping[ok_pos]
        return AcceptedPings(
            offset=offsets[msg_ok],
            index=index[ok_pos],
            device=devices,
            ts_ms=ts_ok,
            lat=cols.lat[ok_pos],
            lon=cols.lon[ok_pos],
            speed=cols.spd[ok_pos].astype(np.float64),
            cell=cols.cell[ok_pos],
            record_ts=stamps[msg_ok],
        )

    def _pseudonyms(
        self, msg_device: list[bytes], msg: npt.NDArray[np.int64], day: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.bool_] | None]:
        """Pseudonym per ping, and which pings had no key for their day (None when all had one).

        One keyed hash per run of (message, day): a batch spanning midnight gets two. Only "no key
        for that day" becomes ``no_key``; any other key failure (a tampered or unreadable ring)
        propagates and stops the consumer, rather than dead-lettering every ping.
        """
        n = msg.size
        if n == 0:
            return np.empty(0, dtype=np.uint64), None
        change = np.empty(n, dtype=bool)
        change[0] = True
        np.not_equal(msg[1:], msg[:-1], out=change[1:])
        change[1:] |= day[1:] != day[:-1]
        heads = np.flatnonzero(change)
        devices = list(map(msg_device.__getitem__, msg[heads].tolist()))
        days = day[heads].tolist()
        run = np.cumsum(change) - 1
        try:
            values = list(map(self._pseudonymizer.pseudonymize, devices, days))
        except KeyUnavailableError:
            values, missing = self._pseudonyms_slow(devices, days)
            log_event(_log, "ingest_no_key", logging.WARNING, messages=sum(missing), days=sorted(set(days)))
            return np.asarray(values, dtype=np.uint64)[run], np.asarray(missing, dtype=bool)[run]
        return np.asarray(values, dtype=np.uint64)[run], None

    def _pseudonyms_slow(self, devices: list[bytes], days: list[int]) -> tuple[list[int], list[bool]]:
        """Per-run hashing that tolerates days whose key is destroyed or not yet available."""
        values: list[int] = []
        missing: list[bool] = []
        for device, day in zip(devices, days, strict=True):
            try:
                values.append(self._pseudonymizer.pseudonymize(device, day))
                missing.append(False)
            except KeyUnavailableError:
                values.append(0)
                missing.append(True)
        return values, missing

    def _reject(
        self,
        d: Decoded,
        code: npt.NDArray[np.int8],
        msg_of_ping: npt.NDArray[np.int64],
        index: npt.NDArray[np.int32],
        counts: Counter[str],
        topic: str,
        partition: int,
    ) -> None:
        bad = np.flatnonzero(code > OK)
        bad = bad[np.argsort(msg_of_ping[bad], kind="stable")]  # record order, whatever the layout
        reasons = [REASON_OF_CODE[c] for c in code[bad].tolist()]
        counts.update(reasons)
        if self._dlq is None:
            return
        letters_of: dict[int, list[DeadLetter]] = {}
        for pos, m, reason in zip(bad.tolist(), msg_of_ping[bad].tolist(), reasons, strict=True):
            idx = int(index[pos]) if d.msg_batch[m] else None
            offset = d.msg_records[m].offset
            letters_of.setdefault(m, []).append(DeadLetter(reason, topic, partition, offset, idx))
        for m, letters in letters_of.items():
            self._dlq.send(letters, d.msg_records[m].value)

    def _reject_elsewhere(
        self,
        d: Decoded,
        messages: npt.NDArray[np.int64],
        expected: npt.NDArray[np.int64],
        counts: Counter[str],
        topic: str,
        partition: int,
    ) -> None:
        """Dead-letter whole messages found in ``partition`` whose key belongs in another one."""
        reason = Reason.WRONG_PARTITION.value
        for m in messages.tolist():
            pings = d.msg_pings[m]
            counts[reason] += pings
            if self._dlq is not None:
                rec = d.msg_records[m]
                letter = DeadLetter(reason, topic, partition, rec.offset, None, pings, int(expected[m]))
                self._dlq.send([letter], rec.value)
