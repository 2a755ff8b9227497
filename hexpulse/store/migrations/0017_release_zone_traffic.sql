-- Issue #12: road corridors (a zone set, e.g. `corridor`) measured directly for traffic: the plan's
-- `traffic.<set>` product, one keyed draw of the set's zones × speed bins vector per window, each
-- zone's exact bins the sum of its base cells' partial speed bins (one device in one bin of one base
-- cell per window, so one entry moves by at most L). One row per measured zone and window, written
-- before the window's release_windows row. bins_est: the unbiased estimates of moving devices per
-- speed bin (may be < 0, never clipped, so sums over zones and windows stay unbiased); bins_sigma: σ
-- of one bin (devices); moving_est: their sum; mids_kmh: each bin's representative speed (km/h);
-- cells: how many base cells the zone version had; plan: the window's plan hash.
CREATE TABLE IF NOT EXISTS {db}.release_zone_traffic (
    window_start DateTime('UTC'),
    zone_set String,
    zone_id String,
    version UInt32,
    bins_est Array(Float64),
    bins_sigma Float64,
    moving_est Float64,
    mids_kmh Array(Float64),
    cells UInt32,
    plan UInt64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, zone_set, zone_id);
