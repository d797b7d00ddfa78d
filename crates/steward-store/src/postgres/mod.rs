//! PostgreSQL backend: [`PgStore`], the [`Store`] implementation over
//! tokio-postgres with a deadpool connection pool.
//!
//! This module owns:
//! - connecting (URL parsing, pool sizing, timeouts, and TLS from the URL's
//!   `sslmode` and `sslrootcert` as libpq reads them: see [`tls`]),
//! - the embedded PostgreSQL migrations and their runner (`migrate`),
//! - group commit for writes (`writer`): a few writer tasks each take every
//!   queued batch (up to a bound), run them in one transaction with one
//!   savepoint per batch, commit once and answer every batch,
//! - reads, which go straight to the pool and never wait for the writers,
//! - the subjects' data keys, which live in the [`KeyVault`] in the data
//!   dir, not in PostgreSQL (see [`crate::vault`] for why),
//! - mapping PostgreSQL errors to [`StoreError`] without ever copying row
//!   values (PostgreSQL's `DETAIL` lines quote them) into messages,
//! - [`testing`]: throwaway databases for tests.
//!
//! Column semantics mirror the SQLite backend exactly: ids are UUIDv7
//! (PostgreSQL compares `uuid` bytewise, as SQLite compares 16-byte blobs,
//! so `ORDER BY id` agrees), instants are microseconds since the Unix epoch
//! in `BIGINT`, purposes are joined with `,`, sealed fields are one
//! [`crate::fields`] blob, and text is ordered bytewise (`COLLATE "C"`, as
//! SQLite's `BINARY`) whatever the database's collation.

mod migrate;
mod scim;
pub mod testing;
pub mod tls;
mod writer;

