//! The compliance report's pass over the audit log: consent events and
//! reads of personal data in a period, counted from the few fields of each
//! entry it needs.
//!
//! Those fields are read from each entry's facts (`steward_audit::facts`,
//! the compact copy the store keeps beside the entry), decoded without a
//! parser. An entry stored without facts (appended before they were kept)
//! is read from its bytes:
//!
//! Entries are canonical JSON (keys sorted, no insignificant spaces, see
//! `steward_audit::entry`), so the fields are found by their keys in that
//! order without building a JSON tree: a string value without a backslash is
//! the bytes between its quotes, and the key pattern `"name":` cannot occur
//! inside a string (a quote there is escaped). An entry holding any
//! backslash, or of any other shape, is read with serde instead. Checking
//! every byte of every entry is the verifier's job (the self-audit beside
//! this pass); this pass only counts.
//!
//! The range of entries is split between tasks (one per core, each on a
//! blocking thread), each counting the entries as the store hands them over
//! (borrowed from its rows, see `Store::scan_audit`); their tallies are
//! merged at the end.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use memchr::memmem;
use steward_store::{ScanRow, Store};

use crate::compliance::ReadFigures;
use crate::error::{ServiceError, ServiceResult};

/// Ranges smaller than this are not split (in debug builds, which the
/// tests run, small ones are, so the exact-figure tests cover the merge).
const SPLIT_MIN: u64 = if cfg!(debug_assertions) { 16 } else { 50_000 };

/// What the pass counted.
#[derive(Default)]
pub(crate) struct Scan {
    /// (month, purpose) → (grants, withdrawals).
    pub months: BTreeMap<(String, String), (u64, u64)>,
    pub reads: ReadFigures,
    /// account → (role, reads, distinct people).
    pub accounts: Vec<(String, (String, u64, u64))>,
}

/// The period's bounds in microseconds since the epoch: counted are
/// entries at `lo <= at < hi`; `stop` (a little after `hi`, for clock
/// steps) ends the pass.
#[derive(Clone)]
pub(crate) struct Bounds {
    pub lo: i64,
    pub hi: i64,
    pub stop: i64,
}

/// The counted fields of one entry, borrowed from its facts or bytes (the
/// people it concerns go to the pass's buffer).
struct Seen<'a> {
    ok: bool,
    /// Microseconds since the epoch.
    at: i64,
    action: &'a str,
    role: Option<&'a str>,
    /// The user, or else the token.
    account: Option<u128>,
    purpose: Option<&'a str>,
    first_field: Option<&'a str>,
}

impl<'a> Seen<'a> {
    fn of_facts(f: &steward_audit::facts::Facts<'a>, people: &mut Vec<u128>) -> Self {
        people.clear();
        people.extend(f.people());
        Seen {
            ok: f.ok,
            at: f.at_micros,
            action: f.action,
            role: f.role,
            account: f.user_id.or(f.token_id),
            purpose: f.purpose,
            first_field: f.first_field,
        }
    }

    /// `None` when the entry's time is not a timestamp.
    fn of_raw(r: &Raw<'a>, people: &mut Vec<u128>) -> Option<Self> {
        let at = chrono::DateTime::parse_from_rfc3339(r.at).ok()?.timestamp_micros();
        people.clear();
        people.extend(r.subject_id.and_then(uuid_bits));
        if people.is_empty() && r.action.starts_with("contact.") {
            r.record_ids.each(|s| people.extend(uuid_bits(s)));
        }
        Some(Seen {
            ok: r.outcome == "ok",
            at,
            action: r.action,
            role: r.role,
            account: r.user_id.or(r.token_id).and_then(uuid_bits),
            purpose: r.purpose,
            first_field: r.first_field,
        })
    }
}

