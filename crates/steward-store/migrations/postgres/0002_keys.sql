-- Migration 2: wrapped keys. Never edit once landed.
-- A subject's data key, wrapped by the master key named by master_key_id.
-- Deleting the row destroys the key (crypto-shredding); deleting the contact
-- deletes it too.
CREATE TABLE subject_keys (
    subject_id    UUID PRIMARY KEY REFERENCES contacts(subject_id) ON DELETE CASCADE,
    key_version   BIGINT NOT NULL,
    master_key_id TEXT NOT NULL,
    wrapped       BYTEA NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX subject_keys_master ON subject_keys(master_key_id, subject_id);

-- Instance-wide keys (blind index, token hashing), wrapped the same way.
CREATE TABLE instance_keys (
    name          TEXT PRIMARY KEY,
    key_version   BIGINT NOT NULL,
    master_key_id TEXT NOT NULL,
    wrapped       BYTEA NOT NULL,
    created_at    BIGINT NOT NULL
);
