//! Embedded PostgreSQL migrations and their runner.
//!
//! Migrations are append-only: a landed file is never edited; a change is a
//! new entry with the next version. Applied versions are recorded in
//! `schema_migrations`. Each pending migration runs in its own transaction
//! holding a transaction-scoped advisory lock, and is re-checked under the
//! lock, so several processes starting at once apply each migration exactly
//! once. Running again with nothing pending changes nothing.

use chrono::Utc;
use deadpool_postgres::Transaction;

use super::map_db_error;
use crate::{to_micros, StoreError, StoreResult};

/// `(version, name, SQL)`, versions strictly increasing.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/postgres/0001_init.sql")),
    (2, "keys", include_str!("../../migrations/postgres/0002_keys.sql")),
    (3, "audit", include_str!("../../migrations/postgres/0003_audit.sql")),
    (4, "access", include_str!("../../migrations/postgres/0004_access.sql")),
    (5, "consent", include_str!("../../migrations/postgres/0005_consent.sql")),
    (6, "dsr", include_str!("../../migrations/postgres/0006_dsr.sql")),
    (
        7,
        "legal_holds",
        include_str!("../../migrations/postgres/0007_legal_holds.sql"),
    ),
    (8, "outbox", include_str!("../../migrations/postgres/0008_outbox.sql")),
    (
        9,
        "export_bundles",
        include_str!("../../migrations/postgres/0009_export_bundles.sql"),
    ),
    (
        10,
        "pending_consents",
        include_str!("../../migrations/postgres/0010_pending_consents.sql"),
    ),
    (
        11,
        "incidents",
        include_str!("../../migrations/postgres/0011_incidents.sql"),
    ),
    (
        12,
        "retention",
        include_str!("../../migrations/postgres/0012_retention.sql"),
    ),
    (
        13,
        "audit_facts",
        include_str!("../../migrations/postgres/0013_audit_facts.sql"),
    ),
    (14, "scim", include_str!("../../migrations/postgres/0014_scim.sql")),
    (15, "drp", include_str!("../../migrations/postgres/0015_drp.sql")),
];

/// Advisory lock key serialising migration runs ("STEWARD1" in ASCII).
const LOCK_KEY: i64 = 0x5354_4557_4152_4431;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

/// Applies every pending migration.
pub(super) async fn run(client: &mut deadpool_postgres::Client) -> StoreResult<()> {
    let fail = |what: &str, e: &tokio_postgres::Error| {
        StoreError::Backend(format!("{what}: {}", backend_message(map_db_error(e))))
    };

    // Create the bookkeeping table (under the lock: concurrent
    // CREATE TABLE IF NOT EXISTS can still collide) and read what is done.
    let applied: Vec<i64> = {
        let tx = client.transaction().await.map_err(|e| fail("migrations", &e))?;
        lock(&tx).await.map_err(|e| fail("migrations", &e))?;
        tx.batch_execute(CREATE_TABLE)
            .await
            .map_err(|e| fail("creating schema_migrations", &e))?;
        let rows = tx
            .query("SELECT version FROM schema_migrations ORDER BY version", &[])
            .await
            .map_err(|e| fail("reading schema_migrations", &e))?;
        tx.commit().await.map_err(|e| fail("migrations", &e))?;
        rows.iter()
            .map(|r| r.try_get::<_, i64>(0))
            .collect::<Result<_, _>>()
            .map_err(|_| StoreError::Corrupt("unreadable schema_migrations".into()))?
    };

    let newest_known = MIGRATIONS.last().map_or(0, |m| m.0);
    if let Some(&newest) = applied.last() {
        if newest > newest_known {
            tracing::warn!(
                database = newest,
                binary = newest_known,
                "the PostgreSQL schema is newer than this binary knows"
            );
        }
    }

    for &(version, name, sql) in MIGRATIONS {
        if applied.contains(&version) {
            continue;
        }
        let what = format!("migration {version} ({name})");
        let tx = client.transaction().await.map_err(|e| fail(&what, &e))?;
        lock(&tx).await.map_err(|e| fail(&what, &e))?;
        let done = tx
            .query_opt("SELECT 1 FROM schema_migrations WHERE version = $1", &[&version])
            .await
            .map_err(|e| fail(&what, &e))?
            .is_some();
        if done {
            // Another process applied it while we waited for the lock.
            tx.rollback().await.map_err(|e| fail(&what, &e))?;
            continue;
        }
        tx.batch_execute(sql).await.map_err(|e| fail(&what, &e))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            &[&version, &name, &to_micros(Utc::now())],
        )
        .await
        .map_err(|e| fail(&what, &e))?;
        tx.commit().await.map_err(|e| fail(&what, &e))?;
        tracing::info!(version, name, "applied PostgreSQL migration");
    }
    Ok(())
}

/// Waits for the migration lock; released when `tx` ends.
async fn lock(tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .map(|_| ())
}

fn backend_message(e: StoreError) -> String {
    match e {
        StoreError::Backend(m) | StoreError::Corrupt(m) => m,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    #[test]
    fn versions_strictly_increase() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(MIGRATIONS.first().is_some_and(|m| m.0 == 1));
    }
}
