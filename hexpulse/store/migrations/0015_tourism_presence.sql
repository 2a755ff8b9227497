-- Issue #14: the exact daily tourism aggregation, in the restricted database {exact} like the
-- partials it is written with. One row per (window, tourism zone, Kafka partition, closing,
-- pseudonym): the device contributed (after the per-window cell bound) to a base cell of a zone
-- that a tourism area names. Written by the consumer in the same unit as the partials, before the
-- progress row, and keyed by the closing id, so a replay of the same closing overwrites its rows
-- and rows of a closing no progress row vouches for never count (hexpulse/store/progress.py).
-- The daily releaser derives per (area, local day) the distinct pseudonyms, each one's dwell
-- (windows present) and first and last window from these rows (privacy/release/tourism_daily.py).
-- Partitioned by UTC day so retention drops a day's pseudonyms with its partials.
CREATE TABLE IF NOT EXISTS {exact}.tourism_presence (
    window_start DateTime('UTC'),
    zone_id String,
    partition UInt16,
    closing UInt64,
    device UInt64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (window_start, zone_id, partition, closing, device);