use crate::{AuditVisit, ScanRow};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use steward_domain::values::{Amount, CurrencyCode};
use steward_domain::{
    Deal, DealId, DealStage, InteractionId, InteractionKind, Organization, OrganizationId, SubjectId, TokenId, UserId,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::Row;
use uuid::Uuid;

use steward_audit::{Hash as AuditHash, SignedTreeHead};

use crate::vault::{KeyChanges, KeyVault};
use crate::{
    failures_from_db, fields, from_micros, step_from_db, to_micros, AuditFilter, ContactRow, CredentialRow,
    InteractionRow, Store, StoreError, StoreResult, StoredAuditEntry, StoredKey, TokenKind, TokenRow, TrainingRow,
    UserRow, WriteOp, MAX_PAGE,
};

/// Connections in the pool: the writer tasks take one each while a group
/// commits; the rest serve reads.
const POOL_SIZE: usize = 16;
/// How long a caller waits for a free pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(30);
/// Connect timeout used when the URL does not set `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The message every call gets once [`Store::close`] has run.
const CLOSED: &str = "the store is closed";

/// A [`Store`] on PostgreSQL.
///
/// Invariants: the schema is migrated before a `PgStore` exists; every
/// write goes through the group-commit writer; after [`Store::close`] all
/// calls fail with [`StoreError::Backend`]`("the store is closed")`.
pub struct PgStore {
    pool: Pool,
    writer: writer::Writer,
    vault: Arc<KeyVault>,
    /// Bumped by the access listener (see [`listen_for_access`]).
    access: Arc<AtomicU64>,
    listener: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The channel on which commits that change access notify every process.
pub(crate) const ACCESS_CHANNEL: &str = "steward_access";

/// Keeps one connection that `LISTEN`s on [`ACCESS_CHANNEL`] and bumps
/// `epoch` on every notification — and whenever the connection is lost or
/// re-established, since a change may have been missed meanwhile — so that
/// caches of access decisions (tokens, settings, training) in this process
/// are dropped as soon as any process commits such a change.
async fn listen_for_access(
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    epoch: Arc<AtomicU64>,
) {
    loop {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let bump = Arc::clone(&epoch);
                let driver = tokio::spawn(async move {
                    loop {
                        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                                bump.fetch_add(1, Ordering::AcqRel);
                            }
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => break,
                        }
                    }
                });
                if client.batch_execute(&format!("LISTEN {ACCESS_CHANNEL}")).await.is_ok() {
                    epoch.fetch_add(1, Ordering::AcqRel);
                    let _ = driver.await;
                } else {
                    driver.abort();
                }
                drop(client);
                epoch.fetch_add(1, Ordering::AcqRel);
                tracing::debug!("the access listener's connection ended; reconnecting");
            }
            Err(e) => tracing::debug!(error = %map_db_error(&e), "the access listener cannot connect yet"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl PgStore {
    /// Connects to the database named by `url` (`postgres://…` or a
    /// key-value connection string), checks that it answers, applies pending
    /// migrations, opens the subject-key vault at `vault` (moving into it any
    /// key an earlier version kept in PostgreSQL) and starts the group-commit
    /// writer tasks.
    ///
    /// Must be called inside a Tokio runtime.
    pub async fn connect(url: &str, vault: &Path) -> StoreResult<Self> {
        let tls::ConnectSettings { mut config, tls } = tls::connect_settings(url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("steward");
        }
        let listen_with = (config.clone(), tls.clone());
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Backend(format!("cannot build the connection pool: {e}")))?;
        {
            let mut client = pool.get().await.map_err(|e| match pool_error(e) {
                StoreError::Backend(m) => StoreError::Backend(format!(
                    "cannot connect to PostgreSQL: {}",
                    m.strip_prefix("PostgreSQL: ").unwrap_or(&m)
                )),
                other => other,
            })?;
            client.simple_query("SELECT 1").await.map_err(|e| map_db_error(&e))?;
            migrate::run(&mut client).await?;
        }
        let vault_path = vault.to_path_buf();
        let vault = Arc::new(
            tokio::task::spawn_blocking(move || KeyVault::open(&vault_path))
                .await
                .map_err(|e| StoreError::Backend(format!("subject-key vault: {e}")))??,
        );
        {
            let client = pool.get().await.map_err(pool_error)?;
            move_keys_to_vault(&client, &vault).await?;
            destroy_orphan_keys(&client, &vault).await?;
        }
        let writer = writer::Writer::start(pool.clone());
        let access = Arc::new(AtomicU64::new(0));
        let listener = tokio::spawn(listen_for_access(listen_with.0, listen_with.1, Arc::clone(&access)));
        Ok(Self {
            pool,
            writer,
            vault,
            access,
            listener: Mutex::new(Some(listener)),
        })
    }

    /// Fills in each row's wrapped key from the vault.
    fn with_keys(&self, mut rows: Vec<ContactRow>) -> StoreResult<Vec<ContactRow>> {
        let ids: Vec<SubjectId> = rows.iter().map(|r| r.subject_id).collect();
        for (row, key) in rows.iter_mut().zip(self.vault.get_many(&ids)?) {
            row.key = key;
        }
        Ok(rows)
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Client> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Runs a cached prepared statement on a pooled connection.
    async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Vec<Row>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(|e| map_db_error(&e))?;
        client.query(&stmt, params).await.map_err(|e| map_db_error(&e))
    }

    async fn query_opt(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Option<Row>> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await.map_err(|e| map_db_error(&e))?;
        client.query_opt(&stmt, params).await.map_err(|e| map_db_error(&e))
    }

    async fn count(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<u64> {
        let rows = self.query(sql, params).await?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::Backend("count returned no row".into()))?;
        let n: i64 = col(row, 0)?;
        u64::try_from(n).map_err(|_| StoreError::Corrupt("negative count".into()))
    }

    /// A paged list: `first_sql` for the first page, `after_sql` (with the
    /// cursor as `$1`) for later ones; the page size is the last parameter.
    async fn page(
        &self,
        first_sql: &str,
        after_sql: &str,
        leading: &[&(dyn ToSql + Sync)],
        after: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<Row>> {
        let limit = page_size(limit);
        let mut params: Vec<&(dyn ToSql + Sync)> = leading.to_vec();
        match after {
            Some(ref cursor) => {
                params.push(cursor);
                params.push(&limit);
                self.query(after_sql, &params).await
            }
            None => {
                params.push(&limit);
                self.query(first_sql, &params).await
            }
        }
    }
}

const CONTACT_COLS: &str = "c.subject_id, c.purposes, c.fields, c.created_at, c.updated_at, c.version, \
     k.master_key_id, k.key_version, k.wrapped, c.restricted, c.consented";
/// Every contact read carries its wrapped data key.
const KEY_JOIN: &str = "LEFT JOIN subject_keys k ON k.subject_id = c.subject_id";
const CONTACT_FROM: &str = "contacts c LEFT JOIN subject_keys k ON k.subject_id = c.subject_id";
const ORG_COLS: &str = "id, name, domain, created_at, updated_at";
const DEAL_COLS: &str = "id, title, stage, amount_minor, currency, organization_id, subject_id, created_at, updated_at";
const INTERACTION_COLS: &str = "id, subject_id, kind, occurred_at, created_at, summary";
const USER_COLS: &str =
    "u.id, u.username, u.role, u.password_hash, u.disabled, u.created_at, u.failed_logins, u.locked_until";
const TOKEN_COLS: &str =
    "t.id, t.user_id, t.kind, t.name, t.hash, t.created_at, t.expires_at, t.revoked_at, t.last_used_at, t.purpose, t.mfa";
/// How many columns [`TOKEN_COLS`] has (the user's start after them).
const TOKEN_COL_COUNT: usize = 11;
const CREDENTIAL_COLS: &str = "id, user_id, kind, secret, confirmed, last_step, created_at";
const TRAINING_COLS: &str = "id, user_id, course, completed_on, expires_on, created_at";

/// SQL text is built once per process from the column lists above.
macro_rules! sql {
    ($($part:expr),+ $(,)?) => {{
        static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        SQL.get_or_init(|| [$($part),+].concat()).as_str()
    }};
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn write(&self, ops: Vec<WriteOp>) -> StoreResult<()> {
        let changes = KeyChanges::of(&ops);
        if changes.is_empty() {
            return self.writer.submit(ops).await;
        }
        // Keys to store or rewrap go in first (a failed transaction takes
        // new ones back); keys to destroy go only once the transaction that
        // deletes or shreds the subject (with its legal-hold check and
        // audit entry) has committed.
        let changes = Arc::new(changes);
        if !changes.needs_prepare() {
            // Only keys to destroy (a deleted contact): after the commit.
            self.writer.submit(ops).await?;
            return self.vault.finish(&changes).await;
        }
        // The vault's fsynced commit runs side by side with the job's
        // statements; the job commits only once it has succeeded.
        let (done, gate) = tokio::sync::watch::channel(None);
        let vault = Arc::clone(&self.vault);
        let c = Arc::clone(&changes);
        tokio::spawn(async move {
            let r = vault.prepare(c, to_micros(chrono::Utc::now())).await;
            let _ = done.send(Some(r));
        });
        if let Err(e) = self.writer.submit_gated(ops, Some(gate.clone())).await {
            // Take back what the vault stored, once it has finished.
            if writer::passed(&gate).await.is_ok() {
                self.vault.undo(&changes).await;
            }
            return Err(e);
        }
        self.vault.finish(&changes).await
    }

    async fn get_contact(&self, id: SubjectId) -> StoreResult<Option<ContactRow>> {
        let sql = sql!(
            "SELECT ",
            CONTACT_COLS,
            " FROM ",
            CONTACT_FROM,
            " WHERE c.subject_id = $1"
        );
        let row = self
            .query_opt(sql, &[id.as_uuid()])
            .await?
            .map(|r| contact_from_row(&r))
            .transpose()?;
        Ok(self.with_keys(row.into_iter().collect())?.pop())
    }

    async fn list_contacts(&self, after: Option<SubjectId>, limit: u32) -> StoreResult<Vec<ContactRow>> {
        let first = sql!(
            "SELECT ",
            CONTACT_COLS,
            " FROM ",
            CONTACT_FROM,
            " ORDER BY c.subject_id LIMIT $1"
        );
        let next = sql!(
            "SELECT ",
            CONTACT_COLS,
            " FROM ",
            CONTACT_FROM,
            " WHERE c.subject_id > $1 ORDER BY c.subject_id LIMIT $2"
        );
        let rows = self.page(first, next, &[], after.map(|a| *a.as_uuid()), limit).await?;
        self.with_keys(rows.iter().map(contact_from_row).collect::<StoreResult<_>>()?)
    }

    async fn find_contacts_by_term(
        &self,
        term: &[u8],
        after: Option<SubjectId>,
        limit: u32,
    ) -> StoreResult<Vec<ContactRow>> {
        let first = sql!(
            "SELECT ",
            CONTACT_COLS,
            " FROM contact_terms t JOIN contacts c ON c.subject_id = t.subject_id ",
            KEY_JOIN,
            " WHERE t.term = $1 ORDER BY t.subject_id LIMIT $2"
        );
        let next = sql!(
            "SELECT ",
            CONTACT_COLS,
            " FROM contact_terms t JOIN contacts c ON c.subject_id = t.subject_id ",
            KEY_JOIN,
            " WHERE t.term = $1 AND t.subject_id > $2 ORDER BY t.subject_id LIMIT $3"
        );
        let rows = self
            .page(first, next, &[&term], after.map(|a| *a.as_uuid()), limit)
            .await?;
        self.with_keys(rows.iter().map(contact_from_row).collect::<StoreResult<_>>()?)
    }

    async fn count_contacts(&self) -> StoreResult<u64> {
        self.count("SELECT count(*) FROM contacts", &[]).await
    }

    async fn get_organization(&self, id: OrganizationId) -> StoreResult<Option<Organization>> {
        let sql = sql!("SELECT ", ORG_COLS, " FROM organizations WHERE id = $1");
        self.query_opt(sql, &[id.as_uuid()])
            .await?
            .map(|r| organization_from_row(&r))
            .transpose()
    }

    async fn list_organizations(&self, after: Option<OrganizationId>, limit: u32) -> StoreResult<Vec<Organization>> {
        let first = sql!("SELECT ", ORG_COLS, " FROM organizations ORDER BY id LIMIT $1");
        let next = sql!(
            "SELECT ",
            ORG_COLS,
            " FROM organizations WHERE id > $1 ORDER BY id LIMIT $2"
        );
        let rows = self.page(first, next, &[], after.map(|a| *a.as_uuid()), limit).await?;
        rows.iter().map(organization_from_row).collect()
    }

    async fn get_deal(&self, id: DealId) -> StoreResult<Option<Deal>> {
        let sql = sql!("SELECT ", DEAL_COLS, " FROM deals WHERE id = $1");
        self.query_opt(sql, &[id.as_uuid()])
            .await?
            .map(|r| deal_from_row(&r))
            .transpose()
    }

    async fn list_deals(&self, after: Option<DealId>, limit: u32) -> StoreResult<Vec<Deal>> {
        let first = sql!("SELECT ", DEAL_COLS, " FROM deals ORDER BY id LIMIT $1");
        let next = sql!("SELECT ", DEAL_COLS, " FROM deals WHERE id > $1 ORDER BY id LIMIT $2");
        let rows = self.page(first, next, &[], after.map(|a| *a.as_uuid()), limit).await?;
        rows.iter().map(deal_from_row).collect()
    }

    async fn deals_of_subject(&self, subject: SubjectId) -> StoreResult<Vec<Deal>> {
        let sql = sql!("SELECT ", DEAL_COLS, " FROM deals WHERE subject_id = $1 ORDER BY id");
        let rows = self.query(sql, &[subject.as_uuid()]).await?;
        rows.iter().map(deal_from_row).collect()
    }

    async fn list_interactions(
        &self,
        subject: SubjectId,
        after: Option<InteractionId>,
        limit: u32,
    ) -> StoreResult<Vec<InteractionRow>> {
        let first = sql!(
            "SELECT ",
            INTERACTION_COLS,
            " FROM interactions WHERE subject_id = $1 ORDER BY id LIMIT $2"
        );
        let next = sql!(
            "SELECT ",
            INTERACTION_COLS,
            " FROM interactions WHERE subject_id = $1 AND id > $2 ORDER BY id LIMIT $3"
        );
        let rows = self
            .page(first, next, &[subject.as_uuid()], after.map(|a| *a.as_uuid()), limit)
            .await?;
        rows.iter().map(interaction_from_row).collect()
    }

    async fn get_user(&self, id: UserId) -> StoreResult<Option<UserRow>> {
        let sql = sql!("SELECT ", USER_COLS, " FROM users u WHERE u.id = $1");
        self.query_opt(sql, &[id.as_uuid()])
            .await?
            .map(|r| user_from_row(&r, 0))
            .transpose()
    }

    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<UserRow>> {
        let sql = sql!("SELECT ", USER_COLS, " FROM users u WHERE u.username = $1");
        self.query_opt(sql, &[&username])
            .await?
            .map(|r| user_from_row(&r, 0))
            .transpose()
    }

    async fn count_users(&self) -> StoreResult<u64> {
        self.count("SELECT count(*) FROM users", &[]).await
    }

    async fn get_token_by_hash(&self, hash: &[u8]) -> StoreResult<Option<(TokenRow, UserRow)>> {
        let sql = sql!(
            "SELECT ",
            TOKEN_COLS,
            ", ",
            USER_COLS,
            " FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = $1"
        );
        let Some(row) = self.query_opt(sql, &[&hash]).await? else {
            return Ok(None);
        };
        Ok(Some((token_from_row(&row)?, user_from_row(&row, TOKEN_COL_COUNT)?)))
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRow>> {
        // "C": bytewise, as SQLite's BINARY, whatever the database collation.
        let sql = sql!("SELECT ", USER_COLS, " FROM users u ORDER BY u.username COLLATE \"C\"");
        let rows = self.query(sql, &[]).await?;
        rows.iter().map(|r| user_from_row(r, 0)).collect()
    }

    async fn list_tokens(&self, user: UserId) -> StoreResult<Vec<TokenRow>> {
        let sql = sql!(
            "SELECT ",
            TOKEN_COLS,
            " FROM tokens t WHERE t.user_id = $1 ORDER BY t.id"
        );
        let rows = self.query(sql, &[user.as_uuid()]).await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn get_credentials(&self, user: UserId) -> StoreResult<Vec<CredentialRow>> {
        let sql = sql!(
            "SELECT ",
            CREDENTIAL_COLS,
            " FROM credentials WHERE user_id = $1 ORDER BY id"
        );
        let rows = self.query(sql, &[user.as_uuid()]).await?;
        rows.iter().map(credential_from_row).collect()
    }

    async fn count_unused_recovery_codes(&self, user: UserId) -> StoreResult<u64> {
        self.count(
            "SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
            &[user.as_uuid()],
        )
        .await
    }

    async fn get_scim_token_by_hash(&self, hash: &[u8]) -> StoreResult<Option<crate::ScimTokenRow>> {
        self.scim_token_by_hash(hash).await
    }

    async fn list_scim_tokens(&self) -> StoreResult<Vec<crate::ScimTokenRow>> {
        self.scim_tokens().await
    }

    async fn get_scim_user(&self, user: UserId) -> StoreResult<Option<crate::ScimUserRow>> {
        self.scim_user(user).await
    }

    async fn find_scim_user_by_external_id(&self, hash: &[u8]) -> StoreResult<Option<crate::ScimUserRow>> {
        self.scim_user_by_external_id(hash).await
    }

    async fn list_scim_users(&self) -> StoreResult<Vec<crate::ScimUserRow>> {
        self.scim_users().await
    }

    async fn list_training(&self, user: Option<UserId>) -> StoreResult<Vec<TrainingRow>> {
        let rows = match user {
            Some(u) => {
                let sql = sql!(
                    "SELECT ",
                    TRAINING_COLS,
                    " FROM training_records WHERE user_id = $1 ORDER BY id"
                );
                self.query(sql, &[u.as_uuid()]).await?
            }
            None => {
                let sql = sql!("SELECT ", TRAINING_COLS, " FROM training_records ORDER BY id");
                self.query(sql, &[]).await?
            }
        };
        rows.iter().map(training_from_row).collect()
    }

    async fn get_dsr(&self, id: uuid::Uuid) -> StoreResult<Option<crate::DsrRow>> {
        self.query_opt(&format!("SELECT {DSR_COLS} FROM dsr WHERE id = $1"), &[&id])
            .await?
            .map(|r| dsr_from_row(&r))
            .transpose()
    }

    async fn list_dsr(&self, open_only: bool) -> StoreResult<Vec<crate::DsrRow>> {
        let filter = if open_only {
            "WHERE status NOT IN ('completed', 'refused', 'withdrawn')"
        } else {
            ""
        };
        let rows = self
            .query(&format!("SELECT {DSR_COLS} FROM dsr {filter} ORDER BY due_at, id"), &[])
            .await?;
        rows.iter().map(dsr_from_row).collect()
    }

    async fn legal_holds(&self, subject: SubjectId) -> StoreResult<Vec<crate::LegalHoldRow>> {
        let rows = self
            .query(
                "SELECT id, subject_id, reason, created_by, created_at, released_at, released_by FROM legal_holds \
                 WHERE subject_id = $1 ORDER BY created_at, id",
                &[subject.as_uuid()],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::LegalHoldRow {
                    id: col(r, 0)?,
                    subject_id: SubjectId::from_uuid(col(r, 1)?),
                    reason: col(r, 2)?,
                    created_by: col::<Option<uuid::Uuid>>(r, 3)?.map(UserId::from_uuid),
                    created_at: time(r, 4)?,
                    released_at: col::<Option<i64>>(r, 5)?.map(from_micros).transpose()?,
                    released_by: col::<Option<uuid::Uuid>>(r, 6)?.map(UserId::from_uuid),
                })
            })
            .collect()
    }

    async fn get_export_bundle(&self, id: uuid::Uuid) -> StoreResult<Option<crate::ExportBundleRow>> {
        self.query_opt(
            "SELECT dsr_id, subject_id, sealed, created_at, expires_at FROM export_bundles WHERE dsr_id = $1",
            &[&id],
        )
        .await?
        .map(|r| {
            Ok(crate::ExportBundleRow {
                dsr_id: col(&r, 0)?,
                subject_id: SubjectId::from_uuid(col(&r, 1)?),
                sealed: col(&r, 2)?,
                created_at: time(&r, 3)?,
                expires_at: time(&r, 4)?,
            })
        })
        .transpose()
    }

    async fn list_outbox(&self, unsent_only: bool) -> StoreResult<Vec<crate::OutboxRow>> {
        let filter = if unsent_only { "WHERE sent_at IS NULL" } else { "" };
        let rows = self
            .query(
                &format!("SELECT id, kind, message, created_at, sent_at FROM outbox {filter} ORDER BY created_at, id"),
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::OutboxRow {
                    id: col(r, 0)?,
                    kind: col(r, 1)?,
                    message: col(r, 2)?,
                    created_at: time(r, 3)?,
                    sent_at: col::<Option<i64>>(r, 4)?.map(from_micros).transpose()?,
                })
            })
            .collect()
    }

    async fn get_dsr_verification(&self, hash: &[u8]) -> StoreResult<Option<crate::DsrVerificationRow>> {
        self.query_opt(
            "SELECT token_hash, dsr_id, expires_at, used_at FROM dsr_verifications WHERE token_hash = $1",
            &[&hash],
        )
        .await?
        .map(|r| {
            Ok(crate::DsrVerificationRow {
                token_hash: col(&r, 0)?,
                dsr_id: col(&r, 1)?,
                expires_at: time(&r, 2)?,
                used_at: col::<Option<i64>>(&r, 3)?.map(from_micros).transpose()?,
            })
        })
        .transpose()
    }

    async fn get_drp_agent(&self, id: &str) -> StoreResult<Option<crate::DrpAgentRow>> {
        self.query_opt(
            &format!("SELECT {DRP_AGENT_COLS} FROM drp_agents WHERE id = $1"),
            &[&id],
        )
        .await?
        .map(|r| drp_agent_from_row(&r))
        .transpose()
    }

    async fn drp_agent_by_token(&self, hash: &[u8]) -> StoreResult<Option<crate::DrpAgentRow>> {
        self.query_opt(
            &format!("SELECT {DRP_AGENT_COLS} FROM drp_agents WHERE token_hash = $1"),
            &[&hash],
        )
        .await?
        .map(|r| drp_agent_from_row(&r))
        .transpose()
    }

    async fn list_drp_agents(&self) -> StoreResult<Vec<crate::DrpAgentRow>> {
        self.query(
            &format!("SELECT {DRP_AGENT_COLS} FROM drp_agents ORDER BY id COLLATE \"C\""),
            &[],
        )
        .await?
        .iter()
        .map(drp_agent_from_row)
        .collect()
    }

    async fn get_drp_request(&self, id: uuid::Uuid) -> StoreResult<Option<crate::DrpRequestRow>> {
        self.query_opt(
            "SELECT dsr_id, agent_id, exercise, agent_request_id, attested, created_at FROM drp_requests WHERE dsr_id = $1",
            &[&id],
        )
        .await?
        .map(|r| {
            Ok(crate::DrpRequestRow {
                dsr_id: col(&r, 0)?,
                agent_id: col(&r, 1)?,
                exercise: col(&r, 2)?,
                agent_request_id: col(&r, 3)?,
                attested: crate::split_list(&col::<String>(&r, 4)?),
                created_at: time(&r, 5)?,
            })
        })
        .transpose()
    }

    async fn get_pending_consent(&self, hash: &[u8]) -> StoreResult<Option<crate::PendingConsentRow>> {
        self.query_opt(
            "SELECT token_hash, id, sealed, created_at, expires_at, used_at FROM pending_consents WHERE token_hash = $1",
            &[&hash],
        )
        .await?
        .map(|r| {
            Ok(crate::PendingConsentRow {
                token_hash: col(&r, 0)?,
                id: col(&r, 1)?,
                sealed: col(&r, 2)?,
                created_at: time(&r, 3)?,
                expires_at: time(&r, 4)?,
                used_at: col::<Option<i64>>(&r, 5)?.map(from_micros).transpose()?,
            })
        })
        .transpose()
    }

    async fn get_incident(&self, id: uuid::Uuid) -> StoreResult<Option<crate::IncidentRow>> {
        self.query_opt(sql!("SELECT ", INCIDENT_COLS, " FROM incidents WHERE id = $1"), &[&id])
            .await?
            .map(|r| incident_from_row(&r))
            .transpose()
    }

    async fn list_incidents(&self) -> StoreResult<Vec<crate::IncidentRow>> {
        let rows = self
            .query(
                sql!(
                    "SELECT ",
                    INCIDENT_COLS,
                    " FROM incidents ORDER BY created_at DESC, id DESC"
                ),
                &[],
            )
            .await?;
        rows.iter().map(incident_from_row).collect()
    }

    async fn incident_entries(&self, incident_id: uuid::Uuid) -> StoreResult<Vec<crate::IncidentEntryRow>> {
        let rows = self
            .query(
                "SELECT id, incident_id, kind, at, sealed FROM incident_entries WHERE incident_id = $1 ORDER BY id",
                &[&incident_id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::IncidentEntryRow {
                    id: col(r, 0)?,
                    incident_id: col(r, 1)?,
                    kind: col(r, 2)?,
                    at: time(r, 3)?,
                    sealed: col(r, 4)?,
                })
            })
            .collect()
    }

    async fn erasure_proof(&self, hash: &[u8]) -> StoreResult<Option<(uuid::Uuid, chrono::DateTime<chrono::Utc>)>> {
        self.query_opt(
            "SELECT request_id, erased_at FROM erasure_proofs WHERE identifier_hash = $1",
            &[&hash],
        )
        .await?
        .map(|r| Ok((col(&r, 0)?, time(&r, 1)?)))
        .transpose()
    }

    async fn list_notices(&self) -> StoreResult<Vec<crate::NoticeRow>> {
        let rows = self
            .query(
                "SELECT id, version, language, text, text_hash, material, published_at FROM notices ORDER BY published_at, id",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::NoticeRow {
                    id: col(r, 0)?,
                    version: col(r, 1)?,
                    language: col(r, 2)?,
                    text: col(r, 3)?,
                    text_hash: col(r, 4)?,
                    material: col(r, 5)?,
                    published_at: time(r, 6)?,
                })
            })
            .collect()
    }

    async fn list_consents(&self, subject: SubjectId) -> StoreResult<Vec<crate::ConsentRow>> {
        let rows = self
            .query(
                &format!("SELECT {CONSENT_COLS} FROM consents WHERE subject_id = $1 ORDER BY id"),
                &[subject.as_uuid()],
            )
            .await?;
        rows.iter().map(consent_from_row).collect()
    }

    async fn find_consent_by_confirmation(&self, hash: &[u8]) -> StoreResult<Option<crate::ConsentRow>> {
        self.query_opt(
            &format!("SELECT {CONSENT_COLS} FROM consents WHERE confirmation_hash = $1"),
            &[&hash],
        )
        .await?
        .map(|r| consent_from_row(&r))
        .transpose()
    }

    async fn consent_summaries(&self) -> StoreResult<Vec<crate::ConsentSummary>> {
        let rows = self
            .query(
                "SELECT subject_id, purpose, status, notice_version, recorded_at FROM consents ORDER BY id",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::ConsentSummary {
                    subject_id: SubjectId::from_uuid(col(r, 0)?),
                    purpose: col(r, 1)?,
                    status: col(r, 2)?,
                    notice_version: col(r, 3)?,
                    recorded_at: time(r, 4)?,
                })
            })
            .collect()
    }

    async fn retention_facts(
        &self,
        after: Option<SubjectId>,
        limit: u32,
    ) -> StoreResult<Vec<crate::retention::RetentionFactsRow>> {
        let lo = after.map_or(Uuid::nil(), |a| *a.as_uuid());
        let rows = self
            .query(
                "SELECT c.subject_id, c.purposes, c.created_at, c.updated_at, \
                 EXISTS (SELECT 1 FROM legal_holds h WHERE h.subject_id = c.subject_id AND h.released_at IS NULL) \
                 FROM contacts c WHERE c.subject_id > $1 ORDER BY c.subject_id LIMIT $2",
                &[&lo, &page_size(limit)],
            )
            .await?;
        let rows = rows
            .iter()
            .map(|r| {
                Ok(crate::retention::RetentionFactsRow {
                    subject_id: SubjectId::from_uuid(col(r, 0)?),
                    purposes: split_purposes(col(r, 1)?),
                    created_at: time(r, 2)?,
                    updated_at: time(r, 3)?,
                    last_interaction: None,
                    open_deal: false,
                    last_deal_closed: None,
                    latest_consents: Vec::new(),
                    held: col(r, 4)?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let Some(hi) = rows.last().map(|r| *r.subject_id.as_uuid()) else {
            return Ok(rows);
        };
        let mut facts = crate::retention::FactsPage::new(rows);
        for r in self
            .query(
                "SELECT subject_id, max(GREATEST(occurred_at, created_at)) FROM interactions \
                 WHERE subject_id > $1 AND subject_id <= $2 GROUP BY subject_id",
                &[&lo, &hi],
            )
            .await?
        {
            facts.interaction(SubjectId::from_uuid(col(&r, 0)?), time(&r, 1)?);
        }
        for r in self
            .query(
                "SELECT subject_id, stage IN ('won', 'lost'), updated_at FROM deals \
                 WHERE subject_id > $1 AND subject_id <= $2",
                &[&lo, &hi],
            )
            .await?
        {
            facts.deal(SubjectId::from_uuid(col(&r, 0)?), col(&r, 1)?, time(&r, 2)?);
        }
        for r in self
            .query(
                "SELECT subject_id, purpose, status, recorded_at FROM consents \
                 WHERE subject_id > $1 AND subject_id <= $2 AND status IN ('granted', 'withdrawn') \
                 ORDER BY subject_id, recorded_at, id",
                &[&lo, &hi],
            )
            .await?
        {
            facts.consent(
                SubjectId::from_uuid(col(&r, 0)?),
                col(&r, 1)?,
                col(&r, 2)?,
                time(&r, 3)?,
            );
        }
        Ok(facts.finish())
    }

    async fn retention_candidates(
        &self,
        q: &crate::retention::RetentionQuery,
    ) -> StoreResult<Vec<crate::retention::RetentionCandidate>> {
        let Some(sql) = crate::retention::candidates_sql(q, |n| format!("${n}"), |t| format!("NULL::{t}")) else {
            return Ok(Vec::new());
        };
        let before = crate::to_micros(q.before);
        let limit = page_size(q.limit);
        let after = q.after.unwrap_or(Uuid::nil());
        let rows = match &q.purpose {
            Some(p) if q.kind == crate::retention::PurgeKind::ConsentRecord => {
                self.query(&sql, &[&before, &limit, &after, p]).await?
            }
            _ => self.query(&sql, &[&before, &limit, &after]).await?,
        };
        rows.iter()
            .map(|r| {
                let attr: Option<String> = col(r, 3)?;
                let period: Option<i64> = col(r, 4)?;
                Ok(crate::retention::RetentionCandidate {
                    id: col(r, 0)?,
                    subject_id: col::<Option<Uuid>>(r, 1)?.map(SubjectId::from_uuid),
                    from_at: time(r, 2)?,
                    attribute: match (attr, period) {
                        (Some(a), Some(p)) => Some((a, from_micros(p)?)),
                        _ => None,
                    },
                })
            })
            .collect()
    }

    async fn retention_log(
        &self,
        since: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Vec<crate::retention::RetentionLogRow>> {
        let rows = self
            .query(
                "SELECT run_id, rule, record, action, at, count FROM retention_log WHERE at >= $1 \
                 ORDER BY at, run_id, rule, record, action",
                &[&crate::to_micros(since)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::retention::RetentionLogRow {
                    run_id: col(r, 0)?,
                    rule: col(r, 1)?,
                    record: col(r, 2)?,
                    action: col(r, 3)?,
                    at: time(r, 4)?,
                    count: u64::try_from(col::<i64>(r, 5)?).map_err(|_| StoreError::Corrupt("bad count".into()))?,
                })
            })
            .collect()
    }

    async fn retention_aggregates(&self) -> StoreResult<Vec<crate::retention::AggregateRow>> {
        let rows = self
            .query(
                "SELECT record, period, attribute, value, count FROM retention_aggregates \
                 ORDER BY record, period, attribute, value",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(crate::retention::AggregateRow {
                    record: col(r, 0)?,
                    period: col(r, 1)?,
                    attribute: col(r, 2)?,
                    value: col(r, 3)?,
                    count: u64::try_from(col::<i64>(r, 4)?).map_err(|_| StoreError::Corrupt("bad count".into()))?,
                })
            })
            .collect()
    }

    async fn get_settings(&self) -> StoreResult<Vec<(String, String)>> {
        let rows = self
            .query("SELECT name, value FROM settings ORDER BY name COLLATE \"C\"", &[])
            .await?;
        rows.iter().map(|r| Ok((col(r, 0)?, col(r, 1)?))).collect()
    }

    async fn list_subject_keys(
        &self,
        master_key_id: &str,
        after: Option<SubjectId>,
        limit: u32,
    ) -> StoreResult<Vec<(SubjectId, StoredKey)>> {
        self.vault.list_under(master_key_id, after, limit)
    }

    async fn count_subject_keys_not_under(&self, master_key_id: &str) -> StoreResult<u64> {
        self.vault.count_not_under(master_key_id)
    }

    async fn get_instance_keys(&self) -> StoreResult<Vec<(String, StoredKey)>> {
        let rows = self
            .query(
                "SELECT name, master_key_id, key_version, wrapped FROM instance_keys ORDER BY name COLLATE \"C\"",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let key = stored_key_from_row(r, 1)?.ok_or_else(|| StoreError::Corrupt("missing key".into()))?;
                Ok((col(r, 0)?, key))
            })
            .collect()
    }

    async fn audit_size(&self) -> StoreResult<u64> {
        let row = self
            .query_opt("SELECT COALESCE(MAX(idx) + 1, 0) FROM audit_log", &[])
            .await?
            .ok_or_else(|| StoreError::Corrupt("no audit size".into()))?;
        let n: i64 = col(&row, 0)?;
        u64::try_from(n).map_err(|_| StoreError::Corrupt("negative audit size".into()))
    }

    async fn audit_entries(&self, from: u64, limit: u32) -> StoreResult<Vec<StoredAuditEntry>> {
        let rows = self
            .query(
                "SELECT idx, entry, leaf_hash FROM audit_log WHERE idx >= $1 ORDER BY idx LIMIT $2",
                &[&audit_index(from), &i64::from(limit)],
            )
            .await?;
        rows.iter().map(audit_entry_from_row).collect()
    }

    async fn scan_audit(&self, from: u64, to: u64, visit: &mut AuditVisit<'_>) -> StoreResult<()> {
        const PAGE: u64 = 10_000;
        // The range ends at the log's end (so an open-ended range ends).
        let to = to.min(self.audit_size().await?);
        let mut at = from;
        while at < to {
            let upto = at.saturating_add(PAGE).min(to);
            let rows = self
                .query(
                    "SELECT idx, facts, CASE WHEN facts IS NULL THEN entry END FROM audit_log \
                     WHERE idx >= $1 AND idx < $2 ORDER BY idx",
                    &[&audit_index(at), &audit_index(upto)],
                )
                .await?;
            for row in &rows {
                let i: i64 = col(row, 0)?;
                let facts: Option<&[u8]> = col(row, 1)?;
                let found = match facts {
                    Some(f) => ScanRow::Facts(f),
                    None => ScanRow::Entry(col::<Option<&[u8]>>(row, 2)?.unwrap_or_default()),
                };
                if !visit(u64::try_from(i).unwrap_or(0), found) {
                    return Ok(());
                }
            }
            at = upto;
        }
        Ok(())
    }

    async fn audit_leaf_hashes(&self, from: u64, to: u64) -> StoreResult<Vec<AuditHash>> {
        let rows = self
            .query(
                "SELECT leaf_hash FROM audit_log WHERE idx >= $1 AND idx < $2 ORDER BY idx",
                &[&audit_index(from), &audit_index(to)],
            )
            .await?;
        rows.iter().map(|r| hash_col(r, 0)).collect()
    }

    async fn query_audit(&self, f: &AuditFilter) -> StoreResult<Vec<StoredAuditEntry>> {
        let q = audit_query(f);
        let params: Vec<&(dyn ToSql + Sync)> = q.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        let rows = self.query(&q.sql, &params).await?;
        rows.iter().map(audit_entry_from_row).collect()
    }

    async fn tree_heads(&self) -> StoreResult<Vec<SignedTreeHead>> {
        let rows = self
            .query(
                "SELECT tree_size, timestamp_ms, root, signature, key_id FROM audit_tree_heads ORDER BY tree_size",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let size: i64 = col(r, 0)?;
                Ok(SignedTreeHead {
                    tree_size: u64::try_from(size).map_err(|_| StoreError::Corrupt("negative tree size".into()))?,
                    timestamp_ms: col(r, 1)?,
                    root: hash_col(r, 2)?,
                    signature: col(r, 3)?,
                    key_id: col(r, 4)?,
                })
            })
            .collect()
    }

    async fn ping(&self) -> StoreResult<()> {
        let client = self.client().await?;
        client
            .simple_query("SELECT 1")
            .await
            .map(|_| ())
            .map_err(|e| map_db_error(&e))
    }

    fn access_epoch(&self) -> u64 {
        self.access.load(Ordering::Acquire)
    }

    async fn close(&self) {
        if let Some(l) = self.listener.lock().ok().and_then(|mut l| l.take()) {
            l.abort();
        }
        self.writer.shutdown().await;
        self.pool.close();
    }
}

