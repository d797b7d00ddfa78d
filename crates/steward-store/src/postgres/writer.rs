//! Group commit for [`PgStore`](super::PgStore) writes.
//!
//! Each `write` call becomes a job (its batch of ops and a reply channel) on
//! one bounded queue. [`WRITERS`] tasks share the queue; a task takes the
//! first job and everything else already queued (up to [`MAX_GROUP`]), runs
//! them in one transaction, commits once and then answers every job. So
//! concurrent batches share a commit (and its WAL flush) while up to
//! [`WRITERS`] groups are in flight at a time.
//!
//! Invariants:
//! - every job is atomic: with more than one job in a group, each runs inside
//!   its own savepoint and a failing job is rolled back to it, so the others
//!   still commit; a lone job runs in a plain transaction;
//! - a job is answered only after the outcome of the COMMIT is known; if the
//!   COMMIT (or the connection) fails, every job of the group gets the error;
//! - a job that loses a lock race with another transaction (deadlock,
//!   serialisation failure, or the group's short lock timeout) is rolled
//!   back to its savepoint and, after its group commits, retried alone in a
//!   new transaction (up to [`MAX_ATTEMPTS`] tries in all) before the error
//!   is reported;
//! - after [`Writer::shutdown`] no job is accepted, and every job accepted
//!   before it is answered before it returns.

use std::sync::{Arc, Mutex, PoisonError};

use deadpool_postgres::{Pool, Transaction};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::{join_purposes, map_db_error, pool_error, CLOSED};
use crate::{failures_to_db, fields, step_to_db, to_micros, AuditTip, IndexTerm, StoreError, StoreResult, WriteOp};
use steward_audit::AuditRecord;

/// Writer tasks, i.e. groups that can be in flight at once.
const WRITERS: usize = 4;
/// Most jobs per group. Each job that writes inside a savepoint gets its own
/// subtransaction id; PostgreSQL caches 64 per backend
/// (`PGPROC_MAX_CACHED_SUBXIDS`) and past that every snapshot in the cluster
/// must consult `pg_subtrans`, so a group stays within the cache.
const MAX_GROUP: usize = 64;
/// Opens a multi-job group. Another writer's group may hold locks this one
/// needs while waiting on locks held here; PostgreSQL would only break such
/// a cycle after `deadlock_timeout` (1 s by default) with a whole group
/// stalled, so a group waits at most this long for a lock. The job that timed
/// out is retried alone after the commit, with ordinary lock waits.
const GROUP_START: &str = "SET LOCAL lock_timeout = '100ms'; SAVEPOINT job";
/// Jobs that may wait in the queue before `write` callers are held back.
const QUEUE: usize = 1024;
/// Tries per job when it loses a lock race (deadlock, lock timeout...).
const MAX_ATTEMPTS: u32 = 5;

struct Job {
    ops: Vec<WriteOp>,
    reply: oneshot::Sender<StoreResult<()>>,
    /// Work elsewhere (the subject-key vault storing the job's keys) that
    /// must have succeeded before the job's changes may commit: awaited
    /// after the job's statements, before its savepoint is released (or the
    /// lone job's COMMIT), so the two run side by side.
    gate: Option<Gate>,
}

/// The outcome of a job's outside work, once known.
pub(super) type Gate = tokio::sync::watch::Receiver<Option<StoreResult<()>>>;

/// Waits for `gate`'s outcome.
pub(super) async fn passed(gate: &Gate) -> StoreResult<()> {
    let mut g = gate.clone();
    let outcome = g
        .wait_for(Option::is_some)
        .await
        .map_err(|_| StoreError::Backend("the subject-key vault did not answer".into()))?
        .clone();
    outcome.unwrap_or_else(|| Err(StoreError::Backend("the subject-key vault did not answer".into())))
}

type Queue = Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>;

/// The handle the store keeps: the queue's sending side and the tasks.
pub(super) struct Writer {
    /// `None` once shut down.
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    /// Held across the whole shutdown so a second `close` waits for the first.
    tasks: tokio::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Writer {
    /// Spawns the writer tasks on the current Tokio runtime.
    pub(super) fn start(pool: Pool) -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let queue: Queue = Arc::new(tokio::sync::Mutex::new(receiver));
        let tasks = (0..WRITERS)
            .map(|_| tokio::spawn(run(pool.clone(), Arc::clone(&queue))))
            .collect();
        Self {
            sender: Mutex::new(Some(sender)),
            tasks: tokio::sync::Mutex::new(tasks),
        }
    }

    /// Queues `ops` as one atomic job and waits for its outcome.
    pub(super) async fn submit(&self, ops: Vec<WriteOp>) -> StoreResult<()> {
        self.submit_gated(ops, None).await
    }

    /// Like `submit`; the job commits only once `gate` has passed.
    pub(super) async fn submit_gated(&self, ops: Vec<WriteOp>, gate: Option<Gate>) -> StoreResult<()> {
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(closed)?;
        if ops.is_empty() {
            return Ok(());
        }
        let (reply, answer) = oneshot::channel();
        sender.send(Job { ops, reply, gate }).await.map_err(|_| closed())?;
        drop(sender);
        answer
            .await
            .map_err(|_| StoreError::Backend("the PostgreSQL writer stopped".into()))?
    }

    /// Stops accepting jobs, then waits until every accepted job is answered
    /// and the tasks have ended.
    pub(super) async fn shutdown(&self) {
        let mut tasks = self.tasks.lock().await;
        // Dropping the last sender closes the queue once it is drained; a
        // `submit` that cloned the sender before this still gets its job in.
        drop(self.sender.lock().unwrap_or_else(PoisonError::into_inner).take());
        for task in tasks.drain(..) {
            if task.await.is_err() {
                tracing::error!("a PostgreSQL writer task ended abnormally");
            }
        }
    }
}

