-- Issue #12: the speed bins' exact input per device, in the restricted database {exact} like the
-- partials it is written with, by the consumer in the same unit (after the partials, before the
-- progress row), keyed by the closing id: a replay of the same closing overwrites its rows, and
-- rows no progress row vouches for never count (hexpulse/store/progress.py). The releaser counts a
-- pseudonym-day's speed bins in its first W_t moving windows only (privacy/release/traffic_bound.py).
--
-- traffic_moving: one row per moving device-window's contributed cell (after the per-window cell
-- bound L) with its speed bin; Σ rows of a window's counted closings = Σ partials.moving. It links
-- a pseudonym's cells over minutes, so it is kept by the hour: retention drops an hour once every
-- window of it is released (the releaser reads a window's rows only when it releases it).
CREATE TABLE IF NOT EXISTS {exact}.traffic_moving (
    window_start DateTime('UTC'),
    partition UInt16,
    closing UInt64,
    device UInt64,
    cell UInt64,
    speed_bin UInt8
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(window_start) * 100 + toHour(window_start)
ORDER BY (window_start, partition, closing, device, cell);
-- traffic_movers: which pseudonyms moved in a window, nothing about where: what the bound's
-- per-device-day counts are rebuilt from. Kept by UTC day and dropped with the partials.
CREATE TABLE IF NOT EXISTS {exact}.traffic_movers (
    window_start DateTime('UTC'),
    partition UInt16,
    closing UInt64,
    device UInt64
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(window_start)
ORDER BY (window_start, partition, closing, device);
