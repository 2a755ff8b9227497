-- Issue #12: moving devices counted in speed bins, one device in one bin per cell and window
-- (aggregate/bounding.py, HEXPULSE_TRAFFIC_SPEED_EDGES_KMH), so a cell's bin vector has the
-- sensitivity of one count (benchmarks/bench_traffic.py chose it over clamped speed sums).
-- Rows written before this migration have no bins (an empty array): the releaser must not read
-- their windows' bins as zeros.
ALTER TABLE {exact}.partials
    ADD COLUMN speed_bins Array(UInt32) AFTER close_offset;
