-- Migration 12: grants made through the public consent endpoint, pending
-- until the person confirms them (double opt-in). Never edit once landed.
--
-- A row is one request: the keyed hash of the one-time code e-mailed to
-- the address given, and the request itself (address, purpose, notice
-- version, evidence) sealed under the instance outbox key, because no
-- contact — and so no subject key — may exist yet. Nothing becomes consent
-- until the code comes back (`used_at`); expired rows are purged.
CREATE TABLE pending_consents (
    token_hash BLOB PRIMARY KEY,
    id         BLOB NOT NULL,
    sealed     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX pending_consents_expiry ON pending_consents(expires_at);