/// Moves the keys an earlier version kept in PostgreSQL's `subject_keys`
/// into the vault, a page at a time: stored (and fsynced) there first, then
/// deleted here. Their old rows stay in PostgreSQL's dead tuples, WAL and
/// backups, wrapped under the master key of the time: `steward keys
/// rotate` retires that key.
async fn move_keys_to_vault(client: &deadpool_postgres::Client, vault: &Arc<KeyVault>) -> StoreResult<()> {
    loop {
        let rows = client
            .query(
                "SELECT subject_id, master_key_id, key_version, wrapped, created_at FROM subject_keys \
                 ORDER BY subject_id LIMIT 1000",
                &[],
            )
            .await
            .map_err(|e| map_db_error(&e))?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut keys = Vec::with_capacity(rows.len());
        let mut ids = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: Uuid = col(r, 0)?;
            let key = stored_key_from_row(r, 1)?.ok_or_else(|| StoreError::Corrupt("missing key".into()))?;
            keys.push((SubjectId::from_uuid(id), key, col::<i64>(r, 4)?));
            ids.push(id);
        }
        let n = vault.import(keys).await?;
        client
            .execute("DELETE FROM subject_keys WHERE subject_id = ANY($1)", &[&ids])
            .await
            .map_err(|e| map_db_error(&e))?;
        tracing::info!(moved = n, "subject keys moved from PostgreSQL into the vault");
    }
}

