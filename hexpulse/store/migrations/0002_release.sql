-- Tables written by privacy/ (the releaser). Only these are read by the API.
-- A window is public once it has a row in release_windows; its cells are written first, so
-- a crash mid-release leaves unpublished rows that the next run may redraw safely.
CREATE TABLE IF NOT EXISTS {db}.release_windows (
    window_start DateTime('UTC'),
    window_end DateTime('UTC'),
    released_at DateTime('UTC'),
    base_cells UInt32,
    rho Float64,
    mechanism String,
    lag_s Float64
) ENGINE = ReplacingMergeTree()
ORDER BY window_start;

-- Released values per (window, resolution, cell). Counts are noisy, post-processed, >= 0;
-- *_sigma is the noise standard deviation; *_lo/*_hi the 95% interval.
CREATE TABLE IF NOT EXISTS {db}.release_cells (
    window_start DateTime('UTC'),
    res UInt8,
    cell UInt64,
    count Int64,
    count_sigma Float64,
    count_lo Float64,
    count_hi Float64,
    moving Int64,
    moving_sigma Float64,
    moving_lo Float64,
    moving_hi Float64,
    speed_kmh Nullable(Float64),
    speed_lo_kmh Nullable(Float64),
    speed_hi_kmh Nullable(Float64)
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, res, cell);

-- Every noise draw's privacy cost. Each row is charged to every device-day of `day`
-- (worst case), so the spend per device-day is sum(rho) over the day.
CREATE TABLE IF NOT EXISTS {db}.budget_ledger (
    day Date,
    window_start DateTime('UTC'),
    res UInt8,
    metric String,
    mechanism String,
    sensitivity Float64,
    scale Float64,
    rho Float64,
    recorded_at DateTime('UTC')
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (day, window_start, res, metric);
