//! SQLite backend: the default, embedded store.
//!
//! One writer thread owns the only writing connection and applies batches by
//! group commit: it takes every batch waiting in its queue, runs them in one
//! transaction with a savepoint per batch, commits once and then answers each
//! caller. Readers use a small pool of read-only connections on blocking
//! threads. The database runs in WAL mode with `secure_delete` on.
//!
//! The audit entries of reads do not wait for a commit: they go through the
//! read-audit spool (see `spool.rs`) and are sealed in batches by the
//! writer.

mod migrations;
mod ops;
mod read;
mod scim;
mod spool;

use crate::AuditVisit;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};
use steward_domain::{Deal, DealId, InteractionId, Organization, OrganizationId, SubjectId, UserId};
use tokio::sync::oneshot;

use crate::{
    AuditFilter, AuditTip, ContactRow, InteractionRow, Store, StoreError, StoreResult, StoredAuditEntry, StoredKey,
    TokenRow, UserRow, WriteOp,
};
use steward_audit::{AuditRecord, Hash, SignedTreeHead};

/// How many waiting batches one group commit takes at most.
const MAX_GROUP: usize = 512;
/// The page size of a new database.
const PAGE_SIZE: i64 = 2048;
/// WAL size in pages at which the writer checkpoints: 64 MiB of 2 KiB
/// pages (SQLite's default, 1,000 pages, copied the same hot audit and index
/// pages over and over, with an fsync each time). Erasure checkpoints and
/// truncates the WAL at once regardless.
const WAL_PAGES: i64 = 32_000;
/// Spooled read entries at which the writer is woken to seal them. Sealing
/// them in large batches matters twice over: each commit rewrites the log's
/// tail pages, and any commit empties the page cache of every read
/// connection (SQLite cannot tell which pages changed), so frequent small
/// commits made reads fetch their pages again (measured with `steward
/// bench`: audited reads a few per cent faster than with a commit every
/// 2 ms).
const SEAL_BATCH: usize = 4096;
/// Spooled read entries waiting for the writer beyond which a read waits
/// for them to be sealed (backpressure).
const SPOOL_BACKLOG: usize = 16_384;
/// The writer seals spooled read entries at least this often.
const SEAL_DELAY: std::time::Duration = std::time::Duration::from_secs(1);
/// WAL size beyond which the writer truncates it: 128 MiB.
const WAL_LIMIT: u64 = 128 << 20;
/// Read connections kept open.
const READ_POOL: usize = 8;

/// Durability: `Normal` survives process crashes (WAL, synchronous=NORMAL);
/// `Full` also survives power loss (synchronous=FULL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    #[default]
    Normal,
    Full,
}

/// A batch of operations; a job without `reply` only wakes the writer for
/// spooled read entries.
struct Job {
    ops: Vec<WriteOp>,
    reply: Option<oneshot::Sender<StoreResult<()>>>,
}

pub struct SqliteStore {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    readers: ReadPool,
    closed: AtomicBool,
    spool: Arc<spool::Spool>,
    durability: Durability,
    /// `<database>-access`: replaced (a new inode each time) after every
    /// commit that changes access, so every process on this database sees
    /// it change with one `stat` (see [`Store::access_epoch`]).
    access_stamp: PathBuf,
}