/// Destroys vault keys whose contact is gone: left behind when the vault
/// failed to destroy a key after the transaction that deleted its contact
/// had committed (the caller was told the erasure failed). Keys younger
/// than an hour are left alone: their contact's transaction may still be
/// running in another process.
async fn destroy_orphan_keys(client: &deadpool_postgres::Client, vault: &Arc<KeyVault>) -> StoreResult<()> {
    let before = to_micros(chrono::Utc::now() - chrono::Duration::hours(1));
    let mut after = None;
    let mut destroyed = 0usize;
    loop {
        let page = vault.stored_before(before, after, 1000)?;
        let Some(last) = page.last() else { break };
        after = Some(*last);
        let ids: Vec<Uuid> = page.iter().map(|s| *s.as_uuid()).collect();
        let present: std::collections::HashSet<Uuid> = client
            .query("SELECT subject_id FROM contacts WHERE subject_id = ANY($1)", &[&ids])
            .await
            .map_err(|e| map_db_error(&e))?
            .iter()
            .map(|r| col::<Uuid>(r, 0))
            .collect::<StoreResult<_>>()?;
        let orphans: Vec<SubjectId> = page.into_iter().filter(|s| !present.contains(s.as_uuid())).collect();
        destroyed += orphans.len();
        vault.destroy(orphans).await?;
    }
    if destroyed > 0 {
        tracing::warn!(destroyed, "destroyed data keys whose contacts were already deleted");
    }
    Ok(())
}