/// The counted fields of one entry's JSON, borrowed from its bytes.
struct Raw<'a> {
    action: &'a str,
    role: Option<&'a str>,
    token_id: Option<&'a str>,
    user_id: Option<&'a str>,
    at: &'a str,
    first_field: Option<&'a str>,
    outcome: &'a str,
    purpose: Option<&'a str>,
    record_ids: Ids<'a>,
    subject_id: Option<&'a str>,
}

enum Ids<'a> {
    /// The inside of a JSON array of plain strings: `"a","b"`.
    Raw(&'a str),
    List(&'a [Cow<'a, str>]),
}

impl Ids<'_> {
    fn each(&self, mut f: impl FnMut(&str)) {
        match self {
            Ids::Raw(raw) => raw
                .split(',')
                .filter_map(|s| s.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                .for_each(f),
            Ids::List(list) => list.iter().for_each(|s| f(s)),
        }
    }
}

/// The fields of an entry for the serde path (entries with escapes).
#[derive(serde::Deserialize)]
struct LiteEntry<'a> {
    #[serde(borrow)]
    action: Cow<'a, str>,
    #[serde(borrow)]
    actor: LiteActor<'a>,
    #[serde(borrow)]
    at: Cow<'a, str>,
    #[serde(borrow, default)]
    fields: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    outcome: Cow<'a, str>,
    #[serde(borrow)]
    purpose: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    record_ids: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    subject_id: Option<Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct LiteActor<'a> {
    #[serde(borrow)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow)]
    token_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
}

impl<'a> LiteEntry<'a> {
    fn raw(&'a self) -> Raw<'a> {
        Raw {
            action: &self.action,
            role: self.actor.role.as_deref(),
            token_id: self.actor.token_id.as_deref(),
            user_id: self.actor.user_id.as_deref(),
            at: &self.at,
            first_field: self.fields.first().map(AsRef::as_ref),
            outcome: &self.outcome,
            purpose: self.purpose.as_deref(),
            record_ids: Ids::List(&self.record_ids),
            subject_id: self.subject_id.as_deref(),
        }
    }
}

/// The key finders, built once per pass.
struct Keys {
    action: memmem::Finder<'static>,
    role: memmem::Finder<'static>,
    token_id: memmem::Finder<'static>,
    user_id: memmem::Finder<'static>,
    at: memmem::Finder<'static>,
    fields: memmem::Finder<'static>,
    outcome: memmem::Finder<'static>,
    purpose: memmem::Finder<'static>,
    record_ids: memmem::Finder<'static>,
    subject_id: memmem::Finder<'static>,
}

impl Keys {
    fn new() -> Self {
        let f = |k: &'static str| memmem::Finder::new(k.as_bytes());
        Self {
            action: f("{\"action\":"),
            role: f(",\"role\":"),
            token_id: f(",\"token_id\":"),
            user_id: f(",\"user_id\":"),
            at: f(",\"at\":"),
            fields: f(",\"fields\":"),
            outcome: f(",\"outcome\":"),
            purpose: f(",\"purpose\":"),
            record_ids: f(",\"record_ids\":"),
            subject_id: f(",\"subject_id\":"),
        }
    }