fn closed() -> StoreError {
    StoreError::Backend(CLOSED.into())
}

/// One writer task: take a group, commit it, answer it; until the queue is
/// closed and empty.
async fn run(pool: Pool, queue: Queue) {
    let mut group: Vec<Job> = Vec::with_capacity(MAX_GROUP);
    loop {
        // Holding the lock while waiting is the point: the task that holds
        // it collects the next group while the others commit theirs.
        let taken = queue.lock().await.recv_many(&mut group, MAX_GROUP).await;
        if taken == 0 {
            break;
        }
        let outcomes = commit_group(&pool, &group).await;
        let mut victims = Vec::new();
        for (job, outcome) in group.drain(..).zip(outcomes) {
            match outcome {
                Outcome::Done(result) => answer(job, result),
                Outcome::Retry(_) => victims.push(job),
            }
        }
        // Lock-race victims run again only now that the group's commit has
        // released its locks (retrying inside the same transaction would
        // wait on the same cycle), each alone and with ordinary lock waits.
        for job in victims {
            let mut result = Err(StoreError::Backend("not attempted".into()));
            for _ in 1..MAX_ATTEMPTS {
                match commit_group(&pool, std::slice::from_ref(&job)).await.pop() {
                    Some(Outcome::Done(r)) => {
                        result = r;
                        break;
                    }
                    Some(Outcome::Retry(e)) => result = Err(e),
                    None => break,
                }
            }
            answer(job, result);
        }
    }
}

fn answer(job: Job, result: StoreResult<()>) {
    // The caller may have gone away; the outcome stands regardless.
    let _ = job.reply.send(result);
}

/// What became of one job in a group.
enum Outcome {
    /// Answer the caller with this.
    Done(StoreResult<()>),
    /// Rolled back after losing a lock race; may be retried in a later
    /// transaction (the error is its last failure).
    Retry(StoreError),
}

/// Runs `jobs` in one transaction; one outcome per job, in order.
async fn commit_group(pool: &Pool, jobs: &[Job]) -> Vec<Outcome> {
    tracing::trace!(jobs = jobs.len(), "PostgreSQL group commit");
    match try_commit_group(pool, jobs).await {
        Ok(outcomes) => outcomes,
        Err(e) => {
            tracing::warn!(jobs = jobs.len(), error = %e, "PostgreSQL group commit failed");
            jobs.iter().map(|_| Outcome::Done(Err(e.clone()))).collect()
        }
    }
}

/// `Err` fails the whole group (nothing committed); `Ok` holds each job's
/// own outcome (the successful ones committed).
async fn try_commit_group(pool: &Pool, jobs: &[Job]) -> StoreResult<Vec<Outcome>> {
    let mut client = pool.get().await.map_err(pool_error)?;
    let tx = client.transaction().await.map_err(|e| map_db_error(&e))?;
    // The audit entries of the jobs that succeed are appended last, in one
    // statement, under the lock that serialises audit appends (see
    // `append_audit`): the lock is held only for that statement and the
    // commit, so the other writers' groups run their own statements
    // meanwhile instead of queueing behind the whole transaction.
    let mut audit: Vec<&AuditRecord> = Vec::new();
    if let [job] = jobs {
        // A group of one needs no savepoint: a failure rolls it all back.
        return match run_job(&tx, job, &mut audit).await {
            Ok(()) => {
                append_audit(&tx, &audit).await?;
                tx.commit().await.map_err(|e| map_db_error(&e))?;
                Ok(vec![Outcome::Done(Ok(()))])
            }
            Err(failure) => {
                tx.rollback().await.map_err(|e| map_db_error(&e))?;
                Ok(vec![failure.into_outcome()])
            }
        };
    }
    let mut outcomes = Vec::with_capacity(jobs.len());
    // Whether savepoint `job` holds a finished job's changes (then it is
    // released and set again before the next job). After a rollback to it
    // the savepoint still exists, empty, and is reused as it is.
    let mut savepoint_dirty = false;
    batch(&tx, GROUP_START).await?;
    for job in jobs {
        if savepoint_dirty {
            batch(&tx, "RELEASE SAVEPOINT job; SAVEPOINT job").await?;
        }
        let before = audit.len();
        match run_job(&tx, job, &mut audit).await {
            Ok(()) => {
                savepoint_dirty = true;
                outcomes.push(Outcome::Done(Ok(())));
            }
            Err(failure) => {
                batch(&tx, "ROLLBACK TO SAVEPOINT job").await?;
                audit.truncate(before);
                savepoint_dirty = false;
                outcomes.push(failure.into_outcome());
            }
        }
    }
    append_audit(&tx, &audit).await?;
    tx.commit().await.map_err(|e| map_db_error(&e))?;
    Ok(outcomes)
}

/// Seals `records` after the last audit entry and inserts them in one
/// statement. Audit appends are serialised by one transaction-scoped lock,
/// taken as the transaction's last step: a transaction holding it waits for
/// nothing but its commit, so it cannot take part in a lock cycle (and it
/// waits without the group's short lock timeout).
async fn append_audit(tx: &Transaction<'_>, records: &[&AuditRecord]) -> StoreResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    batch(tx, AUDIT_LOCK).await?;
    let mut tip = load_tip(tx).await.map_err(Failure::into_error)?;
    let n = records.len();
    let (mut idx, mut entry, mut leaf_hash, mut at) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut subject, mut user, mut token, mut action, mut facts) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for record in records {
        let (index, bytes, leaf) = tip.seal(record);
        idx.push(i64::try_from(index).map_err(|_| StoreError::Corrupt("audit index overflow".into()))?);
        entry.push(bytes);
        leaf_hash.push(leaf.to_vec());
        at.push(to_micros(record.at));
        subject.push(record.subject_id);
        user.push(record.actor.user_id);
        token.push(record.actor.token_id);
        action.push(record.action.as_str());
        facts.push(steward_audit::facts::encode(record));
    }
    let stmt = tx.prepare_cached(APPEND_AUDIT).await.map_err(|e| map_db_error(&e))?;
    tx.execute(
        &stmt,
        &[&idx, &entry, &leaf_hash, &at, &subject, &user, &token, &action, &facts],
    )
    .await
    .map_err(|e| map_db_error(&e))?;
    Ok(())
}