/// The page size actually used: `limit` clamped to `1..=MAX_PAGE` (as in
/// the SQLite backend, so `0` still returns one row).
fn page_size(limit: u32) -> i64 {
    i64::from(limit.clamp(1, MAX_PAGE))
}

/// Reads column `idx`; a value of the wrong type or shape is corruption.
fn col<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> StoreResult<T> {
    row.try_get(idx)
        .map_err(|_| StoreError::Corrupt(format!("unreadable column {idx}")))
}

fn time(row: &Row, idx: usize) -> StoreResult<chrono::DateTime<chrono::Utc>> {
    from_micros(col(row, idx)?)
}

/// Purposes are stored joined with `,`; empty items (so the empty string)
/// are dropped on reading, as in the SQLite backend.
pub(crate) fn join_purposes(purposes: &[String]) -> String {
    purposes.join(",")
}

fn split_purposes(s: &str) -> Vec<String> {
    s.split(',').filter(|p| !p.is_empty()).map(str::to_owned).collect()
}

fn contact_from_row(row: &Row) -> StoreResult<ContactRow> {
    let purposes: &str = col(row, 1)?;
    let blob: &[u8] = col(row, 2)?;
    Ok(ContactRow {
        subject_id: SubjectId::from_uuid(col(row, 0)?),
        purposes: split_purposes(purposes),
        fields: fields::decode(blob)?,
        created_at: time(row, 3)?,
        updated_at: time(row, 4)?,
        version: col(row, 5)?,
        key: stored_key_from_row(row, 6)?,
        restricted: col(row, 9)?,
        consented: crate::decode_consented(col(row, 10)?)?,
    })
}