    /// The fields of a canonical entry without escapes, found in key order;
    /// `None` for anything else (read with serde then).
    fn raw<'a>(&self, bytes: &'a [u8]) -> Option<Raw<'a>> {
        if memchr::memchr(b'\\', bytes).is_some() {
            return None;
        }
        // One check of the whole entry (cheaper than one per field).
        let text = std::str::from_utf8(bytes).ok()?;
        let mut pos = 0;
        let mut next = |key: &memmem::Finder<'_>| -> Option<usize> {
            let at = pos + key.find(bytes.get(pos..)?)? + key.needle().len();
            pos = at;
            Some(at)
        };
        // The text between `open` at `at` and the next `close` (ASCII
        // delimiters, so the offsets fall on character boundaries).
        let between = |at: usize, open: u8, close: u8| -> Option<&'a str> {
            if bytes.get(at) != Some(&open) {
                return None;
            }
            let len = memchr::memchr(close, bytes.get(at + 1..)?)?;
            text.get(at + 1..at + 1 + len)
        };
        let string = |at: usize| between(at, b'"', b'"');
        let nullable = |at: usize| -> Option<Option<&'a str>> {
            if bytes.get(at..)?.starts_with(b"null") {
                Some(None)
            } else {
                string(at).map(Some)
            }
        };
        let array = |at: usize| between(at, b'[', b']');
        let action = string(next(&self.action)?)?;
        let role = nullable(next(&self.role)?)?;
        let token_id = nullable(next(&self.token_id)?)?;
        let user_id = nullable(next(&self.user_id)?)?;
        let at = string(next(&self.at)?)?;
        let fields = array(next(&self.fields)?)?;
        let outcome = string(next(&self.outcome)?)?;
        let purpose = nullable(next(&self.purpose)?)?;
        let record_ids = array(next(&self.record_ids)?)?;
        let subject_id = nullable(next(&self.subject_id)?)?;
        let first_field = fields
            .split(',')
            .next()
            .and_then(|s| s.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
        Some(Raw {
            action,
            role,
            token_id,
            user_id,
            at,
            first_field,
            outcome,
            purpose,
            record_ids: Ids::Raw(record_ids),
            subject_id,
        })
    }
}

/// Audit actions that read personal data.
pub(crate) fn is_read(action: &str) -> bool {
    action.ends_with(".read")
        || action.ends_with(".search")
        || action.ends_with(".list")
        || action.ends_with(".export")
        || action == "dsr.export.download"
}

/// A fast hasher for the pass's keys: identifiers from the log itself
/// (UUIDs, whose low bits are random), not input an outsider chooses, so
/// the DoS resistance of the standard hasher buys nothing here and its cost
/// showed in profiles. Multiply-rotate over 8-byte words, as in FxHash.
#[derive(Default, Clone, Copy)]
struct IdHasher(u64);

