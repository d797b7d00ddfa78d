-- Migration 18: the audit facts (migration 15) move to a table of their
-- own. Beside the entry, a pass over the facts still loaded every page of
-- audit_log (a few entries per 2 KiB page: gigabytes at ten million
-- entries); in their own table about thirty fit a page, so the compliance
-- report's pass reads a tenth of the bytes. Facts already written are
-- copied; audit_log.facts is no longer written (rewriting every row to
-- clear it would cost more than the space it holds). Like the column, the
-- table is a copy not covered by the leaf hash and not trusted by
-- verification; an entry without a row here is read from audit_log.
-- Never edit once landed.
CREATE TABLE audit_facts (
    idx   INTEGER PRIMARY KEY,
    facts BLOB NOT NULL
);
INSERT INTO audit_facts (idx, facts) SELECT idx, facts FROM audit_log WHERE facts IS NOT NULL;