fn backend_err(e: &rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn configure(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_PAGES)?;
    conn.pragma_update(
        None,
        "synchronous",
        match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        },
    )?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with(path, Durability::Normal).await
    }

    pub async fn open_with(path: &Path, durability: Durability) -> StoreResult<Self> {
        let path = path.to_path_buf();
        let p = path.clone();
        let (conn, spool) = tokio::task::spawn_blocking(move || -> StoreResult<(Connection, spool::Spool)> {
            create_private_file(&p)?;
            let mut conn = Connection::open(&p).map_err(|e| backend_err(&e))?;
            // 2 KiB pages for a new database (an existing one keeps its own):
            // a create dirties a page at a random place in several indexes
            // (blind-index terms, keys, the audit log's subject index), and
            // half-size pages halve what each commit writes to the WAL.
            // Measured with `steward bench`: creates +45 %, reads unchanged.
            conn.pragma_update(None, "page_size", PAGE_SIZE)
                .map_err(|e| backend_err(&e))?;
            let mode: String = conn
                .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
                .map_err(|e| backend_err(&e))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::Backend(format!(
                    "could not enable WAL (journal mode is {mode})"
                )));
            }
            configure(&conn, durability).map_err(|e| backend_err(&e))?;
            // The writer touches the tail of the audit log and its indexes
            // all the time: keep them in its page cache (64 MiB).
            conn.pragma_update(None, "cache_size", -65_536)
                .map_err(|e| backend_err(&e))?;
            migrations::run(&mut conn)?;
            let spool = spool::Spool::open(&p, &mut conn)?;
            Ok((conn, spool))
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))??;

        let (tx, rx) = mpsc::channel::<Job>();
        let spool = Arc::new(spool);
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let writer_spool = Arc::clone(&spool);
        let access_stamp = suffixed(&path, "-access");
        let stamp = access_stamp.clone();
        let writer = std::thread::Builder::new()
            .name("steward-sqlite-writer".into())
            .spawn(move || writer_loop(conn, &wal, &stamp, &rx, &writer_spool))
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(Self {
            sender: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            readers: ReadPool::new(&path, READ_POOL),
            closed: AtomicBool::new(false),
            spool,
            durability,
            access_stamp,
        })
    }

    /// Runs `f` on a pooled read connection, inline on the calling thread.
    ///
    /// Reads are B-tree lookups that finish in microseconds from the page
    /// cache; handing each to a blocking thread cost more in wake-ups than
    /// the read itself (measured with `steward bench`). Writes, which may
    /// wait on fsync, stay on the writer thread.
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Connection) -> StoreResult<T>,
    {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Backend("the store is closed".into()));
        }
        self.readers.with(f)
    }
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Replaces the access stamp by a new file (write, then rename), so that
/// its inode changes even when two changes fall in one clock tick.
fn replace_access_stamp(stamp: &Path) {
    let tmp = suffixed(stamp, ".tmp");
    let _ = std::fs::remove_file(&tmp);
    let written = create_private_file(&tmp).is_ok() && std::fs::rename(&tmp, stamp).is_ok();
    if !written {
        tracing::warn!("the access stamp could not be replaced; other processes notice the change within seconds");
    }
}

/// The identity of the access stamp's current file (0 if there is none).
#[cfg(unix)]
#[allow(clippy::cast_sign_loss)]
fn access_stamp_epoch(stamp: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(stamp).map_or(0, |m| {
        m.ino().rotate_left(32) ^ (m.mtime_nsec() as u64) ^ (m.mtime() as u64).rotate_left(17) ^ m.dev()
    })
}

#[cfg(not(unix))]
fn access_stamp_epoch(stamp: &Path) -> u64 {
    std::fs::metadata(stamp)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Creates the database file with mode 0600 if it does not exist yet.
/// SQLite gives the WAL and shared-memory files the same mode.
pub(crate) fn create_private_file(path: &Path) -> StoreResult<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Backend(format!("cannot create {}: {e}", path.display()))),
    }
}

/// A pool of read-only connections to one database file, used inline on
/// the calling thread (also by the subject-key vault).
pub(crate) struct ReadPool {
    path: PathBuf,
    max: usize,
    conns: Mutex<Vec<Connection>>,
}

