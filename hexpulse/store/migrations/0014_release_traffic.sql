-- Issue #12: the budget plan's `traffic` product (privacy/release/traffic.py), one row per cell of
-- the traffic resolution and window, written before the window's release_windows row. bins_est:
-- the unbiased estimates of moving devices per speed bin (may be < 0, never clipped, so sums over
-- cells and windows stay unbiased); bins_sigma: σ of one bin (devices); moving_est: their sum;
-- mids_kmh: each bin's representative speed (km/h, the middle of its edges) for mean speeds;
-- plan: the window's plan hash. Windows whose partials predate 0011 have no rows here.
CREATE TABLE IF NOT EXISTS {db}.release_traffic (
    window_start DateTime('UTC'),
    res UInt8,
    cell UInt64,
    bins_est Array(Float64),
    bins_sigma Float64,
    moving_est Float64,
    mids_kmh Array(Float64),
    plan UInt64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, res, cell);