async fn batch(tx: &Transaction<'_>, sql: &str) -> StoreResult<()> {
    tx.batch_execute(sql).await.map_err(|e| map_db_error(&e))
}

/// Why a job failed: a rule of the store, or the database.
enum Failure {
    Store(StoreError),
    Db(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(e)
    }
}

impl Failure {
    /// Lost a lock race (deadlock, serialisation failure, lock timeout) with
    /// a concurrent transaction; trying again may succeed.
    fn is_retryable(&self) -> bool {
        match self {
            Self::Db(e) => e.code().is_some_and(|c| {
                *c == SqlState::T_R_DEADLOCK_DETECTED
                    || *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::LOCK_NOT_AVAILABLE
            }),
            Self::Store(_) => false,
        }
    }

    fn into_error(self) -> StoreError {
        match self {
            Self::Store(e) => e,
            Self::Db(e) => map_db_error(&e),
        }
    }

    fn into_outcome(self) -> Outcome {
        let retry = self.is_retryable();
        let error = self.into_error();
        if retry {
            Outcome::Retry(error)
        } else {
            Outcome::Done(Err(error))
        }
    }
}

const INSERT_CONTACT: &str = "INSERT INTO contacts \
    (subject_id, purposes, fields, created_at, updated_at, version, restricted) \
    VALUES ($1, $2, $3, $4, $5, $6, $7)";
const UPDATE_CONTACT: &str = "UPDATE contacts \
    SET purposes = $2, fields = $3, updated_at = $4, version = $5 \
    WHERE subject_id = $1 AND version = $6";
const CONTACT_EXISTS: &str = "SELECT 1 FROM contacts WHERE subject_id = $1";
const DELETE_CONTACT: &str = "DELETE FROM contacts WHERE subject_id = $1";
const LOCK_CONTACT: &str = "SELECT 1 FROM contacts WHERE subject_id = $1 FOR UPDATE";
const ACTIVE_HOLD: &str = "SELECT 1 FROM legal_holds WHERE subject_id = $1 AND released_at IS NULL";
const DELETE_INTERACTIONS_OF: &str = "DELETE FROM interactions WHERE subject_id = $1";
const DELETE_BUNDLES_OF: &str = "DELETE FROM export_bundles WHERE subject_id = $1";
const DELETE_TERMS: &str = "DELETE FROM contact_terms WHERE subject_id = $1";
/// All of a contact's terms in one statement (one round trip).
const INSERT_TERMS: &str = "INSERT INTO contact_terms (term, subject_id, is_unique) \
    SELECT x.term, $1, x.is_unique FROM UNNEST($2::bytea[], $3::bool[]) AS x(term, is_unique)";
const INSERT_ORGANIZATION: &str = "INSERT INTO organizations \
    (id, name, domain, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)";
const INSERT_DEAL: &str = "INSERT INTO deals \
    (id, title, stage, amount_minor, currency, organization_id, subject_id, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const INSERT_INTERACTION: &str = "INSERT INTO interactions \
    (id, subject_id, kind, occurred_at, created_at, summary) VALUES ($1, $2, $3, $4, $5, $6)";
const INSERT_USER: &str = "INSERT INTO users \
    (id, username, role, password_hash, disabled, created_at, failed_logins, locked_until) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const INSERT_TOKEN: &str = "INSERT INTO tokens \
    (id, user_id, kind, name, hash, created_at, expires_at, revoked_at, last_used_at, purpose, mfa) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
/// A second revocation keeps the first instant.
const REVOKE_TOKEN: &str = "UPDATE tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1";
const REVOKE_USER_TOKENS: &str = "UPDATE tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL";
const TOUCH_TOKEN: &str = "UPDATE tokens SET last_used_at = $2 WHERE id = $1";
const UPDATE_USER: &str = "UPDATE users SET role = COALESCE($2, role), disabled = COALESCE($3, disabled), \
    password_hash = COALESCE($4, password_hash) WHERE id = $1";
const SET_LOGIN_FAILURES: &str = "UPDATE users SET failed_logins = $2, locked_until = $3 WHERE id = $1";
const PUT_CREDENTIAL: &str = "INSERT INTO credentials \
    (id, user_id, kind, secret, confirmed, last_step, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
    ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, kind = EXCLUDED.kind, secret = EXCLUDED.secret, \
    confirmed = EXCLUDED.confirmed, last_step = EXCLUDED.last_step, created_at = EXCLUDED.created_at";
const ACCEPT_CREDENTIAL_STEP: &str = "UPDATE credentials SET last_step = $2, confirmed = TRUE \
    WHERE id = $1 AND (last_step IS NULL OR last_step < $2)";
const CREDENTIAL_EXISTS: &str = "SELECT 1 FROM credentials WHERE id = $1";
const DELETE_CREDENTIALS: &str = "DELETE FROM credentials WHERE user_id = $1";
const DELETE_RECOVERY_CODES: &str = "DELETE FROM recovery_codes WHERE user_id = $1";
/// All of the codes in one statement; a repeated hash counts once.
const INSERT_RECOVERY_CODES: &str = "INSERT INTO recovery_codes (user_id, code_hash) \
    SELECT $1, x.code_hash FROM UNNEST($2::bytea[]) AS x(code_hash) ON CONFLICT DO NOTHING";
