//! The read-audit spool: how a read is audited without waiting for a
//! database commit.
//!
//! A read's audit records are written (one `write(2)`, no fsync) to an
//! append-only spool file before the read's result is returned, and queued
//! for the writer thread, which seals them into the Merkle log together
//! with the spool position reached (`audit_spool`): with its next write,
//! when a few thousand have gathered, when anyone reads the audit log, and
//! at least every second.
//! The file has the same durability as a WAL commit under
//! `synchronous=NORMAL`: it survives a crash of the process, not a power
//! cut. When a store opens, every spool file no live process holds (each
//! process keeps an exclusive lock on its own) is imported from the
//! recorded position onwards and removed, so no audited read is lost.
//!
//! Anyone who reads the audit log first waits for the queue to be
//! committed (`SqliteStore::flush_audit`), so a read whose response was
//! sent is always visible to a later audit query. The records hold no
//! personal data (see `steward_audit::AuditRecord`).
//!
//! Frame: length (u32, little-endian) ‖ the record as a canonical audit
//! entry at index 0 after a zero hash (`steward_audit::seal_entry`; files
//! of earlier versions hold the record as serde JSON, which is still read)
//! ‖ the first 8 bytes of SHA-256(0x00 ‖ body). A short or damaged
//! frame ends the file (a torn tail after a power cut).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension};
use steward_audit::AuditRecord;

use crate::{AuditTip, StoreError, StoreResult};

/// A spool file is replaced by a fresh one once it holds this many bytes
/// (and its records are committed).
const ROTATE_BYTES: u64 = 8 << 20;
const EXT: &str = "spool";

/// Records taken from the queue for one commit.
#[derive(Default)]
pub(crate) struct Batch {
    pub records: Vec<AuditRecord>,
    /// The position each spool file reaches once `records` are committed.
    pub marks: Vec<(String, u64)>,
    /// Files whose every record is in `records`: removed after the commit.
    pub retired: Vec<PathBuf>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.marks.is_empty() && self.retired.is_empty()
    }

    /// Appends a later batch (a failed commit is retried with the next one).
    pub fn absorb(&mut self, later: Batch) {
        self.records.extend(later.records);
        for (name, end) in later.marks {
            match self.marks.iter_mut().find(|(n, _)| *n == name) {
                Some(m) => m.1 = end,
                None => self.marks.push((name, end)),
            }
        }
        self.retired.extend(later.retired);
    }
}

struct Current {
    file: File,
    name: String,
    len: u64,
    queued: Vec<AuditRecord>,
}

pub(crate) struct Spool {
    dir: PathBuf,
    current: Mutex<Option<Current>>,
}

fn io_err(what: &str, e: &std::io::Error) -> StoreError {
    StoreError::Backend(format!("audit spool: {what}: {e}"))
}

/// The spool directory of the database at `db`.
pub(crate) fn dir_of(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(".spool");
    db.with_file_name(name)
}

fn open_new(dir: &Path) -> StoreResult<Current> {
    let name = format!("{}.{EXT}", uuid::Uuid::now_v7().simple());
    let mut opts = OpenOptions::new();
    opts.append(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let file = opts
        .open(dir.join(&name))
        .map_err(|e| io_err("cannot create a spool file", &e))?;
    file.try_lock()
        .map_err(|e| StoreError::Backend(format!("audit spool: cannot lock a new spool file: {e}")))?;
    Ok(Current {
        file,
        name,
        len: 0,
        queued: Vec::new(),
    })
}

fn frame(record: &AuditRecord, out: &mut Vec<u8>) -> StoreResult<()> {
    // The canonical encoding is hand-written and about twice as fast as
    // serde's, and its leaf hash is the frame's checksum.
    let (body, sum) = steward_audit::seal_entry(0, &[0; 32], record);
    let len = u32::try_from(body.len()).map_err(|_| StoreError::Backend("audit spool: record too large".into()))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&sum[..8]);
    Ok(())
}

fn parse_body(body: &[u8]) -> Option<AuditRecord> {
    match steward_audit::decode_entry(body) {
        Ok(entry) => Some(entry.record),
        Err(_) => serde_json::from_slice::<AuditRecord>(body).ok(),
    }
}

/// The records framed in `bytes` from `from` on, with the position after
/// each; stops at the first short or damaged frame.
fn unframe(bytes: &[u8], from: u64) -> Vec<(AuditRecord, u64)> {
    let mut out = Vec::new();
    let mut at = usize::try_from(from).unwrap_or(usize::MAX);
    while let Some(head) = bytes.get(at..at + 4) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let body = at + 4;
        let (Some(json), Some(sum)) = (bytes.get(body..body + len), bytes.get(body + len..body + len + 8)) else {
            break;
        };
        if steward_audit::leaf_hash(json)[..8] != *sum {
            break;
        }
        let Some(record) = parse_body(json) else {
            break;
        };
        at = body + len + 8;
        out.push((record, at as u64));
    }
    out
}

