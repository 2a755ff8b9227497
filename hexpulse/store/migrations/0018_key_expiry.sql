-- Issue #15: API keys may expire. expires_at is when the key stops being accepted (401, "expired");
-- the epoch (the default, and every key created before this migration) means it never expires.
ALTER TABLE {db}.api_keys
    ADD COLUMN expires_at DateTime('UTC') DEFAULT toDateTime(0);
