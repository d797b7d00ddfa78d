-- Migration 8: the e-mail outbox and one-time verification links of
-- data-subject requests. Never edit once landed.
-- Messages are sealed (AES-256-GCM under the instance outbox key): the
-- recipient's address and the text never rest in plaintext.
CREATE TABLE outbox (
    id         UUID PRIMARY KEY,
    kind       TEXT NOT NULL,
    message    BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    sent_at    BIGINT
);
CREATE INDEX outbox_unsent ON outbox(sent_at, id);

-- Only a keyed hash of each one-time token is kept.
CREATE TABLE dsr_verifications (
    token_hash BYTEA PRIMARY KEY,
    dsr_id     UUID NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