/// Records the position committed for a spool file (in the caller's
/// transaction).
pub(crate) fn mark(conn: &Connection, name: &str, end: u64) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO audit_spool (name, committed) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET committed = excluded.committed",
    )
    .and_then(|mut s| s.execute(params![name, i64::try_from(end).unwrap_or(i64::MAX)]))
    .map_err(|e| StoreError::Backend(e.to_string()))?;
    Ok(())
}

impl Spool {
    /// Imports every spool file left by a process that is gone, then opens
    /// this process's own.
    pub fn open(db: &Path, conn: &mut Connection) -> StoreResult<Self> {
        let dir = dir_of(db);
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(&dir)
            .map_err(|e| io_err("cannot create the spool directory", &e))?;
        recover(&dir, conn)?;
        let current = open_new(&dir)?;
        Ok(Self {
            dir,
            current: Mutex::new(Some(current)),
        })
    }

    /// Writes `records` to the spool file and queues them; returns how many
    /// records were queued before and how many are queued now.
    pub fn append(&self, records: Vec<AuditRecord>) -> StoreResult<(usize, usize)> {
        let mut bytes = Vec::with_capacity(records.len() * 512);
        for r in &records {
            frame(r, &mut bytes)?;
        }
        let mut guard = self
            .current
            .lock()
            .map_err(|_| StoreError::Backend("audit spool poisoned".into()))?;
        let current = guard
            .as_mut()
            .ok_or_else(|| StoreError::Backend("the store is closed".into()))?;
        current.file.write_all(&bytes).map_err(|e| io_err("cannot write", &e))?;
        current.len += bytes.len() as u64;
        let before = current.queued.len();
        current.queued.extend(records);
        Ok((before, current.queued.len()))
    }

    /// Whether records wait to be sealed.
    pub fn has_queued(&self) -> bool {
        self.current
            .lock()
            .is_ok_and(|g| g.as_ref().is_some_and(|c| !c.queued.is_empty()))
    }

    /// Takes the queued records for the writer's next commit; starts a new
    /// spool file when this one has grown large (or on `last`, when the
    /// store closes, without a new one).
    pub fn take(&self, last: bool) -> Batch {
        let Ok(mut guard) = self.current.lock() else {
            return Batch::default();
        };
        let Some(current) = guard.as_mut() else {
            return Batch::default();
        };
        let mut batch = Batch {
            records: std::mem::take(&mut current.queued),
            marks: Vec::new(),
            retired: Vec::new(),
        };
        if !batch.records.is_empty() {
            batch.marks.push((current.name.clone(), current.len));
        }
        if last || current.len >= ROTATE_BYTES {
            let replacement = if last {
                None
            } else {
                match open_new(&self.dir) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not start a new audit spool file; keeping the current one");
                        return batch;
                    }
                }
            };
            if let Some(old) = std::mem::replace(&mut *guard, replacement) {
                batch.retired.push(self.dir.join(&old.name));
            }
        }
        batch
    }
}

/// Seals `records` into the log in the caller's transaction.
pub(crate) fn seal_all(conn: &Connection, records: &[AuditRecord], tip: &mut Option<AuditTip>) -> StoreResult<()> {
    for r in records {
        super::ops::append_audit(conn, r, tip)?;
    }
    Ok(())
}

/// Removes committed spool files and their positions (after the commit
/// that recorded them).
pub(crate) fn remove_retired(conn: &Connection, retired: &[PathBuf]) {
    for path in retired {
        if let Err(e) = std::fs::remove_file(path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(error = %e, "could not remove a committed audit spool file");
                continue;
            }
        }
        if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
            if let Err(e) = conn.execute("DELETE FROM audit_spool WHERE name = ?1", params![name]) {
                tracing::warn!(error = %e, "could not forget a removed audit spool file");
            }
        }
    }
}

