-- Migration 7: legal holds. Never edit once landed.
-- An active hold (released_at IS NULL) blocks the erasure and deletion of
-- the subject's data (GDPR Art. 17(3)(b), (e)). Rows outlive the contact:
-- they are evidence of why data was kept, and hold no personal data.
CREATE TABLE legal_holds (
    id          BLOB PRIMARY KEY,
    subject_id  BLOB NOT NULL,
    reason      TEXT NOT NULL,
    created_by  BLOB,
    created_at  INTEGER NOT NULL,
    released_at INTEGER,
    released_by BLOB
);
CREATE INDEX legal_holds_subject ON legal_holds(subject_id);
