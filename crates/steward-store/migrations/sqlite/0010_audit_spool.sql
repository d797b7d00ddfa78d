-- Migration 10: how far each read-audit spool file has been sealed into
-- the audit log (see src/sqlite/spool.rs). Never edit once landed.
CREATE TABLE audit_spool (
    name      TEXT PRIMARY KEY,
    committed INTEGER NOT NULL
);