/// Imports the spool files of processes that are gone.
fn recover(dir: &Path, conn: &mut Connection) -> StoreResult<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| io_err("cannot list the spool directory", &e))?;
    let mut imported = 0usize;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some(EXT) {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
            continue;
        };
        let Ok(mut file) = OpenOptions::new().read(true).write(true).open(&path) else {
            continue;
        };
        // A live process holds its own file: leave it alone.
        if file.try_lock().is_err() {
            continue;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| io_err("cannot read a spool file", &e))?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let committed: Option<i64> = tx
            .query_row(
                "SELECT committed FROM audit_spool WHERE name = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let records = unframe(&bytes, committed.map_or(0, |c| u64::try_from(c).unwrap_or(0)));
        let mut tip = None;
        for (record, _) in &records {
            super::ops::append_audit(&tx, record, &mut tip)?;
        }
        tx.execute("DELETE FROM audit_spool WHERE name = ?1", params![name])
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        tx.commit().map_err(|e| StoreError::Backend(e.to_string()))?;
        imported += records.len();
        drop(file);
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!(error = %e, "could not remove an imported audit spool file");
        }
    }
    if imported > 0 {
        tracing::info!(entries = imported, "audit entries of reads recovered from the spool");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use steward_audit::{Actor, Outcome};

    fn record(action: &str) -> AuditRecord {
        AuditRecord::new(Utc::now(), Actor::anonymous(), action, Outcome::Ok)
    }

    fn migrated(dir: &Path) -> (PathBuf, Connection) {
        let db = dir.join("steward.db");
        let mut conn = Connection::open(&db).unwrap();
        super::super::migrations::run(&mut conn).unwrap();
        (db, conn)
    }

    fn actions(conn: &Connection) -> Vec<String> {
        let mut stmt = conn.prepare("SELECT action FROM audit_log ORDER BY idx").unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[test]
    fn a_dead_process_spool_is_imported_from_its_committed_position_and_a_live_one_is_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let (db, mut conn) = migrated(tmp.path());
        let dir = dir_of(&db);
        std::fs::create_dir_all(&dir).unwrap();
        // A process died after sealing its first record but not the others.
        let mut bytes = Vec::new();
        frame(&record("contact.read"), &mut bytes).unwrap();
        let first_end = bytes.len() as u64;
        frame(&record("contact.list"), &mut bytes).unwrap();
        frame(&record("contact.search"), &mut bytes).unwrap();
        std::fs::write(dir.join("dead.spool"), &bytes).unwrap();
        mark(&conn, "dead.spool", first_end).unwrap();
        // Another process is alive and holds its file.
        let mut live = Vec::new();
        frame(&record("deal.read"), &mut live).unwrap();
        std::fs::write(dir.join("live.spool"), &live).unwrap();
        let held = File::open(dir.join("live.spool")).unwrap();
        held.try_lock().unwrap();

        let spool = Spool::open(&db, &mut conn).unwrap();
        assert_eq!(actions(&conn), ["contact.list", "contact.search"]);
        assert!(!dir.join("dead.spool").exists());
        assert!(dir.join("live.spool").exists());
        let left: i64 = conn
            .query_row("SELECT COUNT(*) FROM audit_spool WHERE name = 'dead.spool'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(left, 0);

        // This process's own records: queued, written to its file, and
        // taken for the writer with the position they reach.
        assert_eq!(spool.append(vec![record("contact.read")]).unwrap(), (0, 1));
        assert_eq!(spool.append(vec![record("contact.read")]).unwrap(), (1, 2));
        let batch = spool.take(false);
        assert_eq!(batch.records.len(), 2);
        let (name, end) = batch.marks[0].clone();
        assert_eq!(std::fs::metadata(dir.join(&name)).unwrap().len(), end);
        assert!(batch.retired.is_empty());
        // Closing retires the file.
        let last = spool.take(true);
        assert!(last.records.is_empty());
        assert_eq!(last.retired, vec![dir.join(&name)]);
        drop(held);
    }

    #[test]
    fn frames_round_trip_and_a_torn_tail_ends_the_file() {
        let mut bytes = Vec::new();
        frame(&record("contact.read"), &mut bytes).unwrap();
        let first_end = bytes.len() as u64;
        frame(&record("contact.list"), &mut bytes).unwrap();
        let all = unframe(&bytes, 0);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0.action, "contact.read");
        assert_eq!(all[0].1, first_end);
        assert_eq!(all[1].1, bytes.len() as u64);
        // From a committed position on, only the rest.
        let rest = unframe(&bytes, first_end);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].0.action, "contact.list");
        // A torn second frame is dropped, the first survives.
        let torn = &bytes[..bytes.len() - 3];
        assert_eq!(unframe(torn, 0).len(), 1);
        // A damaged byte in the second frame's JSON is caught by the checksum.
        let mut damaged = bytes.clone();
        let at = first_end as usize + 10;
        damaged[at] ^= 0x20;
        assert_eq!(unframe(&damaged, 0).len(), 1);
    }

    #[test]
    fn frames_of_earlier_versions_in_serde_json_are_still_read() {
        let mut r = record("contact.read");
        r.fields = vec!["email".into()];
        let json = serde_json::to_vec(&r).unwrap();
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&u32::try_from(json.len()).unwrap().to_le_bytes());
        bytes.extend_from_slice(&json);
        bytes.extend_from_slice(&steward_audit::leaf_hash(&json)[..8]);
        frame(&record("contact.list"), &mut bytes).unwrap();
        let all = unframe(&bytes, 0);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].0, r);
        assert_eq!(all[1].0.action, "contact.list");
    }
}