fn audit_index(i: u64) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}

/// An audit query and its parameters.
struct AuditQuery {
    sql: String,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

/// The statement for `f`, with only the conditions it sets: each shape is
/// its own cached statement, so that its plan can use the index that fits
/// (`audit_subject`, `audit_actor_user`, the partial `audit_actor_token`),
/// which a generic plan over `$n IS NULL OR ...` conditions could not.
fn audit_query(f: &AuditFilter) -> AuditQuery {
    let mut sql = String::from("SELECT idx, entry, leaf_hash FROM audit_log WHERE idx > $1");
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(f.after.map_or(-1, audit_index))];
    let mut condition = |sql: &mut String, param: Box<dyn ToSql + Sync + Send>, condition: &str| {
        params.push(param);
        let n = params.len();
        sql.push_str(&format!(" AND {}", condition.replace("$n", &format!("${n}"))));
    };
    if let Some(before) = f.before {
        condition(&mut sql, Box::new(audit_index(before)), "idx < $n");
    }
    if let Some(subject) = f.subject {
        condition(&mut sql, Box::new(*subject.as_uuid()), "subject_id = $n");
    }
    if let Some(actor) = f.actor {
        condition(&mut sql, Box::new(actor), "(actor_user = $n OR actor_token = $n)");
    }
    if let Some(user) = f.user {
        condition(&mut sql, Box::new(user), "actor_user = $n");
    }
    if let Some(token) = f.token {
        condition(&mut sql, Box::new(token), "actor_token = $n");
    }
    if let Some(from) = f.from {
        condition(&mut sql, Box::new(to_micros(from)), "at >= $n");
    }
    if let Some(to) = f.to {
        condition(&mut sql, Box::new(to_micros(to)), "at < $n");
    }
    params.push(Box::new(page_size(f.limit)));
    sql.push_str(&format!(" ORDER BY idx LIMIT ${}", params.len()));
    AuditQuery { sql, params }
}

fn hash_col(row: &Row, idx: usize) -> StoreResult<AuditHash> {
    let b: Vec<u8> = col(row, idx)?;
    b.try_into().map_err(|_| StoreError::Corrupt("bad leaf hash".into()))
}

fn audit_entry_from_row(row: &Row) -> StoreResult<StoredAuditEntry> {
    let idx: i64 = col(row, 0)?;
    Ok(StoredAuditEntry {
        index: u64::try_from(idx).map_err(|_| StoreError::Corrupt("negative audit index".into()))?,
        bytes: col(row, 1)?,
        leaf_hash: hash_col(row, 2)?,
    })
}