impl IdHasher {
    const K: u64 = 0xf135_7aea_2e62_a9c5;

    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl std::hash::Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let mut w = [0u8; 8];
        let rest = chunks.remainder();
        w[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
    }
    fn write_u128(&mut self, n: u128) {
        self.add(n as u64);
        self.add((n >> 64) as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
    fn finish(&self) -> u64 {
        // The top bits pick hashbrown's control bytes: fold the mixed high
        // half into them.
        self.0 ^ (self.0 >> 29)
    }
}

type Fast = std::hash::BuildHasherDefault<IdHasher>;

/// The counts of one range.
#[derive(Default)]
struct Tally {
    months: BTreeMap<(String, String), (u64, u64)>,
    total: u64,
    by_purpose: BTreeMap<String, u64>,
    by_role: BTreeMap<String, u64>,
    /// account (user or token; `None` unknown) → (role, reads, distinct people).
    accounts: HashMap<Option<u128>, AccountReads, Fast>,
}

/// One account's role, reads and distinct people read.
type AccountReads = (String, u64, HashSet<u128, Fast>);

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

fn uuid_bits(s: &str) -> Option<u128> {
    uuid::Uuid::parse_str(s).ok().map(|u| u.as_u128())
}

impl Tally {
    /// Counts one entry; `false` once the entry is well past the period.
    /// `people` holds the people the entry concerns.
    fn count(&mut self, e: &Seen<'_>, b: &Bounds, people: &[u128]) -> bool {
        if e.at >= b.stop {
            return false;
        }
        if e.at < b.lo || e.at >= b.hi || !e.ok {
            return true;
        }
        let action = e.action;
        if matches!(action, "consent.grant" | "consent.confirm" | "consent.withdraw") {
            let Some(purpose) = e.first_field.or(e.purpose) else {
                return true;
            };
            let Some(at) = chrono::DateTime::from_timestamp_micros(e.at) else {
                return true;
            };
            let month = at.format("%Y-%m").to_string();
            let m = self.months.entry((month, purpose.to_string())).or_default();
            if action == "consent.withdraw" {
                m.1 += 1;
            } else {
                m.0 += 1;
            }
        } else if is_read(action) {
            let Some(role) = e.role else { return true };
            if people.is_empty() {
                return true;
            }
            self.total += 1;
            bump(&mut self.by_purpose, e.purpose.unwrap_or("none"));
            bump(&mut self.by_role, role);
            let a = self
                .accounts
                .entry(e.account)
                .or_insert_with(|| (role.to_string(), 0, HashSet::default()));
            a.1 += 1;
            a.2.extend(people.iter().copied());
        }
        true
    }

    fn merge(&mut self, other: Tally) {
        for (k, (g, w)) in other.months {
            let m = self.months.entry(k).or_default();
            m.0 += g;
            m.1 += w;
        }
        self.total += other.total;
        for (k, n) in other.by_purpose {
            *self.by_purpose.entry(k).or_default() += n;
        }
        for (k, n) in other.by_role {
            *self.by_role.entry(k).or_default() += n;
        }
        for (k, (role, n, people)) in other.accounts {
            let a = self.accounts.entry(k).or_insert_with(|| (role, 0, HashSet::default()));
            a.1 += n;
            a.2.extend(people);
        }
    }
}

/// Counts the entries `[start, end)` as the store hands them over,
/// borrowed from its rows.
async fn scan_range(store: Arc<dyn Store>, start: u64, end: u64, bounds: Bounds) -> ServiceResult<Tally> {
    let keys = Keys::new();
    let mut tally = Tally::default();
    let mut people = Vec::new();
    let count_raw = |tally: &mut Tally, raw: &Raw<'_>, people: &mut Vec<u128>| {
        Seen::of_raw(raw, people).is_none_or(|seen| tally.count(&seen, &bounds, people))
    };
    let mut visit = |_: u64, row: ScanRow<'_>| match row {
        ScanRow::Facts(bytes) => steward_audit::facts::decode(bytes).is_none_or(|f| {
            let seen = Seen::of_facts(&f, &mut people);
            tally.count(&seen, &bounds, &people)
        }),
        ScanRow::Entry(bytes) => match keys.raw(bytes) {
            Some(raw) => count_raw(&mut tally, &raw, &mut people),
            None => match serde_json::from_slice::<LiteEntry<'_>>(bytes) {
                Ok(lite) => count_raw(&mut tally, &lite.raw(), &mut people),
                Err(_) => true,
            },
        },
    };
    store.scan_audit(start, end, &mut visit).await?;
    Ok(tally)
}

