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
    (
        13,
        "incidents",
        include_str!("../../migrations/sqlite/0013_incidents.sql"),
    ),
    (
        14,
        "retention",
        include_str!("../../migrations/sqlite/0014_retention.sql"),
    ),
    (
        15,
        "audit_facts",
        include_str!("../../migrations/sqlite/0015_audit_facts.sql"),
    ),
    (16, "scim", include_str!("../../migrations/sqlite/0016_scim.sql")),
    (17, "drp", include_str!("../../migrations/sqlite/0017_drp.sql")),
    (
        18,
        "audit_facts_table",
        include_str!("../../migrations/sqlite/0018_audit_facts_table.sql"),
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

/// Applies the migrations up to `version` only, as an older Steward left
/// the database (for tests of the migrations after it).
#[cfg(test)]
pub(crate) fn run_to(conn: &mut Connection, version: i64) -> StoreResult<()> {
    let err = |e: rusqlite::Error| StoreError::Backend(format!("migration failed: {e}"));
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .map_err(err)?;
    for (v, name, sql) in MIGRATIONS.iter().filter(|m| m.0 <= version) {
        conn.execute_batch(sql).map_err(err)?;
        conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, 0)",
            params![v, name],
        )
        .map_err(err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Migration 13 fills the token index with the entries already in the
    /// log below `indexed_upto` (those above it are the tail, which the
    /// writer's next merge adds to both indexes).
    #[test]
    fn the_token_index_starts_with_the_indexed_part_of_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = Connection::open(dir.path().join("steward.db")).expect("open");
        run_to(&mut conn, 12).expect("migrations up to 12");
        let (a, b) = ([1u8; 16], [2u8; 16]);
        let tokens: [Option<[u8; 16]>; 6] = [Some(b), None, Some(a), Some(b), Some(a), None];
        for (idx, token) in tokens.iter().enumerate() {
            conn.execute(
                "INSERT INTO audit_log (idx, entry, leaf_hash, at, actor_token, action) VALUES (?1, x'00', x'00', 0, ?2, 'x')",
                params![idx as i64, token],
            )
            .expect("entry");
        }
        conn.execute("UPDATE audit_index_state SET indexed_upto = 4 WHERE id = 1", [])
            .expect("indexed upto");
        run(&mut conn).expect("migrate");
        let mut stmt = conn
            .prepare("SELECT token_id, idx FROM audit_token_index ORDER BY token_id, idx")
            .expect("prepare");
        let indexed: Vec<(Vec<u8>, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect();
        assert_eq!(indexed, vec![(a.to_vec(), 2), (b.to_vec(), 0), (b.to_vec(), 3)]);
        let latest: i64 = conn
            .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| r.get(0))
            .expect("version");
        assert_eq!(latest, MIGRATIONS.last().map_or(0, |m| m.0));
    }
}
