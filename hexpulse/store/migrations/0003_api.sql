-- API keys (written by `hexpulse keys`, read by api/). Only a salted HKDF-SHA256 digest of the
-- secret is stored. A key is changed (revoked) by inserting a row with a higher version;
-- readers use FINAL so the newest version of each key_id wins.
CREATE TABLE IF NOT EXISTS {db}.api_keys (
    key_id String,
    name String,
    salt String,
    digest String,
    scopes Array(String),
    created_at DateTime('UTC'),
    revoked UInt8,
    revoked_at DateTime('UTC'),
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY key_id;