/// Counts consent events and reads of personal data in the period over the
/// entries `[start, end)`, split between `tasks` tasks.
pub(crate) async fn scan(
    store: &Arc<dyn Store>,
    start: u64,
    end: u64,
    bounds: &Bounds,
    tasks: u64,
) -> ServiceResult<Scan> {
    let n = end.saturating_sub(start);
    let tasks = if n < SPLIT_MIN { 1 } else { tasks.max(1) };
    let step = n.div_ceil(tasks).max(1);
    let mut set = tokio::task::JoinSet::new();
    let mut at = start;
    let mut order = 0usize;
    while at < end {
        let to = (at + step).min(end);
        let (store, bounds) = (Arc::clone(store), bounds.clone());
        let k = order;
        // On a blocking thread: an embedded store reads on the calling
        // thread, and a long pass must not hold the runtime's workers.
        let rt = tokio::runtime::Handle::current();
        set.spawn_blocking(move || (k, rt.block_on(scan_range(store, at, to, bounds))));
        at = to;
        order += 1;
    }
    let mut parts = Vec::new();
    while let Some(done) = set.join_next().await {
        let (k, tally) = done.map_err(|e| ServiceError::Internal(e.to_string()))?;
        parts.push((k, tally?));
    }
    parts.sort_by_key(|(k, _)| *k);
    let mut total = Tally::default();
    for (_, t) in parts {
        total.merge(t);
    }
    Ok(Scan {
        months: total.months,
        reads: ReadFigures {
            total: total.total,
            by_purpose: total.by_purpose,
            by_role: total.by_role,
            ..ReadFigures::default()
        },
        accounts: total
            .accounts
            .into_iter()
            .map(|(account, (role, n, people))| {
                let account = account.map_or_else(|| "unknown".to_string(), |a| uuid::Uuid::from_u128(a).to_string());
                (account, (role, n, people.len() as u64))
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use steward_audit::{seal_entry, Actor, ActorKind, AuditRecord, Outcome};

    fn record(role: &str, reason: Option<&str>) -> Vec<u8> {
        let at = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        let actor = Actor {
            kind: ActorKind::Token,
            user_id: None,
            token_id: Some(uuid::Uuid::from_u128(7)),
            username: Some("a\"b".into()),
            role: Some(role.into()),
        };
        let mut r = AuditRecord::new(at, actor, "contact.read", Outcome::Ok);
        r.purpose = Some("sales".into());
        r.record_ids = vec![uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2)];
        r.fields = vec!["email".into(), "phone".into()];
        r.reason = reason.map(Into::into);
        seal_entry(3, &[0; 32], &r).0
    }

    /// A signed-in user of the sales role.
    fn sam() -> Actor {
        Actor {
            kind: ActorKind::User,
            user_id: Some(uuid::Uuid::from_u128(9)),
            token_id: None,
            username: Some("sam".into()),
            role: Some("sales".into()),
        }
    }

    #[test]
    fn the_fast_path_reads_what_serde_reads() {
        let keys = Keys::new();
        // A username with a quote is escaped: the serde path.
        assert!(keys.raw(&record("sales", None)).is_none());
        let at = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        let actor = sam();
        let mut r = AuditRecord::new(at, actor, "consent.grant", Outcome::Ok);
        r.fields = vec!["newsletter".into()];
        r.purpose = Some("marketing".into());
        r.subject_id = Some(uuid::Uuid::from_u128(5));
        r.client = Some("192.0.2.1".into());
        let bytes = seal_entry(4, &[0; 32], &r).0;
        let lite: LiteEntry<'_> = serde_json::from_slice(&bytes).unwrap();
        let slow = lite.raw();
        let fast = keys
            .raw(&bytes)
            .unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(&bytes)));
        // A value that looks like keys of the entry holds escaped quotes:
        // the serde path reads it.
        r.client = Some(",\"role\":\"admin\",\"at\":".into());
        assert!(keys.raw(&seal_entry(4, &[0; 32], &r).0).is_none());
        let view = |s: &Raw<'_>| {
            let mut ids = Vec::new();
            s.record_ids.each(|i| ids.push(i.to_string()));
            format!(
                "{} {:?} {:?} {:?} {} {:?} {} {:?} {ids:?} {:?}",
                s.action, s.role, s.token_id, s.user_id, s.at, s.first_field, s.outcome, s.purpose, s.subject_id
            )
        };
        assert_eq!(view(&fast), view(&slow));
        assert_eq!(fast.first_field, Some("newsletter"));
        assert_eq!(fast.role, Some("sales"));
        assert_eq!(fast.token_id, None);
    }

    /// What the pass counts of an entry is the same read from its facts as
    /// from its bytes (by either JSON path).
    #[test]
    fn facts_and_entries_are_read_alike() {
        let at = chrono::DateTime::from_timestamp(1_780_000_000, 250_000).unwrap();
        let mut grant = AuditRecord::new(at, sam(), "consent.grant", Outcome::Ok);
        grant.fields = vec!["newsletter".into()];
        grant.purpose = Some("marketing".into());
        grant.subject_id = Some(uuid::Uuid::from_u128(5));
        grant.record_ids = vec![uuid::Uuid::from_u128(6)];
        let mut search = AuditRecord::new(at, sam(), "contact.search", Outcome::Ok);
        search.record_ids = vec![uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2)];
        let mut denied = search.clone();
        denied.outcome = Outcome::Denied;
        denied.actor.user_id = None;
        denied.actor.token_id = Some(uuid::Uuid::from_u128(7));
        denied.reason = Some("a \"quoted\" reason".into());
        let mut other = AuditRecord::new(at, Actor::system(), "interaction.list", Outcome::Ok);
        other.record_ids = vec![uuid::Uuid::from_u128(3)];
        let view = |s: &Seen<'_>, people: &[u128]| {
            format!(
                "{} {} {} {:?} {:?} {:?} {:?} {people:?}",
                s.ok, s.at, s.action, s.role, s.account, s.purpose, s.first_field
            )
        };
        let keys = Keys::new();
        for r in [grant, search, denied, other] {
            let facts = steward_audit::facts::encode(&r).unwrap();
            let mut people = Vec::new();
            let from_facts = view(
                &Seen::of_facts(&steward_audit::facts::decode(&facts).unwrap(), &mut people),
                &people,
            );
            let bytes = seal_entry(0, &[0; 32], &r).0;
            let lite: LiteEntry<'_> = serde_json::from_slice(&bytes).unwrap();
            let from_serde = view(&Seen::of_raw(&lite.raw(), &mut people).unwrap(), &people);
            assert_eq!(from_facts, from_serde, "{}", r.action);
            if let Some(raw) = keys.raw(&bytes) {
                assert_eq!(from_facts, view(&Seen::of_raw(&raw, &mut people).unwrap(), &people));
            }
        }
    }

    #[test]
    fn reads_of_personal_data() {
        for a in [
            "contact.read",
            "contact.search",
            "interaction.list",
            "dsr.export",
            "dsr.export.download",
        ] {
            assert!(is_read(a), "{a}");
        }
        assert!(!is_read("contact.create") && !is_read("consent.grant"));
    }

    #[test]
    fn tallies_merge() {
        let b = Bounds {
            lo: 0,
            hi: i64::MAX - 1,
            stop: i64::MAX,
        };
        let keys = Keys::new();
        let plain = {
            let at = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap();
            let actor = sam();
            let mut r = AuditRecord::new(at, actor, "contact.read", Outcome::Ok);
            r.purpose = Some("sales".into());
            r.record_ids = vec![uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2)];
            r
        };
        let facts = steward_audit::facts::encode(&plain).unwrap();
        let plain = seal_entry(0, &[0; 32], &plain).0;
        let escaped = record("sales", Some("why\nnot"));
        let mut one = Tally::default();
        let mut two = Tally::default();
        let mut buf = Vec::new();
        let seen = Seen::of_facts(&steward_audit::facts::decode(&facts).unwrap(), &mut buf);
        assert!(one.count(&seen, &b, &buf));
        let lite: LiteEntry<'_> = serde_json::from_slice(&escaped).unwrap();
        let seen = Seen::of_raw(&lite.raw(), &mut buf).unwrap();
        assert!(two.count(&seen, &b, &buf));
        let seen = Seen::of_raw(&keys.raw(&plain).unwrap(), &mut buf).unwrap();
        assert!(two.count(&seen, &b, &buf));
        one.merge(two);
        assert_eq!(one.total, 3);
        assert_eq!(one.by_role["sales"], 3);
        let sam = &one.accounts[&Some(9)];
        assert_eq!((sam.1, sam.2.len()), (2, 2));
        let token = &one.accounts[&Some(7)];
        assert_eq!((token.1, token.2.len()), (1, 2));
        // Past `stop`, the pass ends.
        let late = Bounds { lo: 0, hi: 1, stop: 2 };
        assert!(!one.count(&seen, &late, &buf));
    }
}
