//! `LogVerifier` against a log of 1,000 entries with signed heads at sizes
//! 10, 500 and 1000: the clean log passes, and each kind of tampering is
//! found and named.

use chrono::TimeZone;
use steward_audit::{
    leaf_hash, root_from_leaf_hashes, seal_entry, Actor, ActorKind, AuditRecord, Hash, LogVerifier, Outcome,
    SignedTreeHead, SigningKey, VerifyError, VerifyReport,
};
use uuid::Uuid;

/// A stored row: (stored position, bytes, stored leaf hash).
type Row = (u64, Vec<u8>, Hash);

fn record(i: u64) -> AuditRecord {
    let at = chrono::Utc
        .with_ymd_and_hms(2026, 1, 31, 9, 0, 0)
        .single()
        .expect("a time")
        + chrono::Duration::seconds(i as i64);
    let actor = if i.is_multiple_of(7) {
        Actor::system()
    } else {
        Actor {
            kind: ActorKind::User,
            user_id: Some(Uuid::from_u128(1 + u128::from(i % 3))),
            token_id: None,
            username: Some(format!("user{}", i % 3)),
            role: Some("sales".into()),
        }
    };
    let mut r = AuditRecord::new(
        at,
        actor,
        ["contact.read", "contact.search", "contact.create"][(i % 3) as usize],
        Outcome::Ok,
    );
    if i.is_multiple_of(5) {
        r.outcome = Outcome::Denied;
        r.reason = Some("purpose not allowed for role".into());
    }
    r.purpose = Some("sales".into());
    r.subject_id = Some(Uuid::from_u128(1000 + u128::from(i)));
    r.record_ids = vec![Uuid::from_u128(1000 + u128::from(i))];
    r.fields = vec!["email".into(), "given_name".into()];
    r.request_id = Some(format!("req-{i}"));
    r.client = Some("192.0.2.10".into());
    r
}

fn build(n: u64, start: u64, prev: Hash) -> Vec<Row> {
    let mut prev = prev;
    (start..start + n)
        .map(|i| {
            let (bytes, h) = seal_entry(i, &prev, &record(i));
            prev = h;
            (i, bytes, h)
        })
        .collect()
}

struct Fixture {
    key: SigningKey,
    log: Vec<Row>,
    heads: Vec<SignedTreeHead>,
}

fn fixture() -> Fixture {
    let key = SigningKey::generate().expect("a key");
    let log = build(1000, 0, [0; 32]);
    let heads = heads_for(&key, &log, &[10, 500, 1000]);
    Fixture { key, log, heads }
}

fn heads_for(key: &SigningKey, log: &[Row], sizes: &[u64]) -> Vec<SignedTreeHead> {
    let hashes: Vec<Hash> = log.iter().map(|r| r.2).collect();
    sizes
        .iter()
        .map(|&s| {
            SignedTreeHead::sign(
                key,
                s,
                1_769_850_000_000 + s as i64,
                root_from_leaf_hashes(&hashes[..s as usize]),
            )
        })
        .collect()
}

fn verify(log: &[Row], heads: &[SignedTreeHead], pk: [u8; 32]) -> Result<VerifyReport, VerifyError> {
    let mut v = LogVerifier::new(heads.to_vec(), pk);
    for (i, bytes, h) in log {
        v.push(*i, bytes, h)?;
    }
    v.finish()
}

fn expect(f: &Fixture, log: &[Row], heads: &[SignedTreeHead], want: VerifyError, message: &str) {
    let err = verify(log, heads, f.key.public_key()).expect_err("tampering not detected");
    assert_eq!(err, want);
    assert_eq!(err.to_string(), message);
}

/// Replaces `from` with `to` once in the bytes.
fn edit(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).expect("UTF-8");
    assert!(text.contains(from), "{text} has no {from}");
    text.replacen(from, to, 1).into_bytes()
}

