-- Migration 9: access and portability bundles. Never edit once landed.
-- Each bundle is sealed under the subject's data key and expires; it goes
-- with the contact (erasure deletes it, and crypto-shredding makes any copy
-- unreadable).
CREATE TABLE export_bundles (
    dsr_id     UUID PRIMARY KEY,
    subject_id UUID NOT NULL REFERENCES contacts(subject_id) ON DELETE CASCADE,
    sealed     BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX export_bundles_subject ON export_bundles(subject_id);
