-- Cursors of the release feed (releases/): one row per commit of a follower (a product process:
-- alerts, tourism, exports). A cursor only moves forward, so the follower's cursor is the row with
-- the largest window_start; merges keep exactly that row (the version column is window_start).
-- released_at is the cursor window's own release time, which the follower uses to notice a window
-- published behind it (the releaser's window order broken).
CREATE TABLE IF NOT EXISTS {db}.feed_cursors (
    follower String,
    window_start DateTime('UTC'),
    released_at DateTime('UTC'),
    committed_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(window_start)
ORDER BY follower;
