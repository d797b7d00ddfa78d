//! An entry's facts: the few fields reports count, in a compact binary copy
//! stored beside the entry (like the store's other copied columns, it is
//! not covered by the leaf hash and not trusted by verification; the entry
//! is the evidence, and anyone holding the log under a signed head can
//! recount from the entries).
//!
//! A pass over millions of entries that only counts (the compliance
//! report) reads these ~60 bytes per entry instead of the ~600-byte JSON
//! entry, and decodes them without a parser.
//!
//! Layout, version 1 (integers little-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | version (1) |
//! | 1 | flags: bit 0 outcome is `ok`; 1 role; 2 user id; 3 token id; 4 purpose; 5 first field |
//! | 8 | `at`, microseconds since the Unix epoch (i64) |
//! | 1 + n | action (length, UTF-8) |
//! | 1 + n | role, if flagged |
//! | 16 | user id, if flagged |
//! | 16 | token id, if flagged |
//! | 1 + n | purpose, if flagged |
//! | 1 + n | first field name, if flagged |
//! | 2 + 16·k | the people: the subject, or else the record ids of a `contact.` action |
//!
//! A string longer than 255 bytes is not representable: such an entry has
//! no facts ([`encode`] gives `None`) and readers use the entry itself.

use uuid::Uuid;

use crate::entry::{AuditRecord, Outcome};

/// The layout's version byte.
pub const FACTS_VERSION: u8 = 1;

const OK: u8 = 1;
const ROLE: u8 = 1 << 1;
const USER: u8 = 1 << 2;
const TOKEN: u8 = 1 << 3;
const PURPOSE: u8 = 1 << 4;
const FIELD: u8 = 1 << 5;

/// The decoded facts of one entry, borrowed from their bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts<'a> {
    pub ok: bool,
    /// Microseconds since the Unix epoch.
    pub at_micros: i64,
    pub action: &'a str,
    pub role: Option<&'a str>,
    pub user_id: Option<u128>,
    pub token_id: Option<u128>,
    pub purpose: Option<&'a str>,
    pub first_field: Option<&'a str>,
    /// 16 bytes per person (big-endian UUIDs).
    people: &'a [u8],
}

impl Facts<'_> {
    /// The people the entry concerns: its subject, or else (for `contact.`
    /// actions) its record ids.
    pub fn people(&self) -> impl Iterator<Item = u128> + '_ {
        self.people.chunks_exact(16).map(|c| {
            let mut b = [0u8; 16];
            b.copy_from_slice(c);
            u128::from_be_bytes(b)
        })
    }
}

/// The people an entry concerns (see [`Facts::people`]).
#[must_use]
pub fn people_of(record: &AuditRecord) -> Vec<Uuid> {
    match record.subject_id {
        Some(s) => vec![s],
        None if record.action.starts_with("contact.") => record.record_ids.clone(),
        None => Vec::new(),
    }
}

/// The facts of `record`, or `None` when a string does not fit.
#[must_use]
pub fn encode(record: &AuditRecord) -> Option<Vec<u8>> {
    let people = people_of(record);
    let mut out = Vec::with_capacity(64 + 16 * people.len());
    let role = record.actor.role.as_deref();
    let first_field = record.fields.first().map(String::as_str);
    let mut flags = 0u8;
    for (set, bit) in [
        (record.outcome == Outcome::Ok, OK),
        (role.is_some(), ROLE),
        (record.actor.user_id.is_some(), USER),
        (record.actor.token_id.is_some(), TOKEN),
        (record.purpose.is_some(), PURPOSE),
        (first_field.is_some(), FIELD),
    ] {
        if set {
            flags |= bit;
        }
    }
    out.push(FACTS_VERSION);
    out.push(flags);
    out.extend_from_slice(&record.at.timestamp_micros().to_le_bytes());
    let text = |out: &mut Vec<u8>, s: &str| -> Option<()> {
        out.push(u8::try_from(s.len()).ok()?);
        out.extend_from_slice(s.as_bytes());
        Some(())
    };
    text(&mut out, &record.action)?;
    if let Some(r) = role {
        text(&mut out, r)?;
    }
    for id in [record.actor.user_id, record.actor.token_id].into_iter().flatten() {
        out.extend_from_slice(id.as_bytes());
    }
    if let Some(p) = &record.purpose {
        text(&mut out, p)?;
    }
    if let Some(f) = first_field {
        text(&mut out, f)?;
    }
    out.extend_from_slice(&u16::try_from(people.len()).ok()?.to_le_bytes());
    for p in &people {
        out.extend_from_slice(p.as_bytes());
    }
    Some(out)
}

