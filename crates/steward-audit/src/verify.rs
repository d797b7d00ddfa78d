//! Verification of a whole stored log (`steward audit verify`).
//!
//! Entries are streamed in stored order; for each one the verifier checks,
//! in this order, and stops at the first problem:
//!
//! 1. its stored position follows the previous one (no gap, no repeat);
//! 2. the SHA-256 leaf hash of its stored bytes equals its stored leaf hash;
//! 3. the bytes are a canonical entry ([`decode_entry`](crate::decode_entry)
//!    would accept them: parsed, re-encoded and compared byte for byte);
//! 4. the index written inside the entry equals its position;
//! 5. its `prev` equals the leaf hash of the entry before it (zeros for 0);
//!
//! and then every signed tree head whose size has just been reached must
//! carry a valid signature by the audit key and a root equal to the root
//! recomputed over the entries so far. Heads larger than the log fail at the
//! end. The hash chain (5) names the entry where a change, insertion,
//! deletion or move happened; the signed heads make the whole prefix they
//! cover tamper-evident, including the last entry (which no later `prev`
//! protects).

use std::time::Instant;

use crate::entry::{check_canonical, seal_entry, Actor, ActorKind, AuditRecord, DecodeError, Outcome};
use crate::merkle::{leaf_hash, Hash, TreeBuilder, EMPTY_ROOT};
use crate::sign::{SignedTreeHead, SigningKey};

/// The first problem found in a log. Each message is one sentence naming
/// the entry or the tree head.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("entry 0 is missing (the log starts at entry {found})")]
    MissingStart { found: u64 },
    #[error("entry {index} is missing (the log jumps from {} to {found})", index - 1)]
    Missing { index: u64, found: u64 },
    #[error("entry {found} appears again after entry {} (stored positions must increase one by one)", expected - 1)]
    Repeated { found: u64, expected: u64 },
    #[error("entry {index} was changed: its bytes do not match its leaf hash")]
    Changed { index: u64 },
    #[error("entry {index} is not a canonical audit entry: {reason}")]
    Malformed { index: u64, reason: DecodeError },
    #[error("entry {index} is out of place: it says it is entry {claims}")]
    OutOfPlace { index: u64, claims: u64 },
    #[error("entry 0 does not start the log (its previous hash is not all zeros)")]
    BadStart,
    #[error("entry {index} does not follow entry {} (its previous-hash link is broken)", index - 1)]
    BrokenLink { index: u64 },
    #[error("the tree head for size {size} has an invalid signature")]
    HeadBadSignature { size: u64 },
    #[error("the signed tree head for size {size} does not match the log")]
    HeadMismatch { size: u64 },
    #[error("a tree head claims size {size} but the log has only {entries} entries")]
    HeadBeyondLog { size: u64, entries: u64 },
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries checked.
    pub entries: u64,
    /// Signed tree heads checked (all that were given).
    pub heads_checked: usize,
    /// The root over all entries.
    pub root: Hash,
    /// The tree size of `root` (equal to `entries`).
    pub size: u64,
    /// The largest size covered by a signed tree head (0 if none): entries
    /// after it are protected by the hash chain only, and the last entry not
    /// at all until the next head is signed.
    pub signed_size: u64,
}

/// Streams a stored log and checks it (see the module docs).
pub struct LogVerifier {
    heads: Vec<SignedTreeHead>,
    next_head: usize,
    public_key: [u8; 32],
    tree: TreeBuilder,
    prev: Hash,
    buf: Vec<u8>,
}

impl LogVerifier {
    /// A verifier for a log with these signed tree heads (any order) by the
    /// key `public_key`.
    #[must_use]
    pub fn new(mut heads: Vec<SignedTreeHead>, public_key: [u8; 32]) -> Self {
        heads.sort_by_key(|h| h.tree_size);
        Self {
            heads,
            next_head: 0,
            public_key,
            tree: TreeBuilder::new(),
            prev: [0; 32],
            buf: Vec::with_capacity(1024),
        }
    }

