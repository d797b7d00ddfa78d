//! Throwaway PostgreSQL databases for tests.
//!
//! [`fresh_test_database`] creates an empty database named
//! `steward_test_<32 hex digits>` on the server of an admin URL (a role
//! allowed to `CREATE DATABASE`, e.g. the one in `STEWARD_TEST_DATABASE_URL`)
//! and returns a URL for it plus a [`TestDatabase`] guard that drops the
//! database again, forcibly disconnecting anything still connected.
//! Dropping is best-effort: failures are only logged.

use std::sync::Arc;

use super::{map_db_error, tls, PgStore};
use crate::{Store, StoreError, StoreResult};

/// Environment variable naming the admin URL the tests use.
pub const TEST_DATABASE_URL_VAR: &str = "STEWARD_TEST_DATABASE_URL";

/// The admin URL from [`TEST_DATABASE_URL_VAR`], if set and not empty.
#[must_use]
pub fn test_database_url() -> Option<String> {
    std::env::var(TEST_DATABASE_URL_VAR)
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// A database created by [`fresh_test_database`]; dropped (with
/// `WITH (FORCE)`) when this guard is dropped or [`TestDatabase::drop_now`]
/// is awaited.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
    dropped: bool,
}

impl TestDatabase {
    /// The URL of the new database.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The new database's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A subject-key vault file for this database (in the system's temp
    /// dir, removed with the database).
    #[must_use]
    pub fn vault_path(&self) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("{}.vault.db", self.name))
    }

    fn remove_vault(&self) {
        let path = self.vault_path();
        for suffix in ["", "-wal", "-shm"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
    }

    /// Drops the database now, from async code (preferred over relying on
    /// `Drop`, which has to run a small runtime on a helper thread).
    pub async fn drop_now(mut self) -> StoreResult<()> {
        self.dropped = true;
        self.remove_vault();
        drop_database(&self.admin_url, &self.name).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        self.dropped = true;
        self.remove_vault();
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // `Drop` cannot await, and blocking inside the caller's runtime is
        // not allowed, so a short-lived thread runs its own runtime.
        let worker = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot drop test database: no runtime");
                    return;
                }
            };
            if let Err(e) = runtime.block_on(drop_database(&admin_url, &name)) {
                tracing::warn!(database = %name, error = %e, "cannot drop test database");
            }
        });
        if worker.join().is_err() {
            tracing::warn!("the test-database cleanup thread failed");
        }
    }
}

/// A migrated [`PgStore`] on its own fresh database, which is dropped with
/// the fixture (fields drop in order: the store first, then the database).
pub struct PgFixture {
    store: Arc<dyn Store>,
    database: TestDatabase,
}

impl PgFixture {
    /// The store (shared; closing it is the caller's business).
    #[must_use]
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// The database under the store.
    #[must_use]
    pub fn database(&self) -> &TestDatabase {
        &self.database
    }
}

/// A [`PgFixture`] on the server named by [`TEST_DATABASE_URL_VAR`];
/// `Ok(None)` when that is unset (the test should skip), `Err` when it is
/// set but the database cannot be made or migrated (the test should fail).
///
/// For the conformance macro:
/// `all_conformance_tests!(async { fixture().await.expect("PostgreSQL fixture") })`.
pub async fn fixture() -> StoreResult<Option<PgFixture>> {
    let Some(admin) = test_database_url() else {
        return Ok(None);
    };
    let (url, database) = fresh_test_database(&admin).await?;
    let store = PgStore::connect(&url, &database.vault_path()).await?;
    Ok(Some(PgFixture {
        store: Arc::new(store),
        database,
    }))
}

/// Creates a fresh, empty database next to `admin_url`'s and returns its
/// URL and the guard that drops it.
pub async fn fresh_test_database(admin_url: &str) -> StoreResult<(String, TestDatabase)> {
    let name = format!("steward_test_{}", uuid::Uuid::now_v7().simple());
    let client = admin_client(admin_url).await?;
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(|e| map_db_error(&e))?;
    let url = with_database(admin_url, &name);
    let guard = TestDatabase {
        admin_url: admin_url.to_owned(),
        name,
        url: url.clone(),
        dropped: false,
    };
    Ok((url, guard))
}

async fn admin_client(admin_url: &str) -> StoreResult<tokio_postgres::Client> {
    connect_client(admin_url).await
}

/// One plain client connection to `url`, with the same `sslmode` handling
/// (see [`tls`]) as [`PgStore::connect`]; its connection task is spawned.
pub async fn connect_client(url: &str) -> StoreResult<tokio_postgres::Client> {
    let tls::ConnectSettings { config, tls } = tls::connect_settings(url)?;
    let (client, connection) = config.connect(tls).await.map_err(|e| map_db_error(&e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "test connection ended");
        }
    });
    Ok(client)
}

async fn drop_database(admin_url: &str, name: &str) -> StoreResult<()> {
    if !is_test_name(name) {
        return Err(StoreError::Backend("refusing to drop a non-test database".into()));
    }
    let client = admin_client(admin_url).await?;
    // FORCE fails when a backend the test role may not terminate is on the
    // database (an autovacuum worker, running as the superuser); a plain
    // DROP cancels autovacuum itself, so retry that for a moment.
    let mut result = client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
    for _ in 0..10 {
        if result.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        result = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await;
    }
    result.map_err(|e| map_db_error(&e))
}

/// Only names this module made (so they are safe to splice into SQL).
fn is_test_name(name: &str) -> bool {
    name.strip_prefix("steward_test_")
        .is_some_and(|hex| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `url` with its database name replaced by `database`.
///
/// Handles URLs (`postgres://user:pw@host:port/db?opts`, with or without a
/// path) and key-value strings (`host=… dbname=…`, where a trailing
/// `dbname` overrides an earlier one).
#[must_use]
pub fn with_database(url: &str, database: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return format!("{} dbname={database}", url.trim_end());
    };
    let after_scheme = scheme_end + 3;
    let rest = &url[after_scheme..];
    let authority_end = rest.find(['/', '?', '#']).map_or(url.len(), |i| after_scheme + i);
    let query_start = url[authority_end..]
        .find(['?', '#'])
        .map_or(url.len(), |i| authority_end + i);
    format!("{}/{database}{}", &url[..authority_end], &url[query_start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_name() {
        let cases = [
            ("postgres://u:p@h:5432/postgres", "postgres://u:p@h:5432/x"),
            (
                "postgres://u:p@h:5432/postgres?sslmode=disable",
                "postgres://u:p@h:5432/x?sslmode=disable",
            ),
            ("postgresql://h", "postgresql://h/x"),
            ("postgres://h/", "postgres://h/x"),
            ("postgres://h?application_name=a", "postgres://h/x?application_name=a"),
            (
                "host=h user=u dbname=postgres",
                "host=h user=u dbname=postgres dbname=x",
            ),
        ];
        for (from, to) in cases {
            assert_eq!(with_database(from, "x"), to, "{from}");
        }
    }

    #[test]
    fn only_test_names_are_dropped() {
        assert!(is_test_name("steward_test_0123abcdef"));
        assert!(!is_test_name("steward_test_"));
        assert!(!is_test_name("postgres"));
        assert!(!is_test_name("steward_test_x; DROP"));
    }
}
