-- Migration 7: legal holds. Never edit once landed.
-- An active hold (released_at IS NULL) blocks the erasure and deletion of
-- the subject's data (GDPR Art. 17(3)(b), (e)). Rows outlive the contact:
-- they are evidence of why data was kept, and hold no personal data.
CREATE TABLE legal_holds (
    id          UUID PRIMARY KEY,
    subject_id  UUID NOT NULL,
    reason      TEXT NOT NULL,
    created_by  UUID,
    created_at  BIGINT NOT NULL,
    released_at BIGINT,
    released_by UUID
);
CREATE INDEX legal_holds_subject ON legal_holds(subject_id);
