//! The subject-key vault: where the PostgreSQL backend keeps the subjects'
//! wrapped data keys, outside the database.
//!
//! Crypto-shredding destroys a subject's data key so that every copy of the
//! subject's ciphertext becomes unreadable. In PostgreSQL a deleted row is
//! not gone: it stays in dead tuples until VACUUM, in the WAL until the
//! segment is recycled, in WAL archives and base backups for as long as
//! they are kept. Had the wrapped key lived there, its leftovers (still
//! wrapped under a live master key) would have kept the ciphertext readable.
//! So the keys live in this small SQLite file in the data dir instead
//! (`DATA_DIR/subject-keys.db`, mode 0600, next to the master key), with
//! `secure_delete` on and its WAL checkpointed and truncated after every
//! destruction, as the SQLite backend does for its own database. PostgreSQL,
//! its WAL and its backups then hold only ciphertext.
//!
//! Writes are durable (`synchronous=FULL`: a lost key would be lost data)
//! and ordered around the PostgreSQL transaction by [`PgStore`]'s `write`:
//! keys are stored (and rewrapped) before the transaction that needs them
//! commits and taken back if it fails; keys are destroyed only after the
//! transaction that deletes or shreds the subject has committed, so a
//! legal hold or any other failure inside it keeps the key.
//!
//! [`PgStore`]: crate::postgres::PgStore

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use steward_domain::SubjectId;

use crate::sqlite::ReadPool;
use crate::{StoreError, StoreResult, StoredKey};

/// Read connections kept open.
const READ_POOL: usize = 4;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS subject_keys (
    subject_id    BLOB PRIMARY KEY,
    key_version   INTEGER NOT NULL,
    master_key_id TEXT NOT NULL,
    wrapped       BLOB NOT NULL,
    created_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subject_keys_master ON subject_keys(master_key_id, subject_id);
PRAGMA user_version = 1;
";

fn err(what: &str, e: &rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("subject-key vault: {what}: {e}"))
}

/// The key changes one write makes, in the order they are applied.
#[derive(Debug, Default)]
pub(crate) struct KeyChanges {
    /// Keys to store (`Duplicate` if the subject has one).
    pub insert: Vec<(SubjectId, StoredKey)>,
    /// Keys to rewrap: (subject, the master key it must be under now, new).
    pub rewrap: Vec<(SubjectId, String, StoredKey)>,
    /// Keys that must exist now and are destroyed after the commit.
    pub shred: Vec<SubjectId>,
    /// Keys destroyed after the commit if they exist (deleted contacts).
    pub drop: Vec<SubjectId>,
}

impl KeyChanges {
    pub fn of(ops: &[crate::WriteOp]) -> Self {
        let mut c = Self::default();
        for op in ops {
            match op {
                crate::WriteOp::InsertSubjectKey { subject_id, key } => c.insert.push((*subject_id, key.clone())),
                crate::WriteOp::RewrapSubjectKey {
                    subject_id,
                    from_master,
                    key,
                } => c.rewrap.push((*subject_id, from_master.clone(), key.clone())),
                crate::WriteOp::DestroySubjectKey { subject_id } => c.shred.push(*subject_id),
                crate::WriteOp::DeleteContact { subject_id } => c.drop.push(*subject_id),
                _ => {}
            }
        }
        c
    }

    pub fn is_empty(&self) -> bool {
        !self.needs_prepare() && self.drop.is_empty()
    }

    /// Whether anything must happen in the vault before the transaction.
    pub fn needs_prepare(&self) -> bool {
        !(self.insert.is_empty() && self.rewrap.is_empty() && self.shred.is_empty())
    }
}

/// One write to the vault, run in a savepoint of a group commit; returns a
/// count and whether it destroyed keys (the WAL is then truncated).
type Work = Box<dyn FnOnce(&Connection) -> StoreResult<(usize, bool)> + Send>;

struct Job {
    work: Work,
    reply: tokio::sync::oneshot::Sender<StoreResult<usize>>,
}

/// Most jobs one group commit takes.
const MAX_GROUP: usize = 256;

pub struct KeyVault {
    sender: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: ReadPool,
}

impl Drop for KeyVault {
    fn drop(&mut self) {
        if let Ok(mut s) = self.sender.lock() {
            s.take();
        }
        if let Some(handle) = self.writer.lock().ok().and_then(|mut w| w.take()) {
            let _ = handle.join();
        }
    }
}

