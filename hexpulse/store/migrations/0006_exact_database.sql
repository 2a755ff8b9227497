-- The exact partials and the progress rows live in a database of their own, {exact}
-- (HEXPULSE_CLICKHOUSE_EXACT_DATABASE, default <database>_exact), that only the pipeline user
-- can read: the API user's allow_databases lists the public database alone (ClickHouse 18.16
-- has no GRANT). A rename keeps the rows and the table definitions as earlier migrations left them.
CREATE DATABASE IF NOT EXISTS {exact};
RENAME TABLE {db}.partials TO {exact}.partials;
RENAME TABLE {db}.progress TO {exact}.progress;
