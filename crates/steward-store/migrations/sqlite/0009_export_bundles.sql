-- Migration 9: access and portability bundles. Never edit once landed.
-- Each bundle is sealed under the subject's data key and expires; it goes
-- with the contact (erasure deletes it, and crypto-shredding makes any copy
-- unreadable).
CREATE TABLE export_bundles (
    dsr_id     BLOB PRIMARY KEY,
    subject_id BLOB NOT NULL REFERENCES contacts(subject_id) ON DELETE CASCADE,
    sealed     BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX export_bundles_subject ON export_bundles(subject_id);
