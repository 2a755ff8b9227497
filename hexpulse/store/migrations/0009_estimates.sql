-- Issue #11: next to the clipped, non-negative integer a map displays, every released cell keeps
-- the unbiased reconciled least-squares estimate (persons, before clipping and rounding; may be
-- negative). count_sigma / moving_sigma are its standard error. Every sum (areas, series, city
-- totals) adds these: summing clipped values is biased (a city total came out 18x the truth).
-- Rows released before this migration have no estimate; they read the clipped value.
-- (ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS; the migration runner treats "column already
-- exists" on an ADD COLUMN as applied, so a crash between the two columns can be resumed.)
ALTER TABLE {db}.release_cells
    ADD COLUMN count_est Float64 DEFAULT toFloat64(count),
    ADD COLUMN moving_est Float64 DEFAULT toFloat64(moving);
