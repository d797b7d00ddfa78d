-- Migration 6: data-subject requests and proofs of erasure. Never edit once landed.
-- `details` (e.g. rectification changes) is sealed under the subject's key;
-- `identifier_hash` is a keyed hash of the subject's e-mail address.
CREATE TABLE dsr (
    id                  UUID PRIMARY KEY,
    kind                TEXT NOT NULL,
    regime              TEXT NOT NULL,
    subject_id          UUID,
    identifier_hash     BYTEA,
    status              TEXT NOT NULL,
    received_at         BIGINT NOT NULL,
    received_offset     BIGINT NOT NULL,
    due_at              BIGINT NOT NULL,
    extensions          BIGINT NOT NULL DEFAULT 0,
    extension_reason    TEXT,
    verified_at         BIGINT,
    verified_by         UUID,
    verification_method TEXT,
    completed_at        BIGINT,
    outcome             TEXT,
    details             BYTEA,
    created_by          UUID,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX dsr_due ON dsr(status, due_at);
CREATE INDEX dsr_subject ON dsr(subject_id);

-- What remains after an erasure: no personal data, only a keyed hash of the
-- identifier, so an erased person is not silently re-imported.
CREATE TABLE erasure_proofs (
    identifier_hash BYTEA PRIMARY KEY,
    request_id      UUID NOT NULL,
    erased_at       BIGINT NOT NULL
);
