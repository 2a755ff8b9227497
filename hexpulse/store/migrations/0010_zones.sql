-- Registered zones (hexpulse/zones.py, written by the API with the admin scope). Public and
-- declared in advance. One row per (zone_id, version); ending a version rewrites its row with a
-- later valid_to and a higher revision, so readers use FINAL. cells: the base-resolution cells
-- of the service area whose centres lie in the polygon (sorted UInt64). geometry: GeoJSON text.
CREATE TABLE IF NOT EXISTS {db}.zones (
    zone_id String,
    version UInt32,
    zone_set String,
    name String,
    geometry String,
    cells Array(UInt64),
    valid_from DateTime('UTC'),
    valid_to DateTime('UTC'),
    revision UInt64
) ENGINE = ReplacingMergeTree(revision)
ORDER BY (zone_id, version);

-- Released zone values per window (privacy/release/zones.py), written before the window's
-- release_windows row. count_est is the unbiased estimate (may be < 0), count the clipped
-- non-negative integer a map shows, count_sigma its standard error (devices), count_lo/count_hi
-- the 95% interval, cells how many base cells the zone version had, plan the window's plan hash.
CREATE TABLE IF NOT EXISTS {db}.release_zones (
    window_start DateTime('UTC'),
    zone_set String,
    zone_id String,
    version UInt32,
    count Int64,
    count_est Float64,
    count_sigma Float64,
    count_lo Float64,
    count_hi Float64,
    cells UInt32,
    plan UInt64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, zone_set, zone_id);
