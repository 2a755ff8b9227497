-- Noise once under any number of releasers (privacy/release/claims.py, PRIVACY.md §5).
-- Before drawing a window a releaser appends an intent naming the plan it draws under, then
-- reads every intent of the window back: two different plans never both proceed. plan_json is
-- the whole plan (noise scales, cells digest, speed cap), so another releaser can finish a
-- window under the plan it was begun with. Append-only.
CREATE TABLE IF NOT EXISTS {db}.release_intents (
    window_start DateTime('UTC'),
    plan UInt64,
    releaser String,
    plan_json String,
    at DateTime('UTC')
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, plan);

-- The budget ledger, append-only (budget_ledger was a ReplacingMergeTree, where a second draw
-- silently replaced the first). One row per (window, resolution, metric) and releaser run;
-- fingerprint identifies the released values, so the spend counts each distinct draw once and
-- a double draw shows as two fingerprints of one key.
CREATE TABLE IF NOT EXISTS {db}.release_ledger (
    day Date,
    window_start DateTime('UTC'),
    res UInt8,
    metric String,
    plan UInt64,
    fingerprint UInt64,
    mechanism String,
    sensitivity Float64,
    scale Float64,
    rho Float64,
    releaser String,
    recorded_at DateTime('UTC')
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(day)
ORDER BY (day, window_start, res, metric);

-- The old ledger's rows, with plan and fingerprint 0 (unknown). Repeating this after a crash
-- mid-migration only adds identical rows, which the spend counts once. budget_ledger itself is
-- kept, read-only, as the audit trail it was.
INSERT INTO {db}.release_ledger
SELECT day, window_start, res, metric, 0, 0, mechanism, sensitivity, scale, rho, 'budget_ledger', recorded_at
FROM {db}.budget_ledger FINAL;

-- The plan each released window and cell was drawn under (0 for windows released before).
ALTER TABLE {db}.release_windows ADD COLUMN plan UInt64 DEFAULT 0;

ALTER TABLE {db}.release_cells ADD COLUMN plan UInt64 DEFAULT 0;
