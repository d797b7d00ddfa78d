-- Migration 6: data-subject requests and proofs of erasure. Never edit once landed.
-- `details` (e.g. rectification changes) is sealed under the subject's key;
-- `identifier_hash` is a keyed hash of the subject's e-mail address.
CREATE TABLE dsr (
    id                  BLOB PRIMARY KEY,
    kind                TEXT NOT NULL,
    regime              TEXT NOT NULL,
    subject_id          BLOB,
    identifier_hash     BLOB,
    status              TEXT NOT NULL,
    received_at         INTEGER NOT NULL,
    received_offset     INTEGER NOT NULL,
    due_at              INTEGER NOT NULL,
    extensions          INTEGER NOT NULL DEFAULT 0,
    extension_reason    TEXT,
    verified_at         INTEGER,
    verified_by         BLOB,
    verification_method TEXT,
    completed_at        INTEGER,
    outcome             TEXT,
    details             BLOB,
    created_by          BLOB,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE INDEX dsr_due ON dsr(status, due_at);
CREATE INDEX dsr_subject ON dsr(subject_id);

-- What remains after an erasure: no personal data, only a keyed hash of the
-- identifier, so an erased person is not silently re-imported.
CREATE TABLE erasure_proofs (
    identifier_hash BLOB PRIMARY KEY,
    request_id      BLOB NOT NULL,
    erased_at       INTEGER NOT NULL
);