impl KeyVault {
    /// Opens (creating if needed, mode 0600) the vault at `path` and starts
    /// its writer thread, which group-commits concurrent writes (one fsync
    /// for all of them).
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Backend(format!("subject-key vault: cannot create {}: {e}", dir.display())))?;
        }
        crate::sqlite::create_private_file(path)?;
        let conn = Connection::open(path).map_err(|e| err("cannot open", &e))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(|e| err("cannot configure", &e))?;
        // Switching to WAL needs the file to itself for a moment: when
        // several processes open the vault at once, SQLite may answer "busy"
        // without waiting (to avoid a deadlock), so the switch is retried.
        let mut attempt = 0;
        let mode: String = loop {
            match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)) {
                Ok(mode) => break mode,
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy && attempt < 200 =>
                {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10 + attempt % 7));
                }
                Err(e) => return Err(err("cannot enable WAL", &e)),
            }
        };
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "subject-key vault: could not enable WAL (journal mode is {mode})"
            )));
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;")
            .map_err(|e| err("cannot configure", &e))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| err("cannot create the schema", &e))?;
        let (sender, rx) = std::sync::mpsc::channel::<Job>();
        let writer = std::thread::Builder::new()
            .name("steward-key-vault".into())
            .spawn(move || writer_loop(conn, &rx))
            .map_err(|e| StoreError::Backend(format!("subject-key vault: cannot start its writer: {e}")))?;
        Ok(Self {
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
            readers: ReadPool::new(path, READ_POOL),
        })
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        self.readers.with(|conn| f(conn).map_err(|e| err("cannot read", &e)))
    }

    /// Runs `work` in the writer's next group commit and waits for it.
    async fn write(&self, work: Work) -> StoreResult<usize> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        {
            let guard = self
                .sender
                .lock()
                .map_err(|_| StoreError::Backend("subject-key vault poisoned".into()))?;
            let sender = guard
                .as_ref()
                .ok_or_else(|| StoreError::Backend("the subject-key vault is closed".into()))?;
            sender
                .send(Job { work, reply })
                .map_err(|_| StoreError::Backend("the subject-key vault is closed".into()))?;
        }
        rx.await
            .map_err(|_| StoreError::Backend("the subject-key vault's writer stopped".into()))?
    }

    /// The wrapped key of each of `subjects` that has one, in their order.
    pub fn get_many(&self, subjects: &[SubjectId]) -> StoreResult<Vec<Option<StoredKey>>> {
        if subjects.is_empty() {
            return Ok(Vec::new());
        }
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT master_key_id, key_version, wrapped FROM subject_keys WHERE subject_id = ?1")?;
            subjects
                .iter()
                .map(|s| {
                    stmt.query_row(params![s.as_uuid().as_bytes().as_slice()], |r| {
                        Ok(StoredKey {
                            master_key_id: r.get(0)?,
                            version: r.get(1)?,
                            wrapped: r.get(2)?,
                        })
                    })
                    .optional()
                })
                .collect()
        })
    }

    /// Keys wrapped under `master_key_id`, by subject id, after `after`.
    pub fn list_under(
        &self,
        master_key_id: &str,
        after: Option<SubjectId>,
        limit: u32,
    ) -> StoreResult<Vec<(SubjectId, StoredKey)>> {
        let after = after.map_or([0u8; 16], |s| *s.as_uuid().as_bytes());
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT subject_id, master_key_id, key_version, wrapped FROM subject_keys \
                 WHERE master_key_id = ?1 AND subject_id > ?2 ORDER BY subject_id LIMIT ?3",
            )?;
            let rows = stmt.query_map(
                params![
                    master_key_id,
                    after.as_slice(),
                    i64::from(limit.clamp(1, crate::MAX_PAGE))
                ],
                |r| {
                    let id: Vec<u8> = r.get(0)?;
                    let id = uuid::Uuid::from_slice(&id).map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, e.into())
                    })?;
                    Ok((
                        SubjectId::from_uuid(id),
                        StoredKey {
                            master_key_id: r.get(1)?,
                            version: r.get(2)?,
                            wrapped: r.get(3)?,
                        },
                    ))
                },
            )?;
            rows.collect()
        })
    }

    /// Subjects whose key was stored before `before` (µs since the epoch),
    /// by subject id, after `after`.
    pub fn stored_before(&self, before: i64, after: Option<SubjectId>, limit: u32) -> StoreResult<Vec<SubjectId>> {
        let after = after.map_or([0u8; 16], |s| *s.as_uuid().as_bytes());
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT subject_id FROM subject_keys WHERE subject_id > ?1 AND created_at < ?2 \
                 ORDER BY subject_id LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![after.as_slice(), before, i64::from(limit)], |r| {
                let id: Vec<u8> = r.get(0)?;
                uuid::Uuid::from_slice(&id)
                    .map(SubjectId::from_uuid)
                    .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, e.into()))
            })?;
            rows.collect()
        })
    }

    /// How many keys are wrapped under another master key than `master_key_id`.
    pub fn count_not_under(&self, master_key_id: &str) -> StoreResult<u64> {
        self.read(|conn| {
            conn.query_row(
                "SELECT count(*) FROM subject_keys WHERE master_key_id <> ?1",
                params![master_key_id],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| u64::try_from(n).unwrap_or(0))
    }

    /// Before the database transaction: checks that the keys to shred
    /// exist, rewraps and stores keys, all or nothing.
    pub(crate) async fn prepare(&self, c: Arc<KeyChanges>, now_micros: i64) -> StoreResult<()> {
        if !c.needs_prepare() {
            return Ok(());
        }
        self.write(Box::new(move |tx| prepare_in(tx, &c, now_micros).map(|()| (0, false))))
            .await
            .map(|_| ())
    }

    /// After a failed database transaction: takes back the keys `prepare`
    /// stored (a rewrap stays: the same key under the newer master key).
    pub(crate) async fn undo(&self, c: &KeyChanges) {
        if c.insert.is_empty() {
            return;
        }
        let ids: Vec<SubjectId> = c.insert.iter().map(|(s, _)| *s).collect();
        if let Err(e) = self.destroy(ids).await {
            tracing::warn!(error = %e, "could not take back the keys of a failed write");
        }
    }

    /// After the committed database transaction: destroys the keys of
    /// shredded and deleted subjects.
    pub(crate) async fn finish(&self, c: &KeyChanges) -> StoreResult<()> {
        let ids: Vec<SubjectId> = c.shred.iter().chain(&c.drop).copied().collect();
        self.destroy(ids).await
    }

    /// Deletes the keys of `subjects` (those that exist); once any is
    /// deleted the WAL is checkpointed and truncated before this returns,
    /// so that no copy of them stays in the vault's files.
    pub async fn destroy(&self, subjects: Vec<SubjectId>) -> StoreResult<()> {
        if subjects.is_empty() {
            return Ok(());
        }
        self.write(Box::new(move |tx| {
            let mut n = 0;
            for s in &subjects {
                n += tx
                    .execute(
                        "DELETE FROM subject_keys WHERE subject_id = ?1",
                        params![s.as_uuid().as_bytes().as_slice()],
                    )
                    .map_err(|e| err("cannot destroy a key", &e))?;
            }
            Ok((n, n > 0))
        }))
        .await
        .map(|_| ())
    }

    /// Stores keys that are not there yet (the move out of PostgreSQL);
    /// returns how many were new.
    pub async fn import(&self, keys: Vec<(SubjectId, StoredKey, i64)>) -> StoreResult<usize> {
        self.write(Box::new(move |tx| {
            let mut n = 0;
            for (s, key, created) in &keys {
                n += insert_key(tx, "INSERT OR IGNORE", *s, key, *created)
                    .map_err(|e| err("cannot import a key", &e))?;
            }
            Ok((n, false))
        }))
        .await
    }
}

/// Stores one key; `verb` is `INSERT` or `INSERT OR IGNORE`.
fn insert_key(tx: &Connection, verb: &str, s: SubjectId, key: &StoredKey, created: i64) -> rusqlite::Result<usize> {
    tx.prepare_cached(&format!(
        "{verb} INTO subject_keys (subject_id, key_version, master_key_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4, ?5)"
    ))?
    .execute(params![
        s.as_uuid().as_bytes().as_slice(),
        key.version,
        key.master_key_id,
        key.wrapped,
        created
    ])
}

fn prepare_in(tx: &Connection, c: &KeyChanges, now_micros: i64) -> StoreResult<()> {
    for s in &c.shred {
        let found: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM subject_keys WHERE subject_id = ?1",
                params![s.as_uuid().as_bytes().as_slice()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| err("cannot read", &e))?;
        if found.is_none() {
            return Err(StoreError::NotFound);
        }
    }
    for (s, from, key) in &c.rewrap {
        let n = tx
            .execute(
                "UPDATE subject_keys SET key_version = ?2, master_key_id = ?3, wrapped = ?4 \
                 WHERE subject_id = ?1 AND master_key_id = ?5",
                params![
                    s.as_uuid().as_bytes().as_slice(),
                    key.version,
                    key.master_key_id,
                    key.wrapped,
                    from
                ],
            )
            .map_err(|e| err("cannot rewrap", &e))?;
        if n == 0 {
            return Err(StoreError::VersionConflict);
        }
    }
    for (s, key) in &c.insert {
        match insert_key(tx, "INSERT", *s, key, now_micros) {
            Ok(_) => {}
            Err(rusqlite::Error::SqliteFailure(f, _)) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                return Err(StoreError::Duplicate)
            }
            Err(e) => return Err(err("cannot store a key", &e)),
        }
    }
    Ok(())
}

