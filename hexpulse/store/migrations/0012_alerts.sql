-- Crowd-safety alerts (alerts/, docs/ALERTS.md), in the public database: they hold released values
-- only. Subscriptions: one row per revision (the newest revision wins under FINAL; deleted = 1 ends
-- one). levels: JSON [{name, threshold, clear}]; secrets: the whsec_ secrets, newest first.
CREATE TABLE IF NOT EXISTS {db}.alert_subscriptions (
    subscription_id String,
    owner String,
    name String,
    zone_id String,
    metric String,
    expansion Float64,
    levels String,
    min_windows UInt16,
    confidence Float64,
    webhook_url String,
    secrets Array(String),
    deleted UInt8,
    created_at DateTime('UTC'),
    revision UInt64
) ENGINE = ReplacingMergeTree(revision)
ORDER BY subscription_id;

-- The state of a subscription after a window (written when it changes). A window evaluated again
-- rewrites the same row, so a restart repeats nothing.
CREATE TABLE IF NOT EXISTS {db}.alert_states (
    subscription_id String,
    window_start DateTime('UTC'),
    level UInt8,
    direction Int8,
    streak UInt16,
    target UInt8
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(window_start)
ORDER BY (subscription_id, window_start);

-- Every transition, with its evidence. event_id is derived from (subscription, window, transition).
CREATE TABLE IF NOT EXISTS {db}.alert_events (
    event_id String,
    subscription_id String,
    owner String,
    zone_id String,
    window_start DateTime('UTC'),
    kind String,
    level_before String,
    level_after String,
    metric String,
    value Float64,
    sigma Float64,
    lo Float64,
    hi Float64,
    threshold Float64,
    probability Float64,
    created_at DateTime('UTC')
) ENGINE = ReplacingMergeTree()
ORDER BY event_id;

-- The webhook queue: one row per state of a delivery; the highest version wins. The evaluator
-- enqueues with version 0, so enqueueing again (a restart) never undoes a delivery's progress.
-- status: pending, delivered, dead.
CREATE TABLE IF NOT EXISTS {db}.alert_deliveries (
    subscription_id String,
    event_id String,
    window_start DateTime('UTC'),
    status String,
    attempts UInt16,
    next_at Float64,
    expires_at Float64,
    last_status UInt16,
    last_error String,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (subscription_id, event_id);

-- Who runs the evaluator: claims per term (alerts/lease.py); the earliest claim of a term wins.
CREATE TABLE IF NOT EXISTS {db}.alert_leases (
    term UInt64,
    holder String,
    claimed_ns UInt64
) ENGINE = MergeTree()
ORDER BY (term, claimed_ns);