const USE_RECOVERY_CODE: &str = "UPDATE recovery_codes SET used_at = $3 \
    WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL";
const INSERT_TRAINING: &str = "INSERT INTO training_records \
    (id, user_id, course, completed_on, expires_on, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
const PUT_SETTING: &str = "INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3) \
    ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at";
const SET_RESTRICTED: &str = "UPDATE contacts SET restricted = $2 WHERE subject_id = $1";

/// Runs a cached prepared statement; the number of rows it touched.
async fn exec(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, Failure> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.execute(&stmt, params).await?)
}

/// Like [`exec`], but touching no row is [`StoreError::NotFound`].
async fn exec_found(tx: &Transaction<'_>, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<(), Failure> {
    if exec(tx, sql, params).await? == 0 {
        return Err(Failure::Store(StoreError::NotFound));
    }
    Ok(())
}

async fn put_legal_hold(tx: &Transaction<'_>, h: &crate::LegalHoldRow) -> Result<(), Failure> {
    exec(
        tx,
        "INSERT INTO legal_holds (id, subject_id, reason, created_by, created_at, released_at, released_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET reason = EXCLUDED.reason, \
         released_at = EXCLUDED.released_at, released_by = EXCLUDED.released_by",
        &[
            &h.id,
            h.subject_id.as_uuid(),
            &h.reason,
            &h.created_by.map(|u| *u.as_uuid()),
            &to_micros(h.created_at),
            &h.released_at.map(to_micros),
            &h.released_by.map(|u| *u.as_uuid()),
        ],
    )
    .await
    .map(|_| ())
}

/// Applies `job`'s ops, then waits for its gate (if any) to pass.
async fn run_job<'a>(tx: &Transaction<'_>, job: &'a Job, audit: &mut Vec<&'a AuditRecord>) -> Result<(), Failure> {
    apply(tx, &job.ops, audit).await?;
    if job.ops.iter().any(WriteOp::changes_access) {
        // Delivered at COMMIT (and dropped with a rolled-back savepoint) to
        // every Steward process listening: see `super::listen_for_access`.
        tx.batch_execute(&format!("NOTIFY {}", super::ACCESS_CHANNEL)).await?;
    }
    match &job.gate {
        Some(gate) => passed(gate).await.map_err(Failure::Store),
        None => Ok(()),
    }
}

/// Applies one job's ops in order, collecting its audit records for
/// [`append_audit`]; the caller rolls back on `Err`.
async fn apply<'a>(tx: &Transaction<'_>, ops: &'a [WriteOp], audit: &mut Vec<&'a AuditRecord>) -> Result<(), Failure> {
    for op in ops {
        if let WriteOp::AppendAudit(record) = op {
            audit.push(record);
            continue;
        }
        apply_op(tx, op).await?;
    }
    Ok(())
}

/// The lock that serialises audit appends across writers and processes.
const AUDIT_LOCK: &str = "SET LOCAL lock_timeout = 0; SELECT pg_advisory_xact_lock(7365776172640001)";

/// The position after the last audit entry, read in the current transaction.
async fn load_tip(tx: &Transaction<'_>) -> Result<AuditTip, Failure> {
    let stmt = tx
        .prepare_cached("SELECT idx, leaf_hash FROM audit_log ORDER BY idx DESC LIMIT 1")
        .await?;
    match tx.query_opt(&stmt, &[]).await? {
        None => Ok(AuditTip { next: 0, prev: [0; 32] }),
        Some(row) => {
            let idx: i64 = row.try_get(0)?;
            let leaf: Vec<u8> = row.try_get(1)?;
            let corrupt = |m: &str| Failure::Store(StoreError::Corrupt(m.into()));
            Ok(AuditTip {
                next: u64::try_from(idx).map_err(|_| corrupt("negative audit index"))? + 1,
                prev: leaf.try_into().map_err(|_| corrupt("bad leaf hash"))?,
            })
        }
    }
}