    /// Checks the heads for the current tree size.
    fn check_heads(&mut self) -> Result<(), VerifyError> {
        let size = self.tree.size();
        let mut root = None;
        while let Some(head) = self.heads.get(self.next_head).filter(|h| h.tree_size == size) {
            if !head.verify(&self.public_key) {
                return Err(VerifyError::HeadBadSignature { size });
            }
            let root = *root.get_or_insert_with(|| self.tree.root());
            if head.root != root {
                return Err(VerifyError::HeadMismatch { size });
            }
            self.next_head += 1;
        }
        Ok(())
    }

    /// Feeds the next entry in stored order: its stored position, its stored
    /// bytes and its stored leaf hash.
    pub fn push(&mut self, stored_index: u64, bytes: &[u8], stored_leaf_hash: &Hash) -> Result<(), VerifyError> {
        let expected = self.tree.size();
        if expected == 0 {
            self.check_heads()?;
        }
        if stored_index != expected {
            return Err(if stored_index < expected {
                VerifyError::Repeated {
                    found: stored_index,
                    expected,
                }
            } else if expected == 0 {
                VerifyError::MissingStart { found: stored_index }
            } else {
                VerifyError::Missing {
                    index: expected,
                    found: stored_index,
                }
            });
        }
        let index = expected;
        let hash = leaf_hash(bytes);
        if hash != *stored_leaf_hash {
            return Err(VerifyError::Changed { index });
        }
        let checked =
            check_canonical(bytes, &mut self.buf).map_err(|reason| VerifyError::Malformed { index, reason })?;
        if checked.index != index {
            return Err(VerifyError::OutOfPlace {
                index,
                claims: checked.index,
            });
        }
        if checked.prev != self.prev {
            return Err(if index == 0 {
                VerifyError::BadStart
            } else {
                VerifyError::BrokenLink { index }
            });
        }
        self.prev = hash;
        self.tree.push(hash);
        self.check_heads()
    }

    /// Ends the stream: fails if a head is larger than the log.
    pub fn finish(mut self) -> Result<VerifyReport, VerifyError> {
        if self.tree.size() == 0 {
            self.check_heads()?;
        }
        let entries = self.tree.size();
        if let Some(head) = self.heads.get(self.next_head) {
            return Err(VerifyError::HeadBeyondLog {
                size: head.tree_size,
                entries,
            });
        }
        let root = if entries == 0 { EMPTY_ROOT } else { self.tree.root() };
        Ok(VerifyReport {
            entries,
            heads_checked: self.heads.len(),
            root,
            size: entries,
            signed_size: self.heads.last().map_or(0, |h| h.tree_size),
        })
    }
}

/// A synthetic record of one of four everyday shapes (by `i % 4`): a user
/// reading a contact, a token searching, a refused anonymous login, and a
/// retention erasure by the system.
fn synthetic_record(i: u64, base: chrono::DateTime<chrono::Utc>) -> AuditRecord {
    let id = |k: u64| uuid::Uuid::from_u64_pair(0x0190_a5b4_7c3e_7000, 0x8000_0000_0000_0000 | (i << 4) | k);
    let at = base + chrono::Duration::milliseconds(i64::try_from(i).unwrap_or(i64::MAX));
    let user = |kind| Actor {
        kind,
        user_id: Some(id(1)),
        token_id: (kind == ActorKind::Token).then(|| id(3)),
        username: Some("alice".into()),
        role: Some("sales".into()),
    };
    match i % 4 {
        0 => {
            let mut r = AuditRecord::new(at, user(ActorKind::User), "contact.read", Outcome::Ok);
            r.purpose = Some("sales".into());
            r.subject_id = Some(id(2));
            r.record_ids = vec![id(2)];
            r.fields = vec!["email".into(), "given_name".into()];
            r.request_id = Some(format!("{i:016x}"));
            r.client = Some("192.0.2.10".into());
            r
        }
        1 => {
            let mut r = AuditRecord::new(at, user(ActorKind::Token), "contact.search", Outcome::Ok);
            r.purpose = Some("sales".into());
            r.fields = vec!["email".into()];
            r
        }
        2 => {
            let mut r = AuditRecord::new(at, Actor::anonymous(), "auth.login", Outcome::Denied);
            r.reason = Some("bad credentials".into());
            r.client = Some("192.0.2.10".into());
            r
        }
        _ => {
            let mut r = AuditRecord::new(at, Actor::system(), "contact.erase", Outcome::Ok);
            r.purpose = Some("retention".into());
            r.subject_id = Some(id(2));
            r
        }
    }
}

