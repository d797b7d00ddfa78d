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
//!
//! # Checkpoints
//!
//! A verification ends with a [`Checkpoint`]: the size it reached, the root,
//! the last leaf hash and the Merkle frontier, with the time of the last
//! verification that started from entry 0, signed by the audit key. A later
//! verification can [`LogVerifier::resume`] from it and check only the
//! entries appended since (and every head signed since). The frontier is
//! not signed: it must recompute the signed root. What a resumed
//! verification cannot see is a change to an entry *before* the
//! checkpoint; that is why the checkpoint says when the whole log last
//! verified, and why `steward audit verify` always starts from entry 0.
//!
//! The signed message is [`checkpoint_bytes`]:
//!
//! ```text
//! b"steward-audit-checkpoint-v1\n"  28 bytes
//! size                              8 bytes, unsigned, big-endian
//! full_at_ms                        8 bytes, signed, big-endian
//! verified_at_ms                    8 bytes, signed, big-endian
//! root                              32 bytes
//! last_leaf                         32 bytes (zeros for an empty log)
//! ```

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::entry::{check_canonical, seal_entry, Actor, ActorKind, AuditRecord, DecodeError, Outcome};
use crate::merkle::{leaf_hash, Hash, TreeBuilder, EMPTY_ROOT};
use crate::sign::{b64, hex_hash, hex_hashes, verify_signature, SignedTreeHead, SigningKey};

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
    #[error("the verification checkpoint at size {size} is not signed by the audit key or does not match its root")]
    CheckpointInvalid { size: u64 },
    #[error("the log no longer ends its verified prefix of {size} entries the way it did (entry {} was changed or removed)", size - 1)]
    CheckpointMismatch { size: u64 },
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
    /// Where this verification started: 0, or the size of the checkpoint it
    /// resumed from.
    pub resumed_from: u64,
    /// The leaf hash of the last entry (zeros for an empty log).
    pub last_leaf: Hash,
    /// The Merkle frontier over all entries ([`TreeBuilder::frontier`]).
    pub frontier: Vec<Hash>,
}

/// The domain-separation prefix of a verification checkpoint.
pub const CHECKPOINT_PREFIX: &[u8] = b"steward-audit-checkpoint-v1\n";

/// The exact bytes a checkpoint signature covers (see the module docs).
#[must_use]
pub fn checkpoint_bytes(size: u64, full_at_ms: i64, verified_at_ms: i64, root: &Hash, last_leaf: &Hash) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHECKPOINT_PREFIX.len() + 88);
    out.extend_from_slice(CHECKPOINT_PREFIX);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&full_at_ms.to_be_bytes());
    out.extend_from_slice(&verified_at_ms.to_be_bytes());
    out.extend_from_slice(root);
    out.extend_from_slice(last_leaf);
    out
}

/// A signed record that the first `size` entries verified, from which a
/// later verification may resume (see the module docs). Serialised with
/// hashes as lower-case hex and the signature as standard base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub size: u64,
    #[serde(with = "hex_hash")]
    pub root: Hash,
    #[serde(with = "hex_hash")]
    pub last_leaf: Hash,
    #[serde(with = "hex_hashes")]
    pub frontier: Vec<Hash>,
    /// When the last verification that started from entry 0 ran (ms since
    /// the Unix epoch); resumed verifications carry it forward.
    pub full_at_ms: i64,
    /// When this checkpoint's verification ran.
    pub verified_at_ms: i64,
    #[serde(with = "b64")]
    pub signature: Vec<u8>,
    pub key_id: String,
}

impl Checkpoint {
    /// The checkpoint at the end of a successful verification.
    #[must_use]
    pub fn sign(key: &SigningKey, report: &VerifyReport, full_at_ms: i64, verified_at_ms: i64) -> Self {
        let msg = checkpoint_bytes(report.size, full_at_ms, verified_at_ms, &report.root, &report.last_leaf);
        Self {
            size: report.size,
            root: report.root,
            last_leaf: report.last_leaf,
            frontier: report.frontier.clone(),
            full_at_ms,
            verified_at_ms,
            signature: key.sign(&msg).to_vec(),
            key_id: key.key_id(),
        }
    }

    /// Whether the signature is valid for `public_key` and the frontier
    /// recomputes the signed root.
    #[must_use]
    pub fn verify(&self, public_key: &[u8; 32]) -> bool {
        let msg = checkpoint_bytes(
            self.size,
            self.full_at_ms,
            self.verified_at_ms,
            &self.root,
            &self.last_leaf,
        );
        verify_signature(public_key, &msg, &self.signature)
            && TreeBuilder::from_frontier(self.size, self.frontier.clone())
                .is_some_and(|t| if self.size == 0 { EMPTY_ROOT } else { t.root() } == self.root)
    }
}

