-- Issue #14: tourism areas (tourism/areas.py, written by the API with the admin scope). An area
-- is a registered zone (zones, migration 0010) plus what a scenic area publishes: its capacity
-- (instantaneous maximum of visitors, 0 = none stated) and the IANA time zone its local day is
-- counted in. One row per area; a change or a deletion rewrites it with a higher revision, so
-- readers use FINAL. Public, like the zones.
CREATE TABLE IF NOT EXISTS {db}.tourism_areas (
    area_id String,
    name String,
    zone_id String,
    capacity UInt32,
    timezone String,
    created_at DateTime('UTC'),
    deleted UInt8,
    revision UInt64
) ENGINE = ReplacingMergeTree(revision)
ORDER BY area_id;