#[test]
fn clean_log_passes() {
    let f = fixture();
    let report = verify(&f.log, &f.heads, f.key.public_key()).unwrap();
    let hashes: Vec<Hash> = f.log.iter().map(|r| r.2).collect();
    assert_eq!(report.entries, 1000);
    assert_eq!(report.size, 1000);
    assert_eq!(report.heads_checked, 3);
    assert_eq!(report.signed_size, 1000);
    assert_eq!(report.root, root_from_leaf_hashes(&hashes));
    // Heads in any order; no heads at all.
    let mut shuffled = f.heads.clone();
    shuffled.reverse();
    assert!(verify(&f.log, &shuffled, f.key.public_key()).is_ok());
    let report = verify(&f.log, &[], f.key.public_key()).unwrap();
    assert_eq!((report.heads_checked, report.signed_size), (0, 0));
}

#[test]
fn edited_bytes_with_the_old_leaf_hash() {
    let f = fixture();
    let mut log = f.log.clone();
    log[41].1 = edit(&log[41].1, "\"fields\":[\"email\",", "\"fields\":[\"phone\",");
    expect(
        &f,
        &log,
        &f.heads,
        VerifyError::Changed { index: 41 },
        "entry 41 was changed: its bytes do not match its leaf hash",
    );
}

#[test]
fn edited_bytes_with_a_recomputed_leaf_hash() {
    let f = fixture();
    // Caught by the next entry's link.
    let mut log = f.log.clone();
    log[41].1 = edit(&log[41].1, "\"outcome\":\"ok\"", "\"outcome\":\"denied\"");
    log[41].2 = leaf_hash(&log[41].1);
    expect(
        &f,
        &log,
        &f.heads,
        VerifyError::BrokenLink { index: 42 },
        "entry 42 does not follow entry 41 (its previous-hash link is broken)",
    );

    // The last entry has no successor: the head for size 1000 catches it.
    let mut log = f.log.clone();
    log[999].1 = edit(&log[999].1, "\"outcome\":\"ok\"", "\"outcome\":\"failed\"");
    log[999].2 = leaf_hash(&log[999].1);
    expect(
        &f,
        &log,
        &f.heads,
        VerifyError::HeadMismatch { size: 1000 },
        "the signed tree head for size 1000 does not match the log",
    );
    // ...and without a head covering it, the change is invisible, which the
    // report shows: only the first 500 entries are signed.
    let report = verify(&log, &f.heads[..2], f.key.public_key()).unwrap();
    assert_eq!((report.entries, report.signed_size), (1000, 500));

    // Rewriting entry 41 and re-chaining everything after it: the first
    // signed head after it fails.
    let mut log = f.log[..41].to_vec();
    let mut prev = log[40].2;
    for i in 41..1000 {
        let mut r = record(i);
        if i == 41 {
            r.action = "contact.list".into();
        }
        let (bytes, h) = seal_entry(i, &prev, &r);
        prev = h;
        log.push((i, bytes, h));
    }
    expect(
        &f,
        &log,
        &f.heads,
        VerifyError::HeadMismatch { size: 500 },
        "the signed tree head for size 500 does not match the log",
    );
}

#[test]
fn inserted_entry() {
    let f = fixture();
    // A forged entry 300 linked to 299, the later rows renumbered.
    let (forged, h) = seal_entry(300, &f.log[299].2, &record(12345));
    let mut log = f.log[..300].to_vec();
    log.push((300, forged.clone(), h));
    log.extend(f.log[300..].iter().map(|(i, b, h)| (i + 1, b.clone(), *h)));
    expect(
        &f,
        &log,
        &f.heads,
        VerifyError::OutOfPlace {
            index: 301,
            claims: 300,
        },
        "entry 301 is out of place: it says it is entry 300",
    );
    // The same without renumbering: position 300 occurs twice.
    let mut log = f.log[..300].to_vec();
    log.push((300, forged, h));
    log.extend(f.log[300..].iter().cloned());
    expect(
        &f,
        &log,
        &f.heads,
        VerifyError::Repeated {
            found: 300,
            expected: 301,
        },
        "entry 300 appears again after entry 300 (stored positions must increase one by one)",
    );
}