impl ReadPool {
    pub(crate) fn new(path: &Path, max: usize) -> Self {
        Self {
            path: path.to_path_buf(),
            max,
            conns: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` on a pooled connection (opened on first need).
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let pooled = self
            .conns
            .lock()
            .map_err(|_| StoreError::Backend("reader pool poisoned".into()))?
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
                )
                .map_err(|e| backend_err(&e))?;
                c.busy_timeout(std::time::Duration::from_secs(10))
                    .map_err(|e| backend_err(&e))?;
                c
            }
        };
        let out = f(&conn);
        if let Ok(mut p) = self.conns.lock() {
            if p.len() < self.max {
                p.push(conn);
            }
        }
        out
    }

    fn clear(&self) {
        if let Ok(mut p) = self.conns.lock() {
            p.clear();
        }
    }
}

/// Checkpoints the whole WAL into the database and truncates it, waiting
/// for readers (the busy handler, then a few short retries); `Ok(false)`
/// if readers kept it busy throughout.
pub(crate) fn try_truncate_wal(conn: &Connection) -> rusqlite::Result<bool> {
    for attempt in 0..5 {
        if conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get::<_, i64>(0))? == 0 {
            return Ok(true);
        }
        if attempt < 4 {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    Ok(false)
}

/// [`try_truncate_wal`], logging when it could not complete.
fn truncate_wal(conn: &Connection, why: &str) {
    match try_truncate_wal(conn) {
        Ok(true) => {}
        Ok(false) => tracing::warn!(why, "the WAL could not be truncated: readers kept it busy"),
        Err(e) => tracing::warn!(error = %e, why, "WAL checkpoint failed"),
    }
}

fn writer_loop(mut conn: Connection, wal: &Path, stamp: &Path, rx: &mpsc::Receiver<Job>, spool: &spool::Spool) {
    let mut group: Vec<Job> = Vec::with_capacity(MAX_GROUP);
    let mut groups_since_check = 0u32;
    // Spooled read entries whose commit failed, retried with the next group.
    let mut carry = spool::Batch::default();
    loop {
        match rx.recv_timeout(SEAL_DELAY) {
            Ok(first) => group.push(first),
            Err(mpsc::RecvTimeoutError::Timeout) if spool.has_queued() || !carry.is_empty() => {}
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        carry.absorb(spool.take(false));
        let (results, sealed) = commit_group(&mut conn, &group, &carry);
        if sealed {
            spool::remove_retired(&conn, &std::mem::take(&mut carry).retired);
        }
        // After an erasure, old versions of the subject's pages (their
        // wrapped data key among them) must not survive in the WAL:
        // checkpoint and truncate it before anyone hears "done".
        let erased = group.iter().zip(&results).any(|(job, r)| {
            r.is_ok()
                && job
                    .ops
                    .iter()
                    .any(|op| matches!(op, WriteOp::DeleteContact { .. } | WriteOp::DeleteSubjectRecords { .. }))
        });
        if erased {
            truncate_wal(&conn, "after an erasure");
            groups_since_check = 0;
        }
        // Before anyone hears "done", so that a CLI change is visible to a
        // running server by the time the command returns.
        let access = group
            .iter()
            .zip(&results)
            .any(|(job, r)| r.is_ok() && job.ops.iter().any(WriteOp::changes_access));
        if access {
            replace_access_stamp(stamp);
        }
        // Under a steady stream of reads, SQLite's own (passive) checkpoints
        // never get to restart the WAL, which then grows without bound:
        // truncate it once it passes WAL_LIMIT.
        groups_since_check += 1;
        if groups_since_check >= 64 {
            groups_since_check = 0;
            if std::fs::metadata(wal).is_ok_and(|m| m.len() > WAL_LIMIT) {
                truncate_wal(&conn, "to bound its size");
            }
        }
        for (job, result) in group.drain(..).zip(results) {
            if let Some(reply) = job.reply {
                let _ = reply.send(result);
            }
        }
    }
    // Closing: seal what is left and remove this process's spool file.
    carry.absorb(spool.take(true));
    if !carry.is_empty() {
        let (_, sealed) = commit_group(&mut conn, &[], &carry);
        if sealed {
            spool::remove_retired(&conn, &carry.retired);
        } else {
            tracing::error!("audit entries of reads stay in the spool; they are sealed when the store next opens");
        }
    }
    truncate_wal(&conn, "when the store closes");
}

/// Commits the spooled read entries of `spooled` (first) and every job of
/// `group` in one transaction; returns each job's result and whether the
/// spooled entries were sealed.
fn commit_group(conn: &mut Connection, group: &[Job], spooled: &spool::Batch) -> (Vec<StoreResult<()>>, bool) {
    let fail_all = |e: &rusqlite::Error| (group.iter().map(|_| Err(backend_err(e))).collect(), false);
    let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return fail_all(&e),
    };
    let mut results = Vec::with_capacity(group.len());
    // Read inside this transaction on the first append, so that appends by
    // other processes are seen.
    let mut tip: Option<AuditTip> = None;
    // No savepoint (its page journal cost more than the appends): if the
    // spooled entries cannot be sealed, the whole group fails and they are
    // retried with the next one.
    let sealed = (|| {
        spool::seal_all(&tx, &spooled.records, &mut tip)?;
        for (name, end) in &spooled.marks {
            spool::mark(&tx, name, *end)?;
        }
        StoreResult::Ok(())
    })();
    if let Err(e) = sealed {
        tracing::error!(error = %e, "could not seal spooled audit entries; retrying with the next commit");
        let message = e.to_string();
        return (
            group
                .iter()
                .map(|_| Err(StoreError::Backend(message.clone())))
                .collect(),
            false,
        );
    }
    for job in group {
        let before = tip;
        // Audit-only jobs (the entries of reads) need no savepoint: an
        // append cannot half-happen, and SQLite undoes a failed statement
        // by itself. Savepoint journaling was a fifth of the writer's time.
        if job.ops.iter().all(|op| matches!(op, WriteOp::AppendAudit(_))) {
            let result = job.ops.iter().try_for_each(|op| ops::apply(&tx, op, &mut tip));
            if result.is_err() {
                tip = before;
            }
            results.push(result);
            continue;
        }
        let result = (|| {
            let sp = tx.savepoint().map_err(|e| backend_err(&e))?;
            for op in &job.ops {
                ops::apply(&sp, op, &mut tip)?;
            }
            sp.commit().map_err(|e| backend_err(&e))
            // dropping an uncommitted savepoint rolls it back
        })();
        if result.is_err() {
            tip = before;
        }
        results.push(result);
    }
    // Not part of any job: a failure leaves the entries for the next batch.
    if let Err(e) = ops::merge_subject_index(&tx, tip, ops::SUBJECT_INDEX_BATCH) {
        tracing::warn!(error = %e, "could not extend the audit log's subject index; retrying later");
    }
    match tx.commit() {
        Ok(()) => (results, true),
        Err(e) => fail_all(&e),
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn access_epoch(&self) -> u64 {
        access_stamp_epoch(&self.access_stamp)
    }

    async fn append_read_audit(&self, records: Vec<AuditRecord>) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Backend("the store is closed".into()));
        }
        if self.durability == Durability::Full {
            // The spool is not fsynced: in durable mode a read's entries
            // share the (fsynced) group commit instead.
            return self.write(crate::append_ops(records)).await;
        }
        let (before, queued) = self.spool.append(records)?;
        if queued >= SPOOL_BACKLOG {
            // Reads are outrunning the writer: wait for it, so neither the
            // queue nor the spool grows without bound.
            return self.flush_audit().await;
        }
        if before < SEAL_BATCH && queued >= SEAL_BATCH {
            // A batch has gathered: wake the writer (later entries ride along).
            let guard = self
                .sender
                .lock()
                .map_err(|_| StoreError::Backend("writer poisoned".into()))?;
            if let Some(sender) = guard.as_ref() {
                let _ = sender.send(Job {
                    ops: Vec::new(),
                    reply: None,
                });
            }
        }
        Ok(())
    }

    async fn flush_audit(&self) -> StoreResult<()> {
        // Any committed job implies the spool queue taken before it was sealed.
        self.write(Vec::new()).await
    }

    async fn write(&self, ops: Vec<WriteOp>) -> StoreResult<()> {
        let (reply, rx) = oneshot::channel();
        {
            let guard = self
                .sender
                .lock()
                .map_err(|_| StoreError::Backend("writer poisoned".into()))?;
            let sender = guard
                .as_ref()
                .ok_or_else(|| StoreError::Backend("the store is closed".into()))?;
            sender
                .send(Job {
                    ops,
                    reply: Some(reply),
                })
                .map_err(|_| StoreError::Backend("the writer has stopped".into()))?;
        }
        rx.await
            .map_err(|_| StoreError::Backend("the writer has stopped".into()))?
    }

    async fn get_contact(&self, id: SubjectId) -> StoreResult<Option<ContactRow>> {
        self.read(move |c| read::get_contact(c, id)).await
    }
    async fn list_contacts(&self, after: Option<SubjectId>, limit: u32) -> StoreResult<Vec<ContactRow>> {
        self.read(move |c| read::list_contacts(c, after, limit)).await
    }
    async fn find_contacts_by_term(
        &self,
        term: &[u8],
        after: Option<SubjectId>,
        limit: u32,
    ) -> StoreResult<Vec<ContactRow>> {
        let term = term.to_vec();
        self.read(move |c| read::find_contacts_by_term(c, &term, after, limit))
            .await
    }
    async fn count_contacts(&self) -> StoreResult<u64> {
        self.read(|c| read::count(c, "SELECT COUNT(*) FROM contacts")).await
    }
    async fn get_organization(&self, id: OrganizationId) -> StoreResult<Option<Organization>> {
        self.read(move |c| read::get_organization(c, id)).await
    }
    async fn list_organizations(&self, after: Option<OrganizationId>, limit: u32) -> StoreResult<Vec<Organization>> {
        self.read(move |c| read::list_organizations(c, after, limit)).await
    }
    async fn get_deal(&self, id: DealId) -> StoreResult<Option<Deal>> {
        self.read(move |c| read::get_deal(c, id)).await
    }
    async fn list_deals(&self, after: Option<DealId>, limit: u32) -> StoreResult<Vec<Deal>> {
        self.read(move |c| read::list_deals(c, after, limit)).await
    }
    async fn deals_of_subject(&self, subject: SubjectId) -> StoreResult<Vec<Deal>> {
        self.read(move |c| read::deals_of_subject(c, subject)).await
    }
    async fn list_interactions(
        &self,
        subject: SubjectId,
        after: Option<InteractionId>,
        limit: u32,
    ) -> StoreResult<Vec<InteractionRow>> {
        self.read(move |c| read::list_interactions(c, subject, after, limit))
            .await
    }
    async fn get_user(&self, id: UserId) -> StoreResult<Option<UserRow>> {
        self.read(move |c| read::get_user(c, id)).await
    }
    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<UserRow>> {
        let username = username.to_string();
        self.read(move |c| read::get_user_by_username(c, &username)).await
    }
    async fn count_users(&self) -> StoreResult<u64> {
        self.read(|c| read::count(c, "SELECT COUNT(*) FROM users")).await
    }
    async fn get_token_by_hash(&self, hash: &[u8]) -> StoreResult<Option<(TokenRow, UserRow)>> {
        let hash = hash.to_vec();
        self.read(move |c| read::get_token_by_hash(c, &hash)).await
    }
    async fn list_subject_keys(
        &self,
        master_key_id: &str,
        after: Option<SubjectId>,
        limit: u32,
    ) -> StoreResult<Vec<(SubjectId, StoredKey)>> {
        self.read(|c| read::list_subject_keys(c, master_key_id, after, limit))
            .await
    }
    async fn count_subject_keys_not_under(&self, master_key_id: &str) -> StoreResult<u64> {
        self.read(|c| read::count_subject_keys_not_under(c, master_key_id))
            .await
    }
    async fn get_instance_keys(&self) -> StoreResult<Vec<(String, StoredKey)>> {
        self.read(read::get_instance_keys).await
    }
    async fn list_users(&self) -> StoreResult<Vec<UserRow>> {
        self.read(read::list_users).await
    }
    async fn list_tokens(&self, user: UserId) -> StoreResult<Vec<TokenRow>> {
        self.read(|c| read::list_tokens(c, user)).await
    }
    async fn get_credentials(&self, user: UserId) -> StoreResult<Vec<crate::CredentialRow>> {
        self.read(|c| read::get_credentials(c, user)).await
    }
    async fn count_unused_recovery_codes(&self, user: UserId) -> StoreResult<u64> {
        self.read(|c| read::count_unused_recovery_codes(c, user)).await
    }
    async fn list_training(&self, user: Option<UserId>) -> StoreResult<Vec<crate::TrainingRow>> {
        self.read(|c| read::list_training(c, user)).await
    }
    async fn get_scim_token_by_hash(&self, hash: &[u8]) -> StoreResult<Option<crate::ScimTokenRow>> {
        self.read(|c| scim::get_token_by_hash(c, hash)).await
    }
    async fn list_scim_tokens(&self) -> StoreResult<Vec<crate::ScimTokenRow>> {
        self.read(scim::list_tokens).await
    }
    async fn get_scim_user(&self, user: UserId) -> StoreResult<Option<crate::ScimUserRow>> {
        self.read(|c| scim::get_user(c, user)).await
    }
    async fn find_scim_user_by_external_id(&self, hash: &[u8]) -> StoreResult<Option<crate::ScimUserRow>> {
        self.read(|c| scim::find_user_by_external_id(c, hash)).await
    }
    async fn list_scim_users(&self) -> StoreResult<Vec<crate::ScimUserRow>> {
        self.read(scim::list_users).await
    }
    async fn get_settings(&self) -> StoreResult<Vec<(String, String)>> {
        self.read(read::get_settings).await
    }
    async fn get_dsr(&self, id: uuid::Uuid) -> StoreResult<Option<crate::DsrRow>> {
        self.read(|c| read::get_dsr(c, id)).await
    }
    async fn list_dsr(&self, open_only: bool) -> StoreResult<Vec<crate::DsrRow>> {
        self.read(|c| read::list_dsr(c, open_only)).await
    }
    async fn legal_holds(&self, subject: SubjectId) -> StoreResult<Vec<crate::LegalHoldRow>> {
        self.read(|c| read::legal_holds(c, subject)).await
    }
    async fn get_export_bundle(&self, id: uuid::Uuid) -> StoreResult<Option<crate::ExportBundleRow>> {
        self.read(|c| read::get_export_bundle(c, id)).await
    }
    async fn list_outbox(&self, unsent_only: bool) -> StoreResult<Vec<crate::OutboxRow>> {
        self.read(|c| read::list_outbox(c, unsent_only)).await
    }
    async fn get_dsr_verification(&self, hash: &[u8]) -> StoreResult<Option<crate::DsrVerificationRow>> {
        self.read(|c| read::get_dsr_verification(c, hash)).await
    }
    async fn get_drp_agent(&self, id: &str) -> StoreResult<Option<crate::DrpAgentRow>> {
        self.read(|c| read::get_drp_agent(c, id)).await
    }
    async fn drp_agent_by_token(&self, hash: &[u8]) -> StoreResult<Option<crate::DrpAgentRow>> {
        self.read(|c| read::drp_agent_by_token(c, hash)).await
    }
    async fn list_drp_agents(&self) -> StoreResult<Vec<crate::DrpAgentRow>> {
        self.read(read::list_drp_agents).await
    }
    async fn get_drp_request(&self, id: uuid::Uuid) -> StoreResult<Option<crate::DrpRequestRow>> {
        self.read(|c| read::get_drp_request(c, id)).await
    }

    async fn get_pending_consent(&self, hash: &[u8]) -> StoreResult<Option<crate::PendingConsentRow>> {
        self.read(|c| read::get_pending_consent(c, hash)).await
    }
    async fn get_incident(&self, id: uuid::Uuid) -> StoreResult<Option<crate::IncidentRow>> {
        self.read(|c| read::get_incident(c, id)).await
    }
    async fn list_incidents(&self) -> StoreResult<Vec<crate::IncidentRow>> {
        self.read(read::list_incidents).await
    }
    async fn incident_entries(&self, incident_id: uuid::Uuid) -> StoreResult<Vec<crate::IncidentEntryRow>> {
        self.read(|c| read::incident_entries(c, incident_id)).await
    }
    async fn erasure_proof(&self, hash: &[u8]) -> StoreResult<Option<(uuid::Uuid, DateTime<Utc>)>> {
        self.read(|c| read::erasure_proof(c, hash)).await
    }
    async fn list_notices(&self) -> StoreResult<Vec<crate::NoticeRow>> {
        self.read(read::list_notices).await
    }
    async fn list_consents(&self, subject: SubjectId) -> StoreResult<Vec<crate::ConsentRow>> {
        self.read(|c| read::list_consents(c, subject)).await
    }
    async fn find_consent_by_confirmation(&self, hash: &[u8]) -> StoreResult<Option<crate::ConsentRow>> {
        self.read(|c| read::find_consent_by_confirmation(c, hash)).await
    }
    async fn consent_summaries(&self) -> StoreResult<Vec<crate::ConsentSummary>> {
        self.read(read::consent_summaries).await
    }
    async fn retention_facts(
        &self,
        after: Option<SubjectId>,
        limit: u32,
    ) -> StoreResult<Vec<crate::retention::RetentionFactsRow>> {
        self.read(move |c| read::retention_facts(c, after, limit)).await
    }
    async fn retention_candidates(
        &self,
        q: &crate::retention::RetentionQuery,
    ) -> StoreResult<Vec<crate::retention::RetentionCandidate>> {
        self.read(|c| read::retention_candidates(c, q)).await
    }
    async fn retention_log(&self, since: DateTime<Utc>) -> StoreResult<Vec<crate::retention::RetentionLogRow>> {
        self.read(move |c| read::retention_log(c, since)).await
    }
    async fn retention_aggregates(&self) -> StoreResult<Vec<crate::retention::AggregateRow>> {
        self.read(read::retention_aggregates).await
    }
    async fn audit_size(&self) -> StoreResult<u64> {
        self.flush_audit().await?;
        self.read(|c| ops::load_tip(c).map(|t| t.next)).await
    }
    async fn audit_entries(&self, from: u64, limit: u32) -> StoreResult<Vec<StoredAuditEntry>> {
        self.flush_audit().await?;
        self.read(|c| read::audit_entries(c, from, limit)).await
    }
    async fn scan_audit(&self, from: u64, to: u64, visit: &mut AuditVisit<'_>) -> StoreResult<()> {
        self.flush_audit().await?;
        // The range ends at the log's end (so an open-ended range ends).
        let to = to.min(self.read(|c| ops::load_tip(c).map(|t| t.next)).await?);
        let mut at = from;
        while at < to {
            let upto = at.saturating_add(read::SCAN_PAGE).min(to);
            if !self.read(|c| read::scan_audit(c, at, upto, &mut *visit)).await? {
                break;
            }
            at = upto;
        }
        Ok(())
    }
    async fn audit_leaf_hashes(&self, from: u64, to: u64) -> StoreResult<Vec<Hash>> {
        self.flush_audit().await?;
        self.read(|c| read::audit_leaf_hashes(c, from, to)).await
    }
    async fn query_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<StoredAuditEntry>> {
        self.flush_audit().await?;
        self.read(|c| read::query_audit(c, filter)).await
    }
    async fn tree_heads(&self) -> StoreResult<Vec<SignedTreeHead>> {
        self.read(read::tree_heads).await
    }
    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(|e| backend_err(&e)))
            .await
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        // Dropping the sender ends the writer loop after it has committed
        // everything already queued.
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
        let handle = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
        self.readers.clear();
    }
}
