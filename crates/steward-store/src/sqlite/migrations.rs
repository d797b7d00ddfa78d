//! Embedded, append-only SQLite migrations. Never edit a landed migration;
//! add the next numbered file.

use rusqlite::{params, Connection};

use crate::{StoreError, StoreResult};

const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, "keys", include_str!("../../migrations/sqlite/0002_keys.sql")),
    (3, "audit", include_str!("../../migrations/sqlite/0003_audit.sql")),
    (4, "access", include_str!("../../migrations/sqlite/0004_access.sql")),
    (5, "consent", include_str!("../../migrations/sqlite/0005_consent.sql")),
    (6, "dsr", include_str!("../../migrations/sqlite/0006_dsr.sql")),
    (
        7,
        "legal_holds",
        include_str!("../../migrations/sqlite/0007_legal_holds.sql"),
    ),
    (8, "outbox", include_str!("../../migrations/sqlite/0008_outbox.sql")),
    (
        9,
        "export_bundles",
        include_str!("../../migrations/sqlite/0009_export_bundles.sql"),
    ),
    (
        10,
        "audit_spool",
        include_str!("../../migrations/sqlite/0010_audit_spool.sql"),
    ),
    (
        11,
        "audit_subject_index",
        include_str!("../../migrations/sqlite/0011_audit_subject_index.sql"),
    ),
    (
        12,
        "pending_consents",
        include_str!("../../migrations/sqlite/0012_pending_consents.sql"),
    ),
];

pub fn run(conn: &mut Connection) -> StoreResult<()> {
    let err = |e: rusqlite::Error| StoreError::Backend(format!("migration failed: {e}"));
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(err)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .map_err(err)?;
    let current: i64 = tx
        .query_row("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .map_err(err)?;
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > latest {
        return Err(StoreError::Backend(format!(
            "the database schema (version {current}) is newer than this Steward (version {latest})"
        )));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.execute_batch(sql).map_err(err)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)",
            params![version, name, chrono::Utc::now().timestamp_micros()],
        )
        .map_err(err)?;
    }
    tx.commit().map_err(err)
}
