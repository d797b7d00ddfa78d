-- Migration 11: the audit log's subject index, written in sorted batches.
-- Never edit once landed.
--
-- An index on audit_log(subject_id, idx) took one insert at a random place
-- per entry, so every commit of read entries dirtied (and wrote to the WAL)
-- about one index page per entry. The writer now adds the entries from
-- `indexed_upto` onwards to this table in subject order once enough have
-- gathered (see src/sqlite/ops.rs, merge_subject_index); a query by subject
-- reads this table for entries below `indexed_upto` and scans the short
-- tail of audit_log above it. Like the other copied columns, the index is
-- not trusted by verification.
CREATE TABLE audit_subject_index (
    subject_id BLOB NOT NULL,
    idx        INTEGER NOT NULL,
    PRIMARY KEY (subject_id, idx)
) WITHOUT ROWID;

INSERT INTO audit_subject_index (subject_id, idx)
    SELECT subject_id, idx FROM audit_log WHERE subject_id IS NOT NULL ORDER BY subject_id, idx;

CREATE TABLE audit_index_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_upto INTEGER NOT NULL
);
INSERT INTO audit_index_state (id, indexed_upto) SELECT 1, COALESCE(MAX(idx) + 1, 0) FROM audit_log;

DROP INDEX audit_subject;
