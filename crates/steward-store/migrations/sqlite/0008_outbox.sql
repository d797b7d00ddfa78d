-- Migration 8: the e-mail outbox and one-time verification links of
-- data-subject requests. Never edit once landed.
-- Messages are sealed (AES-256-GCM under the instance outbox key): the
-- recipient's address and the text never rest in plaintext.
CREATE TABLE outbox (
    id         BLOB PRIMARY KEY,
    kind       TEXT NOT NULL,
    message    BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    sent_at    INTEGER
);
CREATE INDEX outbox_unsent ON outbox(sent_at, id);

-- Only a keyed hash of each one-time token is kept.
CREATE TABLE dsr_verifications (
    token_hash BLOB PRIMARY KEY,
    dsr_id     BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