/// The vault's writer: takes every queued job (up to [`MAX_GROUP`]), runs
/// each in its own savepoint of one transaction, commits once (one fsync
/// for all), truncates the WAL if any destroyed a key, then answers them.
fn writer_loop(mut conn: Connection, rx: &std::sync::mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let mut replies = Vec::with_capacity(jobs.len());
        let mut results: Vec<StoreResult<(usize, bool)>> = Vec::with_capacity(jobs.len());
        let committed = (|| {
            let mut tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| err("cannot begin", &e))?;
            for job in jobs {
                replies.push(job.reply);
                let result = match tx.savepoint() {
                    Ok(sp) => {
                        let r = (job.work)(&sp);
                        match r {
                            Ok(v) => sp.commit().map(|()| v).map_err(|e| err("cannot commit", &e)),
                            // dropping the savepoint rolls it back
                            Err(e) => Err(e),
                        }
                    }
                    Err(e) => Err(err("cannot begin", &e)),
                };
                results.push(result);
            }
            tx.commit().map_err(|e| err("cannot commit", &e))
        })();
        let destroyed = results.iter().any(|r| matches!(r, Ok((_, true))));
        let truncated = if committed.is_ok() && destroyed {
            truncate_wal(&conn)
        } else {
            Ok(())
        };
        for (i, reply) in replies.into_iter().enumerate() {
            let result = match (&committed, results.get(i)) {
                (Err(e), _) => Err(StoreError::Backend(e.to_string())),
                (Ok(()), Some(Ok((n, true)))) => truncated.clone().map(|()| *n),
                (Ok(()), Some(Ok((n, false)))) => Ok(*n),
                (Ok(()), Some(Err(e))) => Err(e.clone()),
                (Ok(()), None) => Err(StoreError::Backend("subject-key vault: a write was lost".into())),
            };
            let _ = reply.send(result);
        }
    }
}

