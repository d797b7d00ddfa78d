-- Migration 13: the register of personal-data breaches (GDPR Art. 33(5)),
-- and the audit log's token index. Never edit once landed.
--
-- An incident row keeps in the clear only what the register is listed and
-- sorted by (status, when the controller became aware, the earliest open
-- legal deadline); its title, description, risk assessment and the rest
-- are sealed by the service under an instance key. Its entries (timeline,
-- evidence, scope snapshots, notifications, containment actions) are
-- append-only and sealed too; they are listed by id (UUIDv7).
CREATE TABLE incidents (
    id         BLOB PRIMARY KEY,
    status     TEXT NOT NULL,
    aware_at   INTEGER NOT NULL,
    due_at     INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    sealed     BLOB NOT NULL
);
CREATE INDEX incidents_created ON incidents(created_at, id);

CREATE TABLE incident_entries (
    id          BLOB PRIMARY KEY,
    incident_id BLOB NOT NULL REFERENCES incidents(id),
    kind        TEXT NOT NULL,
    at          INTEGER NOT NULL,
    sealed      BLOB NOT NULL
);
CREATE INDEX incident_entries_incident ON incident_entries(incident_id, id);

-- The audit log's token index (the scope of a breach by API token or
-- session), kept like the subject index of migration 11 rather than as an
-- index on audit_log(actor_token, idx), which would cost every commit of
-- read entries an index page per entry: the writer adds the entries from
-- `indexed_upto` onwards to both tables in the same sorted batch and
-- transaction (see src/sqlite/ops.rs, merge_subject_index), so
-- `indexed_upto` holds for both; a query by token reads this table below
-- it and scans the short tail of audit_log above it. Not trusted by
-- verification.
CREATE TABLE audit_token_index (
    token_id BLOB NOT NULL,
    idx      INTEGER NOT NULL,
    PRIMARY KEY (token_id, idx)
) WITHOUT ROWID;

INSERT INTO audit_token_index (token_id, idx)
    SELECT actor_token, idx FROM audit_log
    WHERE actor_token IS NOT NULL AND idx < (SELECT indexed_upto FROM audit_index_state WHERE id = 1)
    ORDER BY actor_token, idx;