async fn apply_op(tx: &Transaction<'_>, op: &WriteOp) -> Result<(), Failure> {
    match op {
        WriteOp::InsertContact { row, terms } => {
            let purposes = join_purposes(&row.purposes);
            let blob = fields::encode(&row.fields);
            exec(
                tx,
                INSERT_CONTACT,
                &[
                    row.subject_id.as_uuid(),
                    &purposes,
                    &blob,
                    &to_micros(row.created_at),
                    &to_micros(row.updated_at),
                    &row.version,
                    &row.restricted,
                ],
            )
            .await?;
            insert_terms(tx, row.subject_id.as_uuid(), terms).await
        }
        WriteOp::UpdateContact {
            row,
            expected_version,
            terms,
        } => {
            let id = row.subject_id.as_uuid();
            let purposes = join_purposes(&row.purposes);
            let blob = fields::encode(&row.fields);
            let updated = exec(
                tx,
                UPDATE_CONTACT,
                &[
                    id,
                    &purposes,
                    &blob,
                    &to_micros(row.updated_at),
                    &row.version,
                    expected_version,
                ],
            )
            .await?;
            if updated == 0 {
                let stmt = tx.prepare_cached(CONTACT_EXISTS).await?;
                let exists = tx.query_opt(&stmt, &[id]).await?.is_some();
                return Err(Failure::Store(if exists {
                    StoreError::VersionConflict
                } else {
                    StoreError::NotFound
                }));
            }
            exec(tx, DELETE_TERMS, &[id]).await?;
            insert_terms(tx, id, terms).await
        }
        WriteOp::RequireNotErased { identifier_hash } => {
            let proof = tx
                .query_opt(ERASURE_PROOF, &[identifier_hash])
                .await
                .map_err(Failure::from)?;
            match proof {
                None => Ok(()),
                Some(r) => Err(Failure::Store(StoreError::Erased {
                    request_id: r
                        .try_get(0)
                        .map_err(|_| Failure::Store(StoreError::Corrupt("bad erasure proof".into())))?,
                    at: crate::from_micros(
                        r.try_get(1)
                            .map_err(|_| Failure::Store(StoreError::Corrupt("bad erasure proof".into())))?,
                    )
                    .map_err(Failure::Store)?,
                })),
            }
        }
        WriteOp::RequireNoLegalHold { subject_id } => {
            // Locks the contact's row: a hold being placed waits for this
            // transaction (and sees its deletion), or this one waits for the
            // hold and then sees it.
            exec(tx, LOCK_CONTACT, &[subject_id.as_uuid()]).await?;
            if exec(tx, ACTIVE_HOLD, &[subject_id.as_uuid()]).await? > 0 {
                return Err(Failure::Store(StoreError::LegalHold));
            }
            Ok(())
        }
        WriteOp::DeleteSubjectRecords { subject_id } => {
            if exec(tx, CONTACT_EXISTS, &[subject_id.as_uuid()]).await? == 0 {
                return Err(Failure::Store(StoreError::NotFound));
            }
            exec(tx, DELETE_INTERACTIONS_OF, &[subject_id.as_uuid()]).await?;
            exec(tx, DELETE_BUNDLES_OF, &[subject_id.as_uuid()]).await?;
            Ok(())
        }
        WriteOp::DeleteContact { subject_id } => {
            // Cascades to contact_terms and interactions; unlinks deals.
            if exec(tx, DELETE_CONTACT, &[subject_id.as_uuid()]).await? == 0 {
                return Err(Failure::Store(StoreError::NotFound));
            }
            Ok(())
        }
        WriteOp::InsertOrganization(o) => exec(
            tx,
            INSERT_ORGANIZATION,
            &[
                o.id.as_uuid(),
                &o.name,
                &o.domain,
                &to_micros(o.created_at),
                &to_micros(o.updated_at),
            ],
        )
        .await
        .map(|_| ()),
        WriteOp::InsertDeal(d) => exec(
            tx,
            INSERT_DEAL,
            &[
                d.id.as_uuid(),
                &d.title,
                &d.stage.as_str(),
                &d.amount.map(|a| a.minor()),
                &d.currency.as_ref().map(|c| c.as_str()),
                &d.organization_id.map(|o| *o.as_uuid()),
                &d.contact_id.map(|c| *c.as_uuid()),
                &to_micros(d.created_at),
                &to_micros(d.updated_at),
            ],
        )
        .await
        .map(|_| ()),
        WriteOp::InsertInteraction(i) => exec(
            tx,
            INSERT_INTERACTION,
            &[
                i.id.as_uuid(),
                i.subject_id.as_uuid(),
                &i.kind.as_str(),
                &to_micros(i.occurred_at),
                &to_micros(i.created_at),
                &i.summary,
            ],
        )
        .await
        .map(|_| ()),
        WriteOp::InsertUser(u) => exec(
            tx,
            INSERT_USER,
            &[
                u.id.as_uuid(),
                &u.username,
                &u.role,
                &u.password_hash,
                &u.disabled,
                &to_micros(u.created_at),
                &failures_to_db(u.failed_logins).map_err(Failure::Store)?,
                &u.locked_until.map(to_micros),
            ],
        )
        .await
        .map(|_| ()),
        WriteOp::InsertToken(t) => exec(
            tx,
            INSERT_TOKEN,
            &[
                t.id.as_uuid(),
                t.user_id.as_uuid(),
                &t.kind.as_str(),
                &t.name,
                &t.hash,
                &to_micros(t.created_at),
                &t.expires_at.map(to_micros),
                &t.revoked_at.map(to_micros),
                &t.last_used_at.map(to_micros),
                &t.purpose,
                &t.mfa,
            ],
        )
        .await
        .map(|_| ()),
        WriteOp::RevokeToken { id, at } => exec_found(tx, REVOKE_TOKEN, &[id.as_uuid(), &to_micros(*at)]).await,
        WriteOp::RevokeUserTokens { user_id, at } => {
            exec(tx, REVOKE_USER_TOKENS, &[user_id.as_uuid(), &to_micros(*at)])
                .await
                .map(|_| ())
        }
        WriteOp::TouchToken { id, at } => exec(tx, TOUCH_TOKEN, &[id.as_uuid(), &to_micros(*at)])
            .await
            .map(|_| ()),
        WriteOp::UpdateUser {
            id,
            role,
            disabled,
            password_hash,
        } => exec_found(tx, UPDATE_USER, &[id.as_uuid(), role, disabled, password_hash]).await,
        WriteOp::SetLoginFailures {
            user_id,
            failed_logins,
            locked_until,
        } => {
            let failed = failures_to_db(*failed_logins).map_err(Failure::Store)?;
            exec_found(
                tx,
                SET_LOGIN_FAILURES,
                &[user_id.as_uuid(), &failed, &locked_until.map(to_micros)],
            )
            .await
        }
        WriteOp::PutCredential(c) => {
            let step = c.last_step.map(step_to_db).transpose().map_err(Failure::Store)?;
            exec(
                tx,
                PUT_CREDENTIAL,
                &[
                    &c.id,
                    c.user_id.as_uuid(),
                    &c.kind,
                    &c.secret,
                    &c.confirmed,
                    &step,
                    &to_micros(c.created_at),
                ],
            )
            .await
            .map(|_| ())
        }
        WriteOp::AcceptCredentialStep { id, step } => {
            let step = step_to_db(*step).map_err(Failure::Store)?;
            if exec(tx, ACCEPT_CREDENTIAL_STEP, &[id, &step]).await? == 0 {
                let stmt = tx.prepare_cached(CREDENTIAL_EXISTS).await?;
                let exists = tx.query_opt(&stmt, &[id]).await?.is_some();
                return Err(Failure::Store(if exists {
                    StoreError::VersionConflict
                } else {
                    StoreError::NotFound
                }));
            }
            Ok(())
        }
        WriteOp::DeleteCredentials { user_id } => {
            exec(tx, DELETE_CREDENTIALS, &[user_id.as_uuid()]).await?;
            exec(tx, DELETE_RECOVERY_CODES, &[user_id.as_uuid()]).await.map(|_| ())
        }
        WriteOp::ReplaceRecoveryCodes { user_id, hashes } => {
            exec(tx, DELETE_RECOVERY_CODES, &[user_id.as_uuid()]).await?;
            if hashes.is_empty() {
                return Ok(());
            }
            let hashes: Vec<&[u8]> = hashes.iter().map(Vec::as_slice).collect();
            exec(tx, INSERT_RECOVERY_CODES, &[user_id.as_uuid(), &hashes])
                .await
                .map(|_| ())
        }
        WriteOp::UseRecoveryCode { user_id, hash, at } => {
            exec_found(tx, USE_RECOVERY_CODE, &[user_id.as_uuid(), hash, &to_micros(*at)]).await
        }
        WriteOp::InsertScimToken(t) => exec(
            tx,
            super::scim::INSERT_TOKEN,
            &[
                &t.id,
                &t.name,
                &t.default_role,
                &t.hash,
                &to_micros(t.created_at),
                &t.revoked_at.map(to_micros),
                &t.last_used_at.map(to_micros),
            ],
        )
        .await
        .map(|_| ()),
        WriteOp::RevokeScimToken { id, at } => exec_found(tx, super::scim::REVOKE_TOKEN, &[id, &to_micros(*at)]).await,
        WriteOp::TouchScimToken { id, at } => exec(tx, super::scim::TOUCH_TOKEN, &[id, &to_micros(*at)])
            .await
            .map(|_| ()),
        WriteOp::PutScimUser(u) => exec(
            tx,
            super::scim::PUT_USER,
            &[
                u.user_id.as_uuid(),
                &u.external_id_hash,
                &u.profile,
                &to_micros(u.updated_at),
                &u.deleted_at.map(to_micros),
            ],
        )
        .await
        .map(|_| ()),
        WriteOp::InsertTraining(t) => exec(
            tx,
            INSERT_TRAINING,
            &[
                &t.id,
                t.user_id.as_uuid(),
                &t.course,
                &t.completed_on,
                &t.expires_on,
                &to_micros(t.created_at),
            ],
        )
        .await
        .map(|_| ()),
        WriteOp::PutSetting { name, value } => exec(tx, PUT_SETTING, &[name, value, &now_micros()]).await.map(|_| ()),
        WriteOp::InsertNotice(n) => exec(
            tx,
            "INSERT INTO notices (id, version, language, text, text_hash, material, published_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&n.id, &n.version, &n.language, &n.text, &n.text_hash, &n.material, &to_micros(n.published_at)],
        )
        .await
        .map(|_| ()),
        WriteOp::InsertConsent(c) => exec(
            tx,
            "INSERT INTO consents (id, subject_id, purpose, status, recorded_at, source, notice_version, notice_hash, evidence, \
             recorded_by, expires_at, confirmation_hash, confirmation_expires_at, confirmed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            &[
                &c.id,
                c.subject_id.as_uuid(),
                &c.purpose,
                &c.status,
                &to_micros(c.recorded_at),
                &c.source,
                &c.notice_version,
                &c.notice_hash,
                &c.evidence,
                &c.recorded_by.map(|u| *u.as_uuid()),
                &c.expires_at.map(to_micros),
                &c.confirmation_hash,
                &c.confirmation_expires_at.map(to_micros),
                &c.confirmed_at.map(to_micros),
            ],
        )
        .await
        .map(|_| ()),
        WriteOp::SetConsentState { subject_id, consented } => {
            let encoded = crate::encode_consented(consented);
            exec_found(tx, "UPDATE contacts SET consented = $2 WHERE subject_id = $1", &[subject_id.as_uuid(), &encoded]).await
        }
        WriteOp::UseConsentConfirmation { hash, at } => {
            exec_found(
                tx,
                "UPDATE consents SET confirmed_at = $2, confirmation_hash = NULL WHERE confirmation_hash = $1 AND confirmed_at IS NULL",
                &[hash, &to_micros(*at)],
            )
            .await
        }
        WriteOp::PutDsr(d) => exec(
            tx,
            "INSERT INTO dsr (id, kind, regime, subject_id, identifier_hash, status, received_at, received_offset, due_at, \
             extensions, extension_reason, verified_at, verified_by, verification_method, completed_at, outcome, details, created_by, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) \
             ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, regime = EXCLUDED.regime, subject_id = EXCLUDED.subject_id, \
             identifier_hash = EXCLUDED.identifier_hash, status = EXCLUDED.status, received_at = EXCLUDED.received_at, \
             received_offset = EXCLUDED.received_offset, due_at = EXCLUDED.due_at, extensions = EXCLUDED.extensions, \
             extension_reason = EXCLUDED.extension_reason, verified_at = EXCLUDED.verified_at, verified_by = EXCLUDED.verified_by, \
             verification_method = EXCLUDED.verification_method, completed_at = EXCLUDED.completed_at, outcome = EXCLUDED.outcome, \
             details = EXCLUDED.details, created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at",
            &[
                &d.id,
                &d.kind,
                &d.regime,
                &d.subject_id.map(|s| *s.as_uuid()),
                &d.identifier_hash,
                &d.status,
                &to_micros(d.received_at),
                &i64::from(d.received_offset),
                &to_micros(d.due_at),
                &i64::from(d.extensions),
                &d.extension_reason,
                &d.verified_at.map(to_micros),
                &d.verified_by.map(|u| *u.as_uuid()),
                &d.verification_method,
                &d.completed_at.map(to_micros),
                &d.outcome,
                &d.details,
                &d.created_by.map(|u| *u.as_uuid()),
                &to_micros(d.created_at),
                &to_micros(d.updated_at),
            ],
        )
        .await
        .map(|_| ()),
        WriteOp::PutLegalHold(h) => {
            exec(tx, LOCK_CONTACT, &[h.subject_id.as_uuid()]).await?;
            put_legal_hold(tx, h).await
        }
        WriteOp::PutExportBundle(b) => exec(
            tx,
            "INSERT INTO export_bundles (dsr_id, subject_id, sealed, created_at, expires_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (dsr_id) DO UPDATE SET sealed = EXCLUDED.sealed, created_at = EXCLUDED.created_at, \
             expires_at = EXCLUDED.expires_at",
            &[&b.dsr_id, b.subject_id.as_uuid(), &b.sealed, &to_micros(b.created_at), &to_micros(b.expires_at)],
        )
        .await
        .map(|_| ()),
        WriteOp::MarkOutboxSent { id, at } => {
            exec_found(tx, "UPDATE outbox SET sent_at = $2 WHERE id = $1 AND sent_at IS NULL", &[id, &to_micros(*at)]).await
        }
        WriteOp::PutOutbox(m) => exec(
            tx,
            "INSERT INTO outbox (id, kind, message, created_at, sent_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET sent_at = EXCLUDED.sent_at",
            &[&m.id, &m.kind, &m.message, &to_micros(m.created_at), &m.sent_at.map(to_micros)],
        )
        .await
        .map(|_| ()),
        WriteOp::PutDsrVerification(v) => exec(
            tx,
            "INSERT INTO dsr_verifications (token_hash, dsr_id, expires_at, used_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (token_hash) DO UPDATE SET used_at = EXCLUDED.used_at",
            &[&v.token_hash, &v.dsr_id, &to_micros(v.expires_at), &v.used_at.map(to_micros)],
        )
        .await
        .map(|_| ()),
        WriteOp::PutDrpAgent(a) => exec(
            tx,
            "INSERT INTO drp_agents (id, name, verify_key, token_hash, token_issued_at, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, \
             verify_key = EXCLUDED.verify_key, token_hash = EXCLUDED.token_hash, \
             token_issued_at = EXCLUDED.token_issued_at, created_by = EXCLUDED.created_by, created_at = EXCLUDED.created_at",
            &[
                &a.id,
                &a.name,
                &a.verify_key,
                &a.token_hash,
                &a.token_issued_at.map(to_micros),
                &a.created_by.map(|u| *u.as_uuid()),
                &to_micros(a.created_at),
            ],
        )
        .await
        .map(|_| ()),
        WriteOp::DeleteDrpAgent { id } => exec_found(tx, "DELETE FROM drp_agents WHERE id = $1", &[id]).await,
        WriteOp::InsertDrpRequest(r) => exec(
            tx,
            "INSERT INTO drp_requests (dsr_id, agent_id, exercise, agent_request_id, attested, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &r.dsr_id,
                &r.agent_id,
                &r.exercise,
                &r.agent_request_id,
                &r.attested.join(","),
                &to_micros(r.created_at),
            ],
        )
        .await
        .map(|_| ()),
        WriteOp::InsertDrpNonce { digest, expires_at } => exec(
            tx,
            "INSERT INTO drp_nonces (digest, expires_at) VALUES ($1, $2)",
            &[digest, &to_micros(*expires_at)],
        )
        .await
        .map(|_| ()),
        WriteOp::PurgeDrpNonces { before } => exec(
            tx,
            "DELETE FROM drp_nonces WHERE expires_at < $1",
            &[&to_micros(*before)],
        )
        .await
        .map(|_| ()),
        WriteOp::PutPendingConsent(p) => exec(
            tx,
            "INSERT INTO pending_consents (token_hash, id, sealed, created_at, expires_at, used_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &p.token_hash,
                &p.id,
                &p.sealed,
                &to_micros(p.created_at),
                &to_micros(p.expires_at),
                &p.used_at.map(to_micros),
            ],
        )
        .await
        .map(|_| ()),
        WriteOp::UsePendingConsent { token_hash, at } => {
            exec_found(
                tx,
                "UPDATE pending_consents SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
                &[token_hash, &to_micros(*at)],
            )
            .await
        }
        WriteOp::PurgeSentOutbox { before } => exec(
            tx,
            "DELETE FROM outbox WHERE sent_at IS NOT NULL AND created_at < $1",
            &[&to_micros(*before)],
        )
        .await
        .map(|_| ()),
        WriteOp::PurgePendingConsents { before } => exec(
            tx,
            "DELETE FROM pending_consents WHERE expires_at < $1",
            &[&to_micros(*before)],
        )
        .await
        .map(|_| ()),
        WriteOp::PutIncident(i) => exec(
            tx,
            "INSERT INTO incidents (id, status, aware_at, due_at, created_at, updated_at, sealed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, aware_at = EXCLUDED.aware_at, \
             due_at = EXCLUDED.due_at, created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, \
             sealed = EXCLUDED.sealed",
            &[
                &i.id,
                &i.status,
                &to_micros(i.aware_at),
                &i.due_at.map(to_micros),
                &to_micros(i.created_at),
                &to_micros(i.updated_at),
                &i.sealed,
            ],
        )
        .await
        .map(|_| ()),
        // The foreign key refuses an entry of an unknown incident.
        WriteOp::AppendIncidentEntry(e) => exec(
            tx,
            "INSERT INTO incident_entries (id, incident_id, kind, at, sealed) VALUES ($1, $2, $3, $4, $5)",
            &[&e.id, &e.incident_id, &e.kind, &to_micros(e.at), &e.sealed],
        )
        .await
        .map(|_| ()),
        WriteOp::InsertErasureProof { identifier_hash, request_id, at } => exec(
            tx,
            "INSERT INTO erasure_proofs (identifier_hash, request_id, erased_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[identifier_hash, request_id, &to_micros(*at)],
        )
        .await
        .map(|_| ()),
        WriteOp::SetRestricted { subject_id, restricted } => {
            exec_found(tx, SET_RESTRICTED, &[subject_id.as_uuid(), restricted]).await
        }
        WriteOp::PurgeRecords { kind, ids } => {
            let stmts = crate::retention::purge_sql(*kind, |n| format!("${n}"));
            for id in ids {
                for sql in &stmts {
                    exec(tx, sql, &[id]).await?;
                }
            }
            Ok(())
        }
        WriteOp::UnlinkDeals { ids } => {
            let sql = crate::retention::unlink_deal_sql(|n| format!("${n}"));
            for id in ids {
                exec(tx, &sql, &[id]).await?;
            }
            Ok(())
        }
        WriteOp::CountRetention(r) => {
            let count = crate::retention::count_to_db(r.count).map_err(Failure::Store)?;
            exec(
                tx,
                &crate::retention::count_retention_sql(|n| format!("${n}")),
                &[&r.run_id, &r.rule, &r.record, &r.action, &to_micros(r.at), &count],
            )
            .await
            .map(|_| ())
        }
        WriteOp::AddAggregate(a) => {
            let count = crate::retention::count_to_db(a.count).map_err(Failure::Store)?;
            exec(
                tx,
                &crate::retention::add_aggregate_sql(|n| format!("${n}")),
                &[&a.record, &a.period, &a.attribute, &a.value, &count],
            )
            .await
            .map(|_| ())
        }
        // Subject keys live in the vault (see `crate::vault`), which
        // `PgStore::write` updates around this transaction. Here a new key
        // only needs its contact, locked against deletion until the commit.
        WriteOp::InsertSubjectKey { subject_id, .. } => {
            let found = tx
                .query_opt(CONTACT_FOR_KEY, &[subject_id.as_uuid()])
                .await
                .map_err(Failure::from)?;
            if found.is_none() {
                return Err(Failure::Store(StoreError::MissingReference));
            }
            Ok(())
        }
        WriteOp::RewrapSubjectKey { .. } | WriteOp::DestroySubjectKey { .. } => Ok(()),
        // Collected by `apply` and appended by `append_audit`.
        WriteOp::AppendAudit(_) => Ok(()),
        WriteOp::PutTreeHead(h) => {
            let size = i64::try_from(h.tree_size)
                .map_err(|_| Failure::Store(StoreError::Corrupt("tree size overflow".into())))?;
            exec(
                tx,
                PUT_TREE_HEAD,
                &[&size, &h.timestamp_ms, &h.root.as_slice(), &h.signature, &h.key_id],
            )
            .await
            .map(|_| ())
        }
        WriteOp::PutInstanceKey { name, key } => exec(
            tx,
            PUT_INSTANCE_KEY,
            &[
                name,
                &i64::from(key.version),
                &key.master_key_id,
                &key.wrapped,
                &now_micros(),
            ],
        )
        .await
        .map(|_| ()),
    }
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// All of a group's audit entries in one statement (one round trip).
const APPEND_AUDIT: &str = "INSERT INTO audit_log \
    (idx, entry, leaf_hash, at, subject_id, actor_user, actor_token, action, facts) \
    SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::bytea[], $4::bigint[], $5::uuid[], $6::uuid[], $7::uuid[], $8::text[], \
    $9::bytea[])";
