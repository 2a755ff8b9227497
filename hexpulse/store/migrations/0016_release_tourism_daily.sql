-- Issue #14: the daily tourism release, the contract between the daily releaser (writer) and the
-- tourism read side (API, report, open data). Public, like every release table.
--
-- release_tourism_daily: one row per (area, local day, metric). metric is `visitors` (distinct
-- devices present in the area that local day) or a dwell bin of those visitors: `dwell_lt_15m`,
-- `dwell_15_60m`, `dwell_1_3h`, `dwell_ge_3h` (dwell = minutes present). estimate: the unbiased
-- estimate (devices, may be < 0, never clipped, so sums stay unbiased); sigma its standard error;
-- lo/hi the 95% interval; display the clipped non-negative integer a chart shows; plan the hash of
-- the day's plan record. Written before the day's release_tourism_days row.
CREATE TABLE IF NOT EXISTS {db}.release_tourism_daily (
    area_id String,
    local_date Date,
    metric String,
    estimate Float64,
    sigma Float64,
    lo Float64,
    hi Float64,
    display Int64,
    plan UInt64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(local_date)
ORDER BY (area_id, local_date, metric);

-- release_tourism_days: one row per released (area, local day), written after all its metric rows;
-- readers serve a day only when this row exists. day_start/day_end: the local day's bounds in UTC;
-- timezone: the area's IANA zone at release; k_areas: the per-device-day area bound in force;
-- released_at: when the release completed (its lag after local midnight is day_end → released_at).
CREATE TABLE IF NOT EXISTS {db}.release_tourism_days (
    area_id String,
    local_date Date,
    timezone String,
    day_start DateTime('UTC'),
    day_end DateTime('UTC'),
    k_areas UInt16,
    plan UInt64,
    released_at DateTime('UTC')
) ENGINE = ReplacingMergeTree()
ORDER BY (area_id, local_date);