/// Builds `n` synthetic entries (four everyday shapes, 300 to 530 bytes,
/// about 400 on average) with a signed head every 100,000 entries and at the
/// end, verifies them with [`LogVerifier`] and returns the verification
/// speed in entries per second (building the log is not timed). Panics only
/// if the synthetic log fails to verify, which would be a bug here.
#[must_use]
pub fn bench_verify(n: usize) -> f64 {
    let Ok(key) = SigningKey::generate() else {
        return 0.0;
    };
    let base = chrono::DateTime::from_timestamp(1_769_851_800, 0).unwrap_or_default();
    let mut log = Vec::with_capacity(n);
    let mut heads = Vec::new();
    let mut tree = TreeBuilder::new();
    let mut prev = [0u8; 32];
    let n = n as u64;
    for i in 0..n {
        let (bytes, hash) = seal_entry(i, &prev, &synthetic_record(i, base));
        tree.push(hash);
        prev = hash;
        log.push((bytes, hash));
        if (i + 1) % 100_000 == 0 || i + 1 == n {
            heads.push(SignedTreeHead::sign(&key, i + 1, 0, tree.root()));
        }
    }
    let start = Instant::now();
    let mut v = LogVerifier::new(heads, key.public_key());
    for (i, (bytes, hash)) in (0..).zip(&log) {
        if let Err(e) = v.push(i, bytes, hash) {
            panic!("the synthetic audit log does not verify: {e}");
        }
    }
    if let Err(e) = v.finish() {
        panic!("the synthetic audit log does not verify: {e}");
    }
    let secs = start.elapsed().as_secs_f64();
    if secs > 0.0 {
        n as f64 / secs
    } else {
        f64::INFINITY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_runs() {
        assert!(bench_verify(300) > 0.0);
        let base = chrono::DateTime::from_timestamp(1_769_851_800, 0).unwrap();
        let sizes: Vec<usize> = (0..4)
            .map(|i| seal_entry(i, &[0; 32], &synthetic_record(i, base)).0.len())
            .collect();
        let mean = sizes.iter().sum::<usize>() / 4;
        assert!(
            sizes.iter().all(|s| (250..=600).contains(s)) && (350..=450).contains(&mean),
            "{sizes:?}"
        );
    }

    /// Not a check: prints the figure. Run with
    /// `cargo test --release -p steward-audit --lib -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a test"]
    fn bench_figure() {
        let base = chrono::DateTime::from_timestamp(1_769_851_800, 0).unwrap();
        let sizes: Vec<usize> = (0..4)
            .map(|i| seal_entry(i, &[0; 32], &synthetic_record(i, base)).0.len())
            .collect();
        println!("entry sizes {sizes:?}");
        for _ in 0..5 {
            println!("LogVerifier: {:.0} entries/s", bench_verify(1_000_000));
        }
    }

    #[test]
    fn empty_log() {
        let key = SigningKey::generate().unwrap();
        let head = SignedTreeHead::sign(&key, 0, 0, EMPTY_ROOT);
        let report = LogVerifier::new(vec![head.clone()], key.public_key()).finish().unwrap();
        assert_eq!(report.root, EMPTY_ROOT);
        assert_eq!(report.heads_checked, 1);
        let mut bad = head;
        bad.root = [1; 32];
        bad.signature = key.sign(&bad.signed_bytes()).to_vec();
        assert_eq!(
            LogVerifier::new(vec![bad], key.public_key()).finish(),
            Err(VerifyError::HeadMismatch { size: 0 })
        );
    }
}