const PUT_TREE_HEAD: &str = "INSERT INTO audit_tree_heads (tree_size, timestamp_ms, root, signature, key_id) \
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tree_size) DO NOTHING";
const ERASURE_PROOF: &str = "SELECT request_id, erased_at FROM erasure_proofs WHERE identifier_hash = $1";
const CONTACT_FOR_KEY: &str = "SELECT 1 FROM contacts WHERE subject_id = $1 FOR KEY SHARE";
const PUT_INSTANCE_KEY: &str = "INSERT INTO instance_keys (name, key_version, master_key_id, wrapped, created_at) \
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET key_version = EXCLUDED.key_version, \
    master_key_id = EXCLUDED.master_key_id, wrapped = EXCLUDED.wrapped";

async fn insert_terms(tx: &Transaction<'_>, subject: &uuid::Uuid, terms: &[IndexTerm]) -> Result<(), Failure> {
    if terms.is_empty() {
        return Ok(());
    }
    let terms = crate::dedup_terms(terms);
    let values: Vec<&[u8]> = terms.iter().map(|t| t.term.as_slice()).collect();
    let unique: Vec<bool> = terms.iter().map(|t| t.unique).collect();
    exec(tx, INSERT_TERMS, &[subject, &values, &unique]).await.map(|_| ())
}