fn stored_key_from_row(row: &Row, idx: usize) -> StoreResult<Option<StoredKey>> {
    let master: Option<String> = col(row, idx)?;
    let Some(master_key_id) = master else { return Ok(None) };
    let version: i64 = col(row, idx + 1)?;
    Ok(Some(StoredKey {
        master_key_id,
        version: u32::try_from(version).map_err(|_| StoreError::Corrupt("bad key version".into()))?,
        wrapped: col(row, idx + 2)?,
    }))
}

fn organization_from_row(row: &Row) -> StoreResult<Organization> {
    Ok(Organization {
        id: OrganizationId::from_uuid(col(row, 0)?),
        name: col(row, 1)?,
        domain: col(row, 2)?,
        created_at: time(row, 3)?,
        updated_at: time(row, 4)?,
    })
}

fn deal_from_row(row: &Row) -> StoreResult<Deal> {
    let stage: &str = col(row, 2)?;
    let currency: Option<&str> = col(row, 4)?;
    let organization: Option<Uuid> = col(row, 5)?;
    let contact: Option<Uuid> = col(row, 6)?;
    Ok(Deal {
        id: DealId::from_uuid(col(row, 0)?),
        title: col(row, 1)?,
        stage: DealStage::parse(stage).map_err(|_| StoreError::Corrupt("unknown deal stage".into()))?,
        amount: col::<Option<i64>>(row, 3)?.map(Amount::from_minor),
        currency: currency
            .map(CurrencyCode::parse)
            .transpose()
            .map_err(|_| StoreError::Corrupt("unknown currency code".into()))?,
        organization_id: organization.map(OrganizationId::from_uuid),
        contact_id: contact.map(SubjectId::from_uuid),
        created_at: time(row, 7)?,
        updated_at: time(row, 8)?,
    })
}

fn interaction_from_row(row: &Row) -> StoreResult<InteractionRow> {
    let kind: &str = col(row, 2)?;
    Ok(InteractionRow {
        id: InteractionId::from_uuid(col(row, 0)?),
        subject_id: SubjectId::from_uuid(col(row, 1)?),
        kind: InteractionKind::parse(kind).map_err(|_| StoreError::Corrupt("unknown interaction kind".into()))?,
        occurred_at: time(row, 3)?,
        created_at: time(row, 4)?,
        summary: col(row, 5)?,
    })
}

/// A user from the [`USER_COLS`] starting at column `at`.
fn user_from_row(row: &Row, at: usize) -> StoreResult<UserRow> {
    let failed: i32 = col(row, at + 6)?;
    let locked: Option<i64> = col(row, at + 7)?;
    Ok(UserRow {
        id: UserId::from_uuid(col(row, at)?),
        username: col(row, at + 1)?,
        role: col(row, at + 2)?,
        password_hash: col(row, at + 3)?,
        disabled: col(row, at + 4)?,
        created_at: time(row, at + 5)?,
        failed_logins: failures_from_db(i64::from(failed))?,
        locked_until: locked.map(from_micros).transpose()?,
    })
}

fn opt_time(row: &Row, idx: usize) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
    col::<Option<i64>>(row, idx)?.map(from_micros).transpose()
}

fn token_from_row(row: &Row) -> StoreResult<TokenRow> {
    let kind: &str = col(row, 2)?;
    Ok(TokenRow {
        id: TokenId::from_uuid(col(row, 0)?),
        user_id: UserId::from_uuid(col(row, 1)?),
        kind: TokenKind::parse(kind).ok_or_else(|| StoreError::Corrupt("unknown token kind".into()))?,
        name: col(row, 3)?,
        hash: col(row, 4)?,
        created_at: time(row, 5)?,
        expires_at: opt_time(row, 6)?,
        revoked_at: opt_time(row, 7)?,
        last_used_at: opt_time(row, 8)?,
        purpose: col(row, 9)?,
        mfa: col(row, 10)?,
    })
}

fn credential_from_row(row: &Row) -> StoreResult<CredentialRow> {
    let step: Option<i64> = col(row, 5)?;
    Ok(CredentialRow {
        id: col(row, 0)?,
        user_id: UserId::from_uuid(col(row, 1)?),
        kind: col(row, 2)?,
        secret: col(row, 3)?,
        confirmed: col(row, 4)?,
        last_step: step.map(step_from_db).transpose()?,
        created_at: time(row, 6)?,
    })
}

fn training_from_row(row: &Row) -> StoreResult<TrainingRow> {
    Ok(TrainingRow {
        id: col(row, 0)?,
        user_id: UserId::from_uuid(col(row, 1)?),
        course: col(row, 2)?,
        completed_on: col(row, 3)?,
        expires_on: col(row, 4)?,
        created_at: time(row, 5)?,
    })
}

/// Maps a PostgreSQL error to a [`StoreError`].
///
/// Unique violations are [`StoreError::Duplicate`], foreign-key violations
/// [`StoreError::MissingReference`]. Anything else is
/// [`StoreError::Backend`] carrying the SQLSTATE and, outside the data and
/// integrity classes (22, 23) whose messages may quote values, the server's
/// primary message. `DETAIL` and `HINT` (which quote row values) are never
/// copied.
pub(crate) fn map_db_error(e: &tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::UNIQUE_VIOLATION {
            return StoreError::Duplicate;
        }
        if *code == SqlState::FOREIGN_KEY_VIOLATION {
            return StoreError::MissingReference;
        }
        let sqlstate = code.code();
        if sqlstate.starts_with("22") || sqlstate.starts_with("23") {
            StoreError::Backend(format!("PostgreSQL error {sqlstate}"))
        } else {
            StoreError::Backend(format!("PostgreSQL error {sqlstate}: {}", db.message()))
        }
    } else if e.is_closed() {
        StoreError::Backend("the PostgreSQL connection is closed".into())
    } else {
        // Client-side kinds (I/O, protocol, (de)serialisation, timeouts):
        // their messages name a parameter or column index, never a value.
        // For connecting, TLS and I/O the cause (an OS error, a certificate
        // problem) is what the operator needs, and it quotes no data.
        let kind = e.to_string();
        let with_cause = [
            "error connecting to server",
            "error performing TLS handshake",
            "error communicating with the server",
            "authentication error",
            "invalid configuration",
        ];
        match std::error::Error::source(e) {
            Some(cause) if with_cause.contains(&kind.as_str()) => {
                StoreError::Backend(format!("PostgreSQL: {kind}: {cause}"))
            }
            _ => StoreError::Backend(format!("PostgreSQL: {kind}")),
        }
    }
}

fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => map_db_error(&e),
        PoolError::Closed => StoreError::Backend(CLOSED.into()),
        PoolError::Timeout(_) => StoreError::Backend("timed out waiting for a PostgreSQL connection".into()),
        other => StoreError::Backend(format!("PostgreSQL connection pool: {other}")),
    }
}

const CONSENT_COLS: &str =
    "id, subject_id, purpose, status, recorded_at, source, notice_version, notice_hash, evidence, \
    recorded_by, expires_at, confirmation_hash, confirmation_expires_at, confirmed_at";

fn consent_from_row(r: &Row) -> StoreResult<crate::ConsentRow> {
    let recorded_by: Option<Uuid> = col(r, 9)?;
    Ok(crate::ConsentRow {
        id: col(r, 0)?,
        subject_id: SubjectId::from_uuid(col(r, 1)?),
        purpose: col(r, 2)?,
        status: col(r, 3)?,
        recorded_at: time(r, 4)?,
        source: col(r, 5)?,
        notice_version: col(r, 6)?,
        notice_hash: col(r, 7)?,
        evidence: col(r, 8)?,
        recorded_by: recorded_by.map(UserId::from_uuid),
        expires_at: opt_time(r, 10)?,
        confirmation_hash: col(r, 11)?,
        confirmation_expires_at: opt_time(r, 12)?,
        confirmed_at: opt_time(r, 13)?,
    })
}