fn truncate_wal(conn: &Connection) -> StoreResult<()> {
    match crate::sqlite::try_truncate_wal(conn) {
        Ok(true) => Ok(()),
        Ok(false) => Err(StoreError::Backend(
            "subject-key vault: the WAL could not be truncated after a key was destroyed".into(),
        )),
        Err(e) => Err(err("cannot checkpoint", &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(m: &str, v: u8) -> StoredKey {
        StoredKey {
            master_key_id: m.into(),
            version: u32::from(v),
            wrapped: vec![0xA5, v, 0x5A, v, 0xC3, 0x3C, 0x99, 0x66],
        }
    }

    #[tokio::test]
    async fn a_destroyed_key_leaves_no_copy_in_the_vault_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("subject-keys.db");
        let vault = KeyVault::open(&path).unwrap();
        let (a, b) = (SubjectId::new(), SubjectId::new());
        let changes = KeyChanges {
            insert: vec![(a, key("m1", 1)), (b, key("m1", 2))],
            ..KeyChanges::default()
        };
        vault.prepare(Arc::new(changes), 0).await.unwrap();
        assert_eq!(
            vault.get_many(&[a, b]).unwrap(),
            vec![Some(key("m1", 1)), Some(key("m1", 2))]
        );
        let again = KeyChanges {
            insert: vec![(a, key("m1", 3))],
            ..KeyChanges::default()
        };
        assert!(matches!(
            vault.prepare(Arc::new(again), 0).await,
            Err(StoreError::Duplicate)
        ));

        vault.destroy(vec![a]).await.unwrap();
        assert_eq!(vault.get_many(&[a, b]).unwrap(), vec![None, Some(key("m1", 2))]);
        let needle = key("m1", 1).wrapped;
        let kept = key("m1", 2).wrapped;
        let mut seen_kept = false;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_slice()),
                "a destroyed key survives in a vault file"
            );
            seen_kept |= bytes.windows(kept.len()).any(|w| w == kept.as_slice());
        }
        assert!(seen_kept, "the search would find a key that is there");

        // A shred of a missing key is refused before anything happens.
        let shred = KeyChanges {
            shred: vec![a],
            ..KeyChanges::default()
        };
        assert!(matches!(
            vault.prepare(Arc::new(shred), 0).await,
            Err(StoreError::NotFound)
        ));
    }
}
