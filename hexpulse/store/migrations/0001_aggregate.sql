-- Restricted tables written by aggregate/ (never served; dropped after release + grace).
-- Exact partial aggregates per (window, base cell, Kafka partition). A replay of the same
-- offsets writes identical rows under the same key, so ReplacingMergeTree keeps one.
CREATE TABLE IF NOT EXISTS {db}.partials (
    window_start DateTime('UTC'),
    cell UInt64,
    partition UInt16,
    devices UInt32,
    moving UInt32,
    speed_sum UInt64,
    close_offset Int64
) ENGINE = ReplacingMergeTree(close_offset)
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (window_start, cell, partition);

-- One row per closing decision of a partition: every window starting before `horizon` is
-- closed and its partials are written. The releaser treats a window as complete when every
-- partition's latest horizon is past it; a consumer taking over a partition resumes from it.
CREATE TABLE IF NOT EXISTS {db}.progress (
    topic String,
    partition UInt16,
    horizon DateTime('UTC'),
    watermark_ms Int64,
    close_offset Int64,
    closed_by String,
    written_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(close_offset)
ORDER BY (topic, partition, horizon);
