-- Issue #9, hole 4: every partial row names the closing decision that wrote it, and every
-- progress row records that closing's id, the horizon it closed from and its owner (epoch =
-- one more than the partition's previous owner; generation = the Kafka group generation it was
-- assigned in). The releaser counts, per (partition, window), only the partials of the one
-- closing hexpulse/store/progress.py picks, so orphan rows and fenced owners never count.
-- Both ids join the ReplacingMergeTree keys: two closings of one window no longer replace each
-- other's rows, and a replay of the same closing still overwrites its own.
-- (ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS; the migration runner treats "column already
-- exists" on an ADD COLUMN as applied, so a crash between the two statements can be resumed.)
-- Numbered after 0006, which moved both tables into the restricted database {exact}: this alters
-- them there, on fresh and on already migrated databases alike.
ALTER TABLE {exact}.partials
    ADD COLUMN closing UInt64 AFTER partition,
    MODIFY ORDER BY (window_start, cell, partition, closing);

ALTER TABLE {exact}.progress
    ADD COLUMN from_horizon DateTime('UTC') AFTER horizon,
    ADD COLUMN closing UInt64 AFTER closed_by,
    ADD COLUMN epoch UInt64 AFTER closing,
    ADD COLUMN generation Int64 AFTER epoch,
    MODIFY ORDER BY (topic, partition, horizon, closing);
