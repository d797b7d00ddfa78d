//! Runs the storage conformance suite against every backend.

use std::sync::Arc;

use steward_store::Store;

mod sqlite {
    use super::*;

    struct Fixture {
        store: Arc<dyn Store>,
        _dir: tempfile::TempDir,
    }
    impl Fixture {
        fn store(&self) -> Arc<dyn Store> {
            Arc::clone(&self.store)
        }
    }

    async fn setup() -> Option<Fixture> {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = steward_store::sqlite::SqliteStore::open(&dir.path().join("steward.db"))
            .await
            .expect("open sqlite");
        Some(Fixture {
            store: Arc::new(store),
            _dir: dir,
        })
    }

    steward_store::all_conformance_tests!(setup());
}

mod postgres {
    use super::*;
    use steward_store::postgres::testing::{fresh_test_database, test_database_url, TestDatabase};

    struct Fixture {
        store: Arc<dyn Store>,
        _db: TestDatabase,
    }
    impl Fixture {
        fn store(&self) -> Arc<dyn Store> {
            Arc::clone(&self.store)
        }
    }

    async fn setup() -> Option<Fixture> {
        let admin = test_database_url()?;
        let (url, db) = fresh_test_database(&admin).await.expect("create test database");
        let store = steward_store::postgres::PgStore::connect(&url, &db.vault_path())
            .await
            .expect("connect postgres");
        Some(Fixture {
            store: Arc::new(store),
            _db: db,
        })
    }

    steward_store::all_conformance_tests!(setup());
}