const INCIDENT_COLS: &str = "id, status, aware_at, due_at, created_at, updated_at, sealed";

fn incident_from_row(r: &Row) -> StoreResult<crate::IncidentRow> {
    Ok(crate::IncidentRow {
        id: col(r, 0)?,
        status: col(r, 1)?,
        aware_at: time(r, 2)?,
        due_at: opt_time(r, 3)?,
        created_at: time(r, 4)?,
        updated_at: time(r, 5)?,
        sealed: col(r, 6)?,
    })
}

const DSR_COLS: &str = "id, kind, regime, subject_id, identifier_hash, status, received_at, received_offset, due_at, extensions, \
    extension_reason, verified_at, verified_by, verification_method, completed_at, outcome, details, created_by, created_at, updated_at";

const DRP_AGENT_COLS: &str = "id, name, verify_key, token_hash, token_issued_at, created_by, created_at";

fn drp_agent_from_row(r: &Row) -> StoreResult<crate::DrpAgentRow> {
    let created_by: Option<Uuid> = col(r, 5)?;
    Ok(crate::DrpAgentRow {
        id: col(r, 0)?,
        name: col(r, 1)?,
        verify_key: col(r, 2)?,
        token_hash: col(r, 3)?,
        token_issued_at: opt_time(r, 4)?,
        created_by: created_by.map(UserId::from_uuid),
        created_at: time(r, 6)?,
    })
}

fn dsr_from_row(r: &Row) -> StoreResult<crate::DsrRow> {
    let subject: Option<Uuid> = col(r, 3)?;
    let verified_by: Option<Uuid> = col(r, 12)?;
    let created_by: Option<Uuid> = col(r, 17)?;
    let offset: i64 = col(r, 7)?;
    let extensions: i64 = col(r, 9)?;
    Ok(crate::DsrRow {
        id: col(r, 0)?,
        kind: col(r, 1)?,
        regime: col(r, 2)?,
        subject_id: subject.map(SubjectId::from_uuid),
        identifier_hash: col(r, 4)?,
        status: col(r, 5)?,
        received_at: time(r, 6)?,
        received_offset: i32::try_from(offset).map_err(|_| StoreError::Corrupt("bad offset".into()))?,
        due_at: time(r, 8)?,
        extensions: u32::try_from(extensions).map_err(|_| StoreError::Corrupt("bad extensions".into()))?,
        extension_reason: col(r, 10)?,
        verified_at: opt_time(r, 11)?,
        verified_by: verified_by.map(UserId::from_uuid),
        verification_method: col(r, 13)?,
        completed_at: opt_time(r, 14)?,
        outcome: col(r, 15)?,
        details: col(r, 16)?,
        created_by: created_by.map(UserId::from_uuid),
        created_at: time(r, 18)?,
        updated_at: time(r, 19)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_round_trip() {
        for p in [vec![], vec!["sales".to_string()], vec!["a".into(), "b".into()]] {
            assert_eq!(split_purposes(&join_purposes(&p)), p);
        }
    }

    /// Literal arguments for `EXECUTE` of [`audit_query`]'s statement, in
    /// the order it numbers its parameters.
    fn audit_query_args(f: &AuditFilter) -> String {
        let uuid = |u: &Uuid| format!("'{u}'::uuid");
        let mut args = vec![f.after.map_or(-1, audit_index).to_string()];
        args.extend(f.before.map(|b| audit_index(b).to_string()));
        args.extend(f.subject.map(|s| uuid(s.as_uuid())));
        args.extend(f.actor.as_ref().map(uuid));
        args.extend(f.user.as_ref().map(uuid));
        args.extend(f.token.as_ref().map(uuid));
        args.extend(f.from.map(|t| to_micros(t).to_string()));
        args.extend(f.to.map(|t| to_micros(t).to_string()));
        args.push(page_size(f.limit).to_string());
        args.join(", ")
    }

    /// Queries by token and by user use their indexes (the partial
    /// `audit_actor_token`, `audit_actor_user`) in both the custom and the
    /// generic plan of their cached statement, alone and with time, cursor
    /// and `before` conditions: no sequential scan of the log.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn audit_queries_by_token_and_user_use_their_indexes() {
        let Some(admin) = testing::test_database_url() else {
            eprintln!("skipped: STEWARD_TEST_DATABASE_URL is not set");
            return;
        };
        let (url, db) = testing::fresh_test_database(&admin).await.expect("database");
        let store = PgStore::connect(&url, &db.vault_path()).await.expect("connect");
        // 20,000 entries: 100 users, one entry in four by one of 50 tokens.
        // (For a user with a large share of the log, the planner rightly
        // prefers the primary key's order, stopping at the page's end.)
        let users: Vec<Uuid> = (0..100).map(|_| Uuid::now_v7()).collect();
        let tokens: Vec<Uuid> = (0..50).map(|_| Uuid::now_v7()).collect();
        for chunk in (0..20_000usize).collect::<Vec<_>>().chunks(2_000) {
            let records = chunk
                .iter()
                .map(|&i| {
                    let mut actor = steward_audit::Actor::system();
                    actor.user_id = Some(users[i % users.len()]);
                    actor.token_id = i.is_multiple_of(4).then(|| tokens[(i / 4) % tokens.len()]);
                    let mut r = steward_audit::AuditRecord::new(
                        chrono::Utc::now(),
                        actor,
                        "contact.read",
                        steward_audit::Outcome::Ok,
                    );
                    r.subject_id = Some(Uuid::now_v7());
                    r
                })
                .collect();
            store.append_read_audit(records).await.expect("audit");
        }
        store.close().await;
        let client = testing::connect_client(&url).await.expect("client");
        client.batch_execute("ANALYZE audit_log").await.expect("analyze");
        let now = chrono::Utc::now();
        let token_filters = [
            AuditFilter {
                token: Some(tokens[3]),
                limit: 100,
                ..AuditFilter::default()
            },
            AuditFilter {
                token: Some(tokens[7]),
                from: Some(now - chrono::Duration::hours(1)),
                to: Some(now),
                after: Some(1_000),
                before: Some(19_000),
                limit: 1000,
                ..AuditFilter::default()
            },
            AuditFilter {
                token: Some(tokens[7]),
                user: Some(users[2]),
                limit: 1000,
                ..AuditFilter::default()
            },
        ];
        let user_filters = [
            AuditFilter {
                user: Some(users[1]),
                limit: 100,
                ..AuditFilter::default()
            },
            AuditFilter {
                user: Some(users[1]),
                from: Some(now - chrono::Duration::hours(1)),
                before: Some(15_000),
                after: Some(200),
                limit: 100,
                ..AuditFilter::default()
            },
        ];
        let cases = token_filters
            .iter()
            .map(|f| (f, "audit_actor_token"))
            .chain(user_filters.iter().map(|f| (f, "audit_actor_user")));
        for (n, (f, index)) in cases.enumerate() {
            let q = audit_query(f);
            let args = audit_query_args(f);
            for mode in ["force_custom_plan", "force_generic_plan"] {
                client
                    .batch_execute(&format!(
                        "SET plan_cache_mode = {mode}; PREPARE q{n}_{mode} AS {}",
                        q.sql
                    ))
                    .await
                    .expect("prepare");
                let plan: Vec<String> = client
                    .query(&format!("EXPLAIN EXECUTE q{n}_{mode}({args})"), &[])
                    .await
                    .expect("explain")
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let plan = plan.join("\n");
                assert!(plan.contains(index), "{mode} for {f:?} uses {index}:\n{plan}");
                assert!(!plan.contains("Seq Scan"), "{mode} for {f:?}:\n{plan}");
            }
        }
        drop(client);
        db.drop_now().await.expect("drop");
    }

    #[test]
    fn page_size_is_bounded() {
        assert_eq!(page_size(0), 1);
        assert_eq!(page_size(10), 10);
        assert_eq!(page_size(u32::MAX), i64::from(MAX_PAGE));
    }
}