/// Streams a stored log and checks it (see the module docs).
pub struct LogVerifier {
    heads: Vec<SignedTreeHead>,
    next_head: usize,
    public_key: [u8; 32],
    tree: TreeBuilder,
    prev: Hash,
    buf: Vec<u8>,
    /// The size verification started from, and the heads below it (not
    /// checked again).
    start: u64,
    skipped: usize,
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
            start: 0,
            skipped: 0,
        }
    }

    /// A verifier that continues from `checkpoint` (its signature and root
    /// checked here): the next entry pushed must be entry `checkpoint.size`;
    /// heads below that size are not checked again, heads at it are checked
    /// against the checkpoint's root.
    ///
    /// # Errors
    ///
    /// [`VerifyError::CheckpointInvalid`] if the checkpoint is not signed by
    /// `public_key` or its frontier does not recompute its root.
    pub fn resume(
        checkpoint: &Checkpoint,
        heads: Vec<SignedTreeHead>,
        public_key: [u8; 32],
    ) -> Result<Self, VerifyError> {
        let size = checkpoint.size;
        let invalid = VerifyError::CheckpointInvalid { size };
        if !checkpoint.verify(&public_key) {
            return Err(invalid);
        }
        let tree = TreeBuilder::from_frontier(size, checkpoint.frontier.clone()).ok_or(invalid)?;
        let mut v = Self::new(heads, public_key);
        v.skipped = v.heads.iter().take_while(|h| h.tree_size < size).count();
        v.next_head = v.skipped;
        v.tree = tree;
        v.prev = checkpoint.last_leaf;
        v.start = size;
        if size > 0 {
            v.check_heads()?;
        }
        Ok(v)
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
            heads_checked: self.heads.len() - self.skipped,
            root,
            size: entries,
            signed_size: self.heads.last().map_or(0, |h| h.tree_size),
            resumed_from: self.start,
            last_leaf: self.prev,
            frontier: self.tree.frontier().to_vec(),
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

    /// A log of `n` synthetic entries with heads at `heads_at`.
    fn log(key: &SigningKey, n: u64, heads_at: &[u64]) -> (Vec<(Vec<u8>, Hash)>, Vec<SignedTreeHead>) {
        let base = chrono::DateTime::from_timestamp(1_769_851_800, 0).unwrap();
        let (mut log, mut heads, mut tree, mut prev) = (Vec::new(), Vec::new(), TreeBuilder::new(), [0u8; 32]);
        for i in 0..n {
            let (bytes, hash) = seal_entry(i, &prev, &synthetic_record(i, base));
            tree.push(hash);
            prev = hash;
            log.push((bytes, hash));
            if heads_at.contains(&(i + 1)) {
                heads.push(SignedTreeHead::sign(key, i + 1, 0, tree.root()));
            }
        }
        (log, heads)
    }

    fn run(mut v: LogVerifier, log: &[(Vec<u8>, Hash)], from: u64) -> Result<VerifyReport, VerifyError> {
        for (i, (bytes, hash)) in (from..).zip(&log[usize::try_from(from).unwrap()..]) {
            v.push(i, bytes, hash)?;
        }
        v.finish()
    }

    #[test]
    fn resumes_from_a_checkpoint() {
        let key = SigningKey::generate().unwrap();
        let (log, heads) = log(&key, 40, &[10, 23, 40]);
        // The first 23 entries verify in full; the checkpoint is made there.
        let first = run(LogVerifier::new(heads[..2].to_vec(), key.public_key()), &log[..23], 0).unwrap();
        assert_eq!((first.size, first.resumed_from, first.heads_checked), (23, 0, 2));
        assert_eq!(first.last_leaf, log[22].1);
        let cp = Checkpoint::sign(&key, &first, 1_000, 1_000);
        assert!(cp.verify(&key.public_key()));
        let json = serde_json::to_string(&cp).unwrap();
        assert_eq!(serde_json::from_str::<Checkpoint>(&json).unwrap(), cp);

        // Resumed: only entries 23.. and the head at 40 (and the one at 23) are checked.
        let v = LogVerifier::resume(&cp, heads.clone(), key.public_key()).unwrap();
        let whole = run(v, &log, 23).unwrap();
        let full = run(LogVerifier::new(heads.clone(), key.public_key()), &log, 0).unwrap();
        assert_eq!(
            (whole.root, whole.size, whole.frontier.clone()),
            (full.root, full.size, full.frontier)
        );
        assert_eq!((whole.resumed_from, whole.heads_checked), (23, 2));

        // A change after the checkpoint is found.
        let mut changed = log.clone();
        changed[30].0[40] ^= 1;
        let v = LogVerifier::resume(&cp, heads.clone(), key.public_key()).unwrap();
        assert_eq!(run(v, &changed, 23), Err(VerifyError::Changed { index: 30 }));
        // The first entry pushed must be the checkpoint's size.
        let mut v = LogVerifier::resume(&cp, heads.clone(), key.public_key()).unwrap();
        assert_eq!(
            v.push(24, &log[24].0, &log[24].1),
            Err(VerifyError::Missing { index: 23, found: 24 })
        );
        // A checkpoint whose size or frontier was edited, or that another key signed, is refused.
        let mut forged = cp.clone();
        forged.size = 30;
        assert!(!forged.verify(&key.public_key()));
        let mut forged = cp.clone();
        forged.frontier[0] = [7; 32];
        assert_eq!(
            LogVerifier::resume(&forged, heads.clone(), key.public_key()).err(),
            Some(VerifyError::CheckpointInvalid { size: 23 })
        );
        let other = SigningKey::generate().unwrap();
        assert!(!Checkpoint::sign(&other, &first, 1_000, 1_000).verify(&key.public_key()));
        // A head at the checkpoint's size that disagrees with it fails at once.
        let mut bad = heads[1].clone();
        bad.root = [9; 32];
        bad.signature = key.sign(&bad.signed_bytes()).to_vec();
        assert_eq!(
            LogVerifier::resume(&cp, vec![bad], key.public_key()).err(),
            Some(VerifyError::HeadMismatch { size: 23 })
        );
    }
}
