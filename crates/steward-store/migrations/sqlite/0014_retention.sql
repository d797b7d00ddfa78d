-- Migration 14: what the retention schedules deleted, and the anonymised
-- aggregates they kept. Never edit once landed.
--
-- One row per run, rule, record kind and action, counted in the same
-- transaction as the deletions it counts (so a run cut short counts what it
-- did and no more). No personal data: rule names, kinds and counts.
CREATE TABLE retention_log (
    run_id  BLOB NOT NULL,
    rule    TEXT NOT NULL,
    record  TEXT NOT NULL,
    action  TEXT NOT NULL,
    at      INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (run_id, rule, record, action)
);
CREATE INDEX retention_log_at ON retention_log(at);

-- What anonymisation keeps: counts by record kind, month and an
-- aggregate-safe attribute (a contact's country, an interaction's kind),
-- linked to no one.
CREATE TABLE retention_aggregates (
    record    TEXT NOT NULL,
    period    TEXT NOT NULL,
    attribute TEXT NOT NULL,
    value     TEXT NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (record, period, attribute, value)
) WITHOUT ROWID;
