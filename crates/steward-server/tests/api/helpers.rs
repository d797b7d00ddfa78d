//! `spawn_app`: a fresh data dir and database, the real router on
//! 127.0.0.1:0, and tokens for every built-in role.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use steward_service::{Config, Service};
use steward_store::postgres::testing::{fresh_test_database, test_database_url, TestDatabase};
use tokio::sync::oneshot;
use zeroize::Zeroizing;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub backend: Backend,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub service: Arc<Service>,
    /// How the service was opened (a second process opens the same state with it).
    pub config: Config,
    pub tokens: HashMap<&'static str, String>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pub _dir: tempfile::TempDir,
    pub _db: Option<TestDatabase>,
}

/// A raw row of the audit log table.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub idx: i64,
    pub entry: Vec<u8>,
    pub leaf: Vec<u8>,
    pub at: i64,
    pub subject: Option<uuid::Uuid>,
    pub user: Option<uuid::Uuid>,
    pub token: Option<uuid::Uuid>,
    pub action: String,
}

pub const ROLES: [&str; 6] = ["admin", "dpo", "sales", "support", "marketing", "auditor"];

pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

/// Starts an app on `backend`; `None` when that backend is not configured.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with_inventory(backend, None).await
}

/// Like [`spawn_app`], with the shipped inventory plus `extra` TOML (more
/// purposes, say) as the data dir's `inventory.toml`.
pub async fn spawn_app_with_inventory(backend: Backend, extra: Option<&str>) -> Option<TestApp> {
    let dir = tempfile::tempdir().unwrap();
    if let Some(extra) = extra {
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let toml = format!("{}\n{extra}\n", steward_domain::inventory::DEFAULT_INVENTORY_TOML);
        std::fs::write(dir.path().join("data").join("inventory.toml"), toml).unwrap();
    }
    let (database_url, db) = match backend {
        Backend::Sqlite => (None, None),
        Backend::Postgres => {
            let admin = test_database_url()?;
            let (url, guard) = fresh_test_database(&admin).await.expect("create test database");
            (Some(url), Some(guard))
        }
    };
    let config = Config {
        database_url,
        ..Config::new(dir.path().join("data"))
    };
    let service = Arc::new(Service::open(&config).await.expect("open service"));
    let mut tokens = HashMap::new();
    for role in ROLES {
        let name = format!("{role}-user");
        service
            .create_user(&name, role, Zeroizing::new(format!("{role}-password-long")))
            .await
            .expect("user");
        let token = service.create_api_token(&name, None, None).await.expect("token");
        tokens.insert(role, token.to_string());
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(steward_server::serve(listener, Arc::clone(&service), async {
        let _ = rx.await;
    }));
    Some(TestApp {
        backend,
        addr,
        client: reqwest::Client::new(),
        service,
        config,
        tokens,
        shutdown: Some(tx),
        server: Some(server),
        _dir: dir,
        _db: db,
    })
}

impl TestApp {
    /// The data dir (key files, and the SQLite database).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self._dir.path().join("data")
    }

    /// Reads a contact's raw sealed field blob straight from the database.
    pub async fn raw_fields(&self, id: &str) -> Vec<u8> {
        let uuid: uuid::Uuid = id.parse().unwrap();
        match self.backend {
            Backend::Sqlite => {
                let c = rusqlite::Connection::open(self.data_dir().join("steward.db")).unwrap();
                c.query_row(
                    "SELECT fields FROM contacts WHERE subject_id = ?1",
                    [uuid.as_bytes()],
                    |r| r.get(0),
                )
                .unwrap()
            }
            Backend::Postgres => {
                let client = self.pg_client().await;
                client
                    .query_one("SELECT fields FROM contacts WHERE subject_id = $1", &[&uuid])
                    .await
                    .unwrap()
                    .get(0)
            }
        }
    }

    /// The files that hold the subjects' wrapped data keys: the database
    /// and its WAL on SQLite, the subject-key vault and its WAL on
    /// PostgreSQL (which never holds them).
    pub fn key_files(&self) -> Vec<std::path::PathBuf> {
        let db = match self.backend {
            Backend::Sqlite => self.data_dir().join("steward.db"),
            Backend::Postgres => steward_service::keys::subject_key_vault(&self.data_dir()),
        };
        let mut wal = db.clone().into_os_string();
        wal.push("-wal");
        vec![db, wal.into()]
    }

    /// A subject's wrapped data key as stored, read behind the service's back.
    pub fn raw_wrapped_key(&self, id: &str) -> Option<Vec<u8>> {
        use rusqlite::OptionalExtension;
        let uuid: uuid::Uuid = id.parse().unwrap();
        let c = rusqlite::Connection::open(&self.key_files()[0]).unwrap();
        c.query_row(
            "SELECT wrapped FROM subject_keys WHERE subject_id = ?1",
            [uuid.as_bytes()],
            |r| r.get(0),
        )
        .optional()
        .unwrap()
    }

    /// Overwrites a contact's sealed field blob behind the service's back.
    pub async fn set_raw_fields(&self, id: &str, blob: &[u8]) {
        let uuid: uuid::Uuid = id.parse().unwrap();
        match self.backend {
            Backend::Sqlite => {
                let c = rusqlite::Connection::open(self.data_dir().join("steward.db")).unwrap();
                c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
                c.execute(
                    "UPDATE contacts SET fields = ?1 WHERE subject_id = ?2",
                    rusqlite::params![blob, uuid.as_bytes()],
                )
                .unwrap();
            }
            Backend::Postgres => {
                let client = self.pg_client().await;
                client
                    .execute("UPDATE contacts SET fields = $1 WHERE subject_id = $2", &[&blob, &uuid])
                    .await
                    .unwrap();
            }
        }
    }

    /// Every audit row: (idx, entry, leaf_hash, at, subject_id, actor_user, actor_token, action).
    pub async fn audit_rows(&self) -> Vec<AuditRow> {
        match self.backend {
            Backend::Sqlite => {
                let c = rusqlite::Connection::open(self.data_dir().join("steward.db")).unwrap();
                let mut stmt = c
                    .prepare("SELECT idx, entry, leaf_hash, at, subject_id, actor_user, actor_token, action FROM audit_log ORDER BY idx")
                    .unwrap();
                let rows = stmt
                    .query_map([], |r| {
                        let opt = |i: usize| -> rusqlite::Result<Option<uuid::Uuid>> {
                            Ok(r.get::<_, Option<Vec<u8>>>(i)?
                                .map(|b| uuid::Uuid::from_slice(&b).unwrap()))
                        };
                        Ok(AuditRow {
                            idx: r.get(0)?,
                            entry: r.get(1)?,
                            leaf: r.get(2)?,
                            at: r.get(3)?,
                            subject: opt(4)?,
                            user: opt(5)?,
                            token: opt(6)?,
                            action: r.get(7)?,
                        })
                    })
                    .unwrap();
                rows.map(Result::unwrap).collect()
            }
            Backend::Postgres => {
                let client = self.pg_client().await;
                client
                    .query("SELECT idx, entry, leaf_hash, at, subject_id, actor_user, actor_token, action FROM audit_log ORDER BY idx", &[])
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| AuditRow { idx: r.get(0), entry: r.get(1), leaf: r.get(2), at: r.get(3), subject: r.get(4), user: r.get(5), token: r.get(6), action: r.get(7) })
                    .collect()
            }
        }
    }

    /// Replaces the whole audit log table with `rows`, behind the service's back.
    pub async fn set_audit_rows(&self, rows: &[AuditRow]) {
        match self.backend {
            Backend::Sqlite => {
                let mut c = rusqlite::Connection::open(self.data_dir().join("steward.db")).unwrap();
                c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
                let tx = c.transaction().unwrap();
                tx.execute("DELETE FROM audit_log", []).unwrap();
                for r in rows {
                    let b = |u: &Option<uuid::Uuid>| u.map(|u| u.as_bytes().to_vec());
                    tx.execute(
                        "INSERT INTO audit_log (idx, entry, leaf_hash, at, subject_id, actor_user, actor_token, action) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        rusqlite::params![r.idx, r.entry, r.leaf, r.at, b(&r.subject), b(&r.user), b(&r.token), r.action],
                    )
                    .unwrap();
                }
                tx.commit().unwrap();
            }
            Backend::Postgres => {
                let mut client = self.pg_client().await;
                let tx = client.transaction().await.unwrap();
                tx.execute("DELETE FROM audit_log", &[]).await.unwrap();
                for r in rows {
                    tx.execute(
                        "INSERT INTO audit_log (idx, entry, leaf_hash, at, subject_id, actor_user, actor_token, action) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        &[&r.idx, &r.entry, &r.leaf, &r.at, &r.subject, &r.user, &r.token, &r.action],
                    )
                    .await
                    .unwrap();
                }
                tx.commit().await.unwrap();
            }
        }
    }

    /// Runs one statement behind the service's back (SQLite and PostgreSQL
    /// spellings; instants are microseconds since the epoch in both).
    pub async fn exec_sql(&self, sqlite: &str, postgres: &str) {
        match self.backend {
            Backend::Sqlite => {
                let c = rusqlite::Connection::open(self.data_dir().join("steward.db")).unwrap();
                c.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
                c.execute_batch(sqlite).unwrap();
            }
            Backend::Postgres => {
                self.pg_client().await.batch_execute(postgres).await.unwrap();
            }
        }
    }

    pub async fn pg_client(&self) -> tokio_postgres::Client {
        let url = self._db.as_ref().expect("a PostgreSQL test database").url().to_string();
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a request as `role` (None: no credentials) with an optional
    /// purpose header and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        role: Option<&str>,
        purpose: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let checked = method.to_string();
        let mut req = self.client.request(method, self.url(path));
        if let Some(role) = role {
            req = req.bearer_auth(&self.tokens[role]);
        }
        if let Some(p) = purpose {
            req = req.header("Steward-Purpose", p);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let r = Self::read(resp).await;
        // Every answer whose schema is derived from the handler's type (and
        // every problem) must match the OpenAPI document.
        let content_type = r
            .headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let bare = path.split('?').next().unwrap_or_default();
        if let Err(e) = crate::openapi::check_response(&checked, bare, r.status.as_u16(), content_type, &r.text) {
            panic!(
                "{checked} {bare} {}: the answer does not match the OpenAPI document: {e}",
                r.status
            );
        }
        r
    }

    pub async fn read(resp: reqwest::Response) -> Resp {
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, role: &str) -> Resp {
        self.call(Method::GET, path, Some(role), None, None).await
    }

    pub async fn post(&self, path: &str, role: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(role), None, Some(body)).await
    }

    /// Creates a contact as `role`, asserting 201; returns its id.
    pub async fn create_contact(&self, role: &str, body: Value) -> String {
        let r = self.post("/api/v1/contacts", role, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Stops the server gracefully and waits for it.
    /// The one-time code of the latest double opt-in mail queued to `to`.
    pub async fn mailed_consent_code(&self, to: &str) -> Option<String> {
        let mail = self.service.outbox(true).await.unwrap();
        let m = mail
            .iter()
            .rev()
            .find(|m| m.kind == "consent.confirmation" && m.message.to == to)?;
        let body = &m.message.body;
        let start = body.find("{\"token\": \"")? + "{\"token\": \"".len();
        let len = body[start..].find('"')?;
        Some(body[start..start + len].to_string())
    }

    /// `POST /api/v1/public/consents/confirm` with `code`.
    pub async fn confirm_consent(&self, code: &str) -> Resp {
        self.call(
            Method::POST,
            "/api/v1/public/consents/confirm",
            None,
            None,
            Some(serde_json::json!({ "token": code })),
        )
        .await
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.unwrap().unwrap();
        }
        if let Some(db) = self._db.take() {
            let _ = db.drop_now().await;
        }
    }
}

/// Asserts a problem+json response with `status`.
pub fn assert_problem(r: &Resp, status: u16) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "{}",
        r.text
    );
    for key in ["type", "title", "status", "detail"] {
        assert!(r.body.get(key).is_some(), "problem lacks {key}: {}", r.text);
    }
    assert_eq!(r.body["status"], status);
}

/// The field names of a validation problem.
pub fn error_fields(r: &Resp) -> Vec<String> {
    r.body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["field"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Generates one test per story per backend.
#[macro_export]
macro_rules! stories {
    ($($story:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await.expect("sqlite");
                    super::$story(&app).await;
                    app.stop().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $story() {
                    let Some(app) = $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await else {
                        eprintln!("skipped: STEWARD_TEST_DATABASE_URL is not set");
                        return;
                    };
                    super::$story(&app).await;
                    app.stop().await;
                }
            )*
        }
    };
}