/// Reads facts written by [`encode`]; `None` for anything else (an unknown
/// version, a short or overlong buffer, text that is not UTF-8).
#[must_use]
pub fn decode(bytes: &[u8]) -> Option<Facts<'_>> {
    let mut r = Reader(bytes);
    if r.take(1)? != [FACTS_VERSION] {
        return None;
    }
    let flags = r.take(1)?[0];
    let at_micros = i64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let action = r.text()?;
    let role = if flags & ROLE != 0 { Some(r.text()?) } else { None };
    let user_id = if flags & USER != 0 { Some(r.id()?) } else { None };
    let token_id = if flags & TOKEN != 0 { Some(r.id()?) } else { None };
    let purpose = if flags & PURPOSE != 0 { Some(r.text()?) } else { None };
    let first_field = if flags & FIELD != 0 { Some(r.text()?) } else { None };
    let n = usize::from(u16::from_le_bytes(r.take(2)?.try_into().ok()?));
    let people = r.take(n.checked_mul(16)?)?;
    if !r.0.is_empty() {
        return None;
    }
    Some(Facts {
        ok: flags & OK != 0,
        at_micros,
        action,
        role,
        user_id,
        token_id,
        purpose,
        first_field,
        people,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn text(&mut self) -> Option<&'a str> {
        let n = usize::from(self.take(1)?[0]);
        std::str::from_utf8(self.take(n)?).ok()
    }
    fn id(&mut self) -> Option<u128> {
        Some(u128::from_be_bytes(self.take(16)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::entry::{Actor, ActorKind};

    fn record(action: &str) -> AuditRecord {
        let at = chrono::DateTime::from_timestamp(1_780_000_000, 123_456_000).unwrap();
        let actor = Actor {
            kind: ActorKind::User,
            user_id: Some(Uuid::from_u128(9)),
            token_id: None,
            username: Some("sam".into()),
            role: Some("sales".into()),
        };
        AuditRecord::new(at, actor, action, Outcome::Ok)
    }

    #[test]
    fn round_trip() {
        let mut r = record("contact.search");
        r.purpose = Some("sales".into());
        r.record_ids = vec![Uuid::from_u128(1), Uuid::from_u128(2)];
        r.fields = vec!["email".into(), "phone".into()];
        let bytes = encode(&r).unwrap();
        let f = decode(&bytes).unwrap();
        assert!(f.ok);
        assert_eq!(f.at_micros, 1_780_000_000_123_456);
        assert_eq!(f.action, "contact.search");
        assert_eq!((f.role, f.user_id, f.token_id), (Some("sales"), Some(9), None));
        assert_eq!((f.purpose, f.first_field), (Some("sales"), Some("email")));
        assert_eq!(f.people().collect::<Vec<_>>(), vec![1, 2]);

        // A subject wins over record ids; other actions' records are not people.
        r.subject_id = Some(Uuid::from_u128(5));
        assert_eq!(
            decode(&encode(&r).unwrap()).unwrap().people().collect::<Vec<_>>(),
            vec![5]
        );
        let mut other = record("interaction.list");
        other.record_ids = vec![Uuid::from_u128(3)];
        other.outcome = Outcome::Denied;
        other.actor.role = None;
        let bytes = encode(&other).unwrap();
        let f = decode(&bytes).map(|f| (f.ok, f.role, f.people().count()));
        assert_eq!(f, Some((false, None, 0)));
    }

    #[test]
    fn what_does_not_fit_or_is_not_facts() {
        let mut r = record("contact.read");
        r.purpose = Some("p".repeat(256));
        assert!(encode(&r).is_none());
        let good = encode(&record("contact.read")).unwrap();
        assert!(decode(&good[..good.len() - 1]).is_none(), "short");
        let mut long = good.clone();
        long.push(0);
        assert!(decode(&long).is_none(), "trailing bytes");
        let mut v2 = good;
        v2[0] = 2;
        assert!(decode(&v2).is_none(), "unknown version");
        assert!(decode(b"").is_none());
    }
}