#[test]
fn deleted_entry() {
    let f = fixture();
    // A gap in the stored positions.
    let mut log = f.log.clone();
    log.remove(600);
    expect(
        &f,
        &log,
        &f.heads,
        VerifyError::Missing { index: 600, found: 601 },
        "entry 600 is missing (the log jumps from 599 to 601)",
    );
    // The rows after it renumbered to hide the gap.
    let log: Vec<Row> = f
        .log
        .iter()
        .filter(|r| r.0 != 600)
        .enumerate()
        .map(|(pos, (_, b, h))| (pos as u64, b.clone(), *h))
        .collect();
    expect(
        &f,
        &log,
        &f.heads,
        VerifyError::OutOfPlace {
            index: 600,
            claims: 601,
        },
        "entry 600 is out of place: it says it is entry 601",
    );
    // The first entry.
    expect(
        &f,
        &f.log[1..],
        &f.heads,
        VerifyError::MissingStart { found: 1 },
        "entry 0 is missing (the log starts at entry 1)",
    );
    // The last entry.
    expect(
        &f,
        &f.log[..999],
        &f.heads,
        VerifyError::HeadBeyondLog {
            size: 1000,
            entries: 999,
        },
        "a tree head claims size 1000 but the log has only 999 entries",
    );
}

#[test]
fn swapped_entries() {
    let f = fixture();
    let mut log = f.log.clone();
    let (a, b) = (log[700].clone(), log[701].clone());
    log[700] = (700, b.1, b.2);
    log[701] = (701, a.1, a.2);
    expect(
        &f,
        &log,
        &f.heads,
        VerifyError::OutOfPlace {
            index: 700,
            claims: 701,
        },
        "entry 700 is out of place: it says it is entry 701",
    );
}

#[test]
fn forged_heads() {
    let f = fixture();
    // A flipped signature bit.
    let mut heads = f.heads.clone();
    heads[1].signature[5] ^= 1;
    expect(
        &f,
        &f.log,
        &heads,
        VerifyError::HeadBadSignature { size: 500 },
        "the tree head for size 500 has an invalid signature",
    );
    // A head whose root was replaced (signature now over other bytes).
    let mut heads = f.heads.clone();
    heads[0].root = [9; 32];
    expect(
        &f,
        &f.log,
        &heads,
        VerifyError::HeadBadSignature { size: 10 },
        "the tree head for size 10 has an invalid signature",
    );
    // A head signed by another key.
    let other = SigningKey::generate().unwrap();
    let heads = heads_for(&other, &f.log, &[500]);
    expect(
        &f,
        &f.log,
        &heads,
        VerifyError::HeadBadSignature { size: 500 },
        "the tree head for size 500 has an invalid signature",
    );
    // A validly signed head with the wrong root.
    let head = SignedTreeHead::sign(&f.key, 500, 0, f.heads[0].root);
    expect(
        &f,
        &f.log,
        &[head],
        VerifyError::HeadMismatch { size: 500 },
        "the signed tree head for size 500 does not match the log",
    );
}

#[test]
fn head_larger_than_the_log() {
    let f = fixture();
    let mut heads = f.heads.clone();
    heads.push(SignedTreeHead::sign(&f.key, 1200, 0, [1; 32]));
    expect(
        &f,
        &f.log,
        &heads,
        VerifyError::HeadBeyondLog {
            size: 1200,
            entries: 1000,
        },
        "a tree head claims size 1200 but the log has only 1000 entries",
    );
}

#[test]
fn non_canonical_and_broken_start() {
    let f = fixture();
    // Valid JSON, recomputed hash, but not canonical.
    let mut log = f.log.clone();
    log[77].1 = edit(&log[77].1, "\"index\":77", "\"index\": 77");
    log[77].2 = leaf_hash(&log[77].1);
    let err = verify(&log, &f.heads, f.key.public_key()).unwrap_err();
    assert!(matches!(err, VerifyError::Malformed { index: 77, .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "entry 77 is not a canonical audit entry: it is not in canonical form \
         (its bytes differ from the canonical encoding of its content)"
    );
    // Not JSON at all.
    let mut log = f.log.clone();
    log[3].1 = b"hello".to_vec();
    log[3].2 = leaf_hash(b"hello");
    let err = verify(&log, &f.heads, f.key.public_key()).unwrap_err();
    assert!(matches!(err, VerifyError::Malformed { index: 3, .. }), "{err:?}");
    // Entry 0 must link to all zeros.
    let log = build(20, 0, [1; 32]);
    expect(
        &f,
        &log,
        &[],
        VerifyError::BadStart,
        "entry 0 does not start the log (its previous hash is not all zeros)",
    );
}
