-- Migration 5: consent and privacy notices. Never edit once landed.
-- Published privacy-notice versions (public text, not personal data).
CREATE TABLE notices (
    id           UUID PRIMARY KEY,
    version      TEXT NOT NULL UNIQUE,
    language     TEXT NOT NULL,
    text         TEXT NOT NULL,
    text_hash    BYTEA NOT NULL,
    material     BOOLEAN NOT NULL,
    published_at BIGINT NOT NULL
);

-- Consent records, append-only. `evidence` (IP address, user agent, notes)
-- is sealed under the subject's key. A pending record (double opt-in) keeps
-- the keyed hash of its one-time confirmation token until it is used.
CREATE TABLE consents (
    id                      UUID PRIMARY KEY,
    subject_id              UUID NOT NULL REFERENCES contacts(subject_id) ON DELETE CASCADE,
    purpose                 TEXT NOT NULL,
    status                  TEXT NOT NULL,
    recorded_at             BIGINT NOT NULL,
    source                  TEXT NOT NULL,
    notice_version          TEXT,
    notice_hash             BYTEA,
    evidence                BYTEA,
    recorded_by             UUID,
    expires_at              BIGINT,
    confirmation_hash       BYTEA,
    confirmation_expires_at BIGINT,
    confirmed_at            BIGINT
);
CREATE INDEX consents_subject ON consents(subject_id, id);
CREATE UNIQUE INDEX consents_confirmation ON consents(confirmation_hash);

-- The current consent state per purpose, kept on the contact for the
-- purpose check of every read: "purpose=expiry_micros" pairs (0: no expiry).
ALTER TABLE contacts ADD COLUMN consented TEXT NOT NULL DEFAULT '';
