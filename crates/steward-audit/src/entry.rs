//! Audit records and their canonical byte encoding.
//!
//! # What is recorded
//!
//! An [`AuditRecord`] says who did what to which records, for which purpose,
//! and how it ended. It holds identifiers (UUIDs), field *names*, purpose
//! names, action names and fixed reason codes, never a field's value: no
//! names, e-mail addresses, phone numbers, notes or search terms of the
//! people in the CRM. The log can therefore be kept after a data subject is
//! erased, and stays verifiable. The only data about people are the acting
//! staff user's id, username and role, and the client IP address of the
//! request: the accountability data that makes an access log evidence.
//!
//! # Canonical encoding (format version 1)
//!
//! An [`AuditEntry`] (the record, its position `index` in the log and the
//! leaf hash `prev` of the entry before it) is stored as these bytes; the
//! Merkle leaf is `SHA-256(0x00 || bytes)`. An independent implementation can
//! reproduce them byte for byte:
//!
//! - One UTF-8 JSON object, no whitespace outside strings, no trailing
//!   newline. Object keys are sorted by their bytes (all keys are ASCII).
//!   Every key below is always present; an absent optional value is `null`.
//! - Top level keys, in order: `action` (string), `actor` (object, below),
//!   `at` (string), `client` (string or null), `fields` (array of strings, in
//!   the record's order), `index` (number), `outcome` (string: `"ok"`,
//!   `"denied"` or `"failed"`), `prev` (string), `purpose` (string or null),
//!   `reason` (string or null), `record_ids` (array of UUID strings, in the
//!   record's order), `request_id` (string or null), `subject_id` (UUID
//!   string or null), `v` (the number `1`).
//! - `actor` keys, in order: `kind` (`"user"`, `"token"`, `"system"` or
//!   `"anonymous"`), `role` (string or null), `token_id` (UUID string or
//!   null), `user_id` (UUID string or null), `username` (string or null).
//! - Numbers (`index`, `v`) are unsigned decimal integers without sign,
//!   leading zeros, fraction or exponent.
//! - UUIDs are lower-case hyphenated (`0190a5b4-7c3e-7000-8000-000000000001`).
//! - `prev` is 64 lower-case hexadecimal digits; all zeros for entry 0.
//! - `at` is UTC with exactly six fractional digits and a `Z`:
//!   `YYYY-MM-DDTHH:MM:SS.ffffffZ` (the year has at least four digits, with a
//!   `-` before negative years and a `+` before years after 9999; a leap
//!   second is written as second `60`). Sub-microsecond precision is
//!   truncated, so a decoded timestamp can be earlier than the one given to
//!   [`encode_entry`] by less than a microsecond.
//! - Strings: `"` and `\` are escaped as `\"` and `\\`; the control
//!   characters U+0008, U+0009, U+000A, U+000C, U+000D as `\b`, `\t`, `\n`,
//!   `\f`, `\r`; other characters below U+0020 as `\u00XX` with lower-case
//!   hex digits. Everything else (including `/`, U+007F and all non-ASCII
//!   characters) is written as itself in UTF-8.
//!
//! This is exactly what Python's
//! `json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)`
//! produces, and the RFC 8785 (JCS) form of the object as long as `index` is
//! below 2^53. An example, wrapped here (the bytes are one line; the
//! `golden_bytes` test in this module pins a complete entry and its leaf
//! hash):
//!
//! ```text
//! {"action":"contact.read","actor":{"kind":"user","role":"sales","token_id":null,
//! "user_id":"0190a5b4-7c3e-7000-8000-000000000001","username":"alice"},
//! "at":"2026-01-31T09:30:00.000000Z","client":"192.0.2.10","fields":["email","given_name"],
//! "index":7,"outcome":"ok","prev":"ab12…(64 hex digits)","purpose":"sales","reason":null,
//! "record_ids":["0190a5b4-7c3e-7000-8000-0000000000aa"],"request_id":"req-1",
//! "subject_id":"0190a5b4-7c3e-7000-8000-0000000000aa","v":1}
//! ```
//!
//! [`decode_entry`] accepts only these bytes: it parses, re-encodes and
//! compares, so there is exactly one byte string per entry. Version 1 has no
//! room for extra keys; a future version changes `v`.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, SubsecRound, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use crate::merkle::{leaf_hash, Hash};

/// The format version written as `"v"`.
pub const FORMAT_VERSION: u64 = 1;

/// What kind of principal acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorKind {
    /// A signed-in user (session).
    User,
    /// An API token (possibly on behalf of a user).
    Token,
    /// Steward itself (scheduled jobs, retention, migrations, CLI).
    System,
    /// An unauthenticated caller (e.g. a failed login).
    Anonymous,
}

impl ActorKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Token => "token",
            Self::System => "system",
            Self::Anonymous => "anonymous",
        }
    }
}

/// Who acted. Staff identity only, never a data subject's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    pub user_id: Option<Uuid>,
    pub token_id: Option<Uuid>,
    pub username: Option<String>,
    pub role: Option<String>,
}

impl Actor {
    /// Steward itself.
    #[must_use]
    pub fn system() -> Self {
        Self {
            kind: ActorKind::System,
            user_id: None,
            token_id: None,
            username: None,
            role: None,
        }
    }

    /// An unauthenticated caller.
    #[must_use]
    pub fn anonymous() -> Self {
        Self {
            kind: ActorKind::Anonymous,
            ..Self::system()
        }
    }
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Denied,
    Failed,
}

impl Outcome {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }
}

/// What the service records about one action. NO personal data of data
/// subjects: ids, field names, purpose names, outcomes (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When it happened. Encoded (and serialised) as RFC 3339 UTC with
    /// exactly six fractional digits and `Z`; deserialisation accepts any
    /// RFC 3339 timestamp.
    #[serde(with = "at_format")]
    pub at: DateTime<Utc>,
    pub actor: Actor,
    /// e.g. "contact.read", "contact.create", "contact.search", "auth.login", "key.rotate".
    pub action: String,
    pub outcome: Outcome,
    /// The purpose the request stated, if any.
    pub purpose: Option<String>,
    /// The data subject, if any.
    pub subject_id: Option<Uuid>,
    /// Records touched (may include the subject id).
    pub record_ids: Vec<Uuid>,
    /// Field NAMES touched (never values).
    pub fields: Vec<String>,
    /// For denials and failures: a fixed, non-personal reason code or sentence.
    pub reason: Option<String>,
    pub request_id: Option<String>,
    /// The client's IP address.
    pub client: Option<String>,
}

impl AuditRecord {
    /// A record with no purpose, subject, records, fields, reason, request
    /// id or client; `at` is truncated to microseconds (what is encoded).
    #[must_use]
    pub fn new(at: DateTime<Utc>, actor: Actor, action: impl Into<String>, outcome: Outcome) -> Self {
        Self {
            at: at.trunc_subsecs(6),
            actor,
            action: action.into(),
            outcome,
            purpose: None,
            subject_id: None,
            record_ids: Vec::new(),
            fields: Vec::new(),
            reason: None,
            request_id: None,
            client: None,
        }
    }
}

/// Serde for [`AuditRecord::at`]: written as in the canonical encoding.
mod at_format {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Vec::with_capacity(40);
        super::write_time(&mut buf, at);
        let quoted = std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?;
        s.serialize_str(quoted.trim_matches('"'))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        DateTime::<Utc>::deserialize(d)
    }
}

/// A stored entry: the record, its position in the log and the leaf hash of
/// the entry before it (all zeros for entry 0). The link lets verification
/// name the exact entry that was changed, inserted, deleted or moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub index: u64,
    pub prev: Hash,
    pub record: AuditRecord,
}

/// Why bytes are not a canonical audit entry.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("it is not a well-formed audit entry ({0})")]
    Json(String),
    #[error("it has format version {0}, and only version 1 is known")]
    UnsupportedVersion(u64),
    #[error("its timestamp {0:?} is not of the form 2026-01-31T09:30:00.000000Z")]
    BadTimestamp(String),
    #[error("its previous hash is not 64 lower-case hexadecimal digits")]
    BadPrev,
    #[error("it is not in canonical form (its bytes differ from the canonical encoding of its content)")]
    NonCanonical,
}

// ---------------------------------------------------------------- encoding

/// Borrowed view of an entry: what the encoder writes. Both owned records
/// and zero-copy parsed bytes are encoded through it.
struct View<'a, S: AsRef<str>> {
    index: u64,
    prev: &'a Hash,
    at: &'a DateTime<Utc>,
    kind: ActorKind,
    user_id: Option<Uuid>,
    token_id: Option<Uuid>,
    username: Option<&'a str>,
    role: Option<&'a str>,
    action: &'a str,
    outcome: Outcome,
    purpose: Option<&'a str>,
    subject_id: Option<Uuid>,
    record_ids: &'a [Uuid],
    fields: &'a [S],
    reason: Option<&'a str>,
    request_id: Option<&'a str>,
    client: Option<&'a str>,
}

impl<'a> View<'a, String> {
    fn of(index: u64, prev: &'a Hash, r: &'a AuditRecord) -> Self {
        Self {
            index,
            prev,
            at: &r.at,
            kind: r.actor.kind,
            user_id: r.actor.user_id,
            token_id: r.actor.token_id,
            username: r.actor.username.as_deref(),
            role: r.actor.role.as_deref(),
            action: &r.action,
            outcome: r.outcome,
            purpose: r.purpose.as_deref(),
            subject_id: r.subject_id,
            record_ids: &r.record_ids,
            fields: &r.fields,
            reason: r.reason.as_deref(),
            request_id: r.request_id.as_deref(),
            client: r.client.as_deref(),
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            0x0c => b"\\f",
            b'\r' => b"\\r",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn write_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_uuid(out: &mut Vec<u8>, id: &Uuid) {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    out.push(b'"');
    out.extend_from_slice(id.hyphenated().encode_lower(&mut buf).as_bytes());
    out.push(b'"');
}

fn write_opt_uuid(out: &mut Vec<u8>, id: Option<&Uuid>) {
    match id {
        Some(id) => write_uuid(out, id),
        None => out.extend_from_slice(b"null"),
    }
}

fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Writes `n` in decimal, zero-padded to at least `width` digits.
fn write_digits(out: &mut Vec<u8>, n: u32, width: usize) {
    let mut buf = [b'0'; 10];
    let mut n = n;
    let mut i = buf.len();
    while n > 0 || buf.len() - i < width {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&buf[i..]);
}

/// Two decimal digits of `n < 100`.
fn two(n: u32) -> [u8; 2] {
    [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]
}

fn write_time(out: &mut Vec<u8>, at: &DateTime<Utc>) {
    let naive = at.naive_utc();
    let (date, time) = (naive.date(), naive.time());
    let year = date.year();
    out.push(b'"');
    if year < 0 {
        out.push(b'-');
    } else if year > 9999 {
        out.push(b'+');
    }
    write_digits(out, year.unsigned_abs(), 4);
    let nanos = time.nanosecond();
    // chrono keeps a leap second as second 59 with nanoseconds >= 1e9.
    let (second, nanos) = if nanos >= 1_000_000_000 {
        (time.second() + 1, nanos - 1_000_000_000)
    } else {
        (time.second(), nanos)
    };
    let micros = nanos / 1000;
    let [mo1, mo2] = two(date.month());
    let [d1, d2] = two(date.day());
    let [h1, h2] = two(time.hour());
    let [mi1, mi2] = two(time.minute());
    let [s1, s2] = two(second);
    let [f1, f2] = two(micros / 10_000);
    let [f3, f4] = two(micros / 100);
    let [f5, f6] = two(micros);
    out.extend_from_slice(&[
        b'-', mo1, mo2, b'-', d1, d2, b'T', h1, h2, b':', mi1, mi2, b':', s1, s2, b'.', f1, f2, f3, f4, f5, f6, b'Z',
        b'"',
    ]);
}

fn write_hex(out: &mut Vec<u8>, bytes: &[u8; 32]) {
    let mut buf = [0u8; 64];
    for (pair, b) in buf.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0xf)];
    }
    out.extend_from_slice(&buf);
}

fn write_view<S: AsRef<str>>(out: &mut Vec<u8>, v: &View<'_, S>) {
    out.extend_from_slice(b"{\"action\":");
    write_str(out, v.action);
    out.extend_from_slice(b",\"actor\":{\"kind\":\"");
    out.extend_from_slice(v.kind.as_str().as_bytes());
    out.extend_from_slice(b"\",\"role\":");
    write_opt_str(out, v.role);
    out.extend_from_slice(b",\"token_id\":");
    write_opt_uuid(out, v.token_id.as_ref());
    out.extend_from_slice(b",\"user_id\":");
    write_opt_uuid(out, v.user_id.as_ref());
    out.extend_from_slice(b",\"username\":");
    write_opt_str(out, v.username);
    out.extend_from_slice(b"},\"at\":");
    write_time(out, v.at);
    out.extend_from_slice(b",\"client\":");
    write_opt_str(out, v.client);
    out.extend_from_slice(b",\"fields\":[");
    for (i, f) in v.fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, f.as_ref());
    }
    out.extend_from_slice(b"],\"index\":");
    write_u64(out, v.index);
    out.extend_from_slice(b",\"outcome\":\"");
    out.extend_from_slice(v.outcome.as_str().as_bytes());
    out.extend_from_slice(b"\",\"prev\":\"");
    write_hex(out, v.prev);
    out.extend_from_slice(b"\",\"purpose\":");
    write_opt_str(out, v.purpose);
    out.extend_from_slice(b",\"reason\":");
    write_opt_str(out, v.reason);
    out.extend_from_slice(b",\"record_ids\":[");
    for (i, id) in v.record_ids.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_uuid(out, id);
    }
    out.extend_from_slice(b"],\"request_id\":");
    write_opt_str(out, v.request_id);
    out.extend_from_slice(b",\"subject_id\":");
    write_opt_uuid(out, v.subject_id.as_ref());
    out.extend_from_slice(b",\"v\":");
    write_u64(out, FORMAT_VERSION);
    out.push(b'}');
}

/// The canonical bytes of an entry (see the module docs).
#[must_use]
pub fn encode_entry(entry: &AuditEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write_view(&mut out, &View::of(entry.index, &entry.prev, &entry.record));
    out
}

/// Encodes the entry at `index` after the entry whose leaf hash is `prev`:
/// its canonical bytes and its leaf hash (the next entry's `prev`).
#[must_use]
pub fn seal_entry(index: u64, prev: &Hash, record: &AuditRecord) -> (Vec<u8>, Hash) {
    let mut out = Vec::with_capacity(512);
    write_view(&mut out, &View::of(index, prev, record));
    let h = leaf_hash(&out);
    (out, h)
}

// ---------------------------------------------------------------- decoding
//
// Two parsers produce the same `Parsed` values:
//
// - `parse_fast`, a strict hand-written reader of the canonical layout
//   (keys in their fixed order, only the escapes the encoder writes). It is
//   what accepts entries: whatever it reads is re-encoded and must equal the
//   input byte for byte, so a mistake in it can only reject, never accept
//   a non-canonical entry.
// - `parse_serde`, a plain `serde_json` parse, used to explain why bytes
//   were rejected (and, in the tests, as an oracle for the fast parser).

/// The values of an entry, borrowing strings from the input where possible.
struct Parsed<'a> {
    index: u64,
    prev: Hash,
    at: DateTime<Utc>,
    kind: ActorKind,
    user_id: Option<Uuid>,
    token_id: Option<Uuid>,
    username: Option<Cow<'a, str>>,
    role: Option<Cow<'a, str>>,
    action: Cow<'a, str>,
    outcome: Outcome,
    purpose: Option<Cow<'a, str>>,
    subject_id: Option<Uuid>,
    record_ids: Vec<Uuid>,
    fields: Vec<Cow<'a, str>>,
    reason: Option<Cow<'a, str>>,
    request_id: Option<Cow<'a, str>>,
    client: Option<Cow<'a, str>>,
}

impl<'a> Parsed<'a> {
    fn view(&self) -> View<'_, Cow<'a, str>> {
        View {
            index: self.index,
            prev: &self.prev,
            at: &self.at,
            kind: self.kind,
            user_id: self.user_id,
            token_id: self.token_id,
            username: self.username.as_deref(),
            role: self.role.as_deref(),
            action: &self.action,
            outcome: self.outcome,
            purpose: self.purpose.as_deref(),
            subject_id: self.subject_id,
            record_ids: &self.record_ids,
            fields: &self.fields,
            reason: self.reason.as_deref(),
            request_id: self.request_id.as_deref(),
            client: self.client.as_deref(),
        }
    }

    fn into_entry(self) -> AuditEntry {
        let own = |s: Option<Cow<'_, str>>| s.map(Cow::into_owned);
        AuditEntry {
            index: self.index,
            prev: self.prev,
            record: AuditRecord {
                at: self.at,
                actor: Actor {
                    kind: self.kind,
                    user_id: self.user_id,
                    token_id: self.token_id,
                    username: own(self.username),
                    role: own(self.role),
                },
                action: self.action.into_owned(),
                outcome: self.outcome,
                purpose: own(self.purpose),
                subject_id: self.subject_id,
                record_ids: self.record_ids,
                fields: self.fields.into_iter().map(Cow::into_owned).collect(),
                reason: own(self.reason),
                request_id: own(self.request_id),
                client: own(self.client),
            },
        }
    }
}

/// The strict reader of the canonical layout.
struct Reader<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.i).copied()
    }

    fn lit(&mut self, expected: &str) -> Option<()> {
        let end = self.i + expected.len();
        (self.s.as_bytes().get(self.i..end)? == expected.as_bytes()).then(|| self.i = end)
    }

    fn null(&mut self) -> bool {
        self.lit("null").is_some()
    }

    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.lit("\"")?;
        let b = self.s.as_bytes();
        let start = self.i;
        let mut j = start;
        while j < b.len() && b[j] != b'"' && b[j] != b'\\' {
            j += 1;
        }
        if *b.get(j)? == b'"' {
            self.i = j + 1;
            return self.s.get(start..j).map(Cow::Borrowed);
        }
        // Escapes: only those the encoder writes.
        let mut out = String::from(self.s.get(start..j)?);
        loop {
            match *b.get(j)? {
                b'"' => break,
                b'\\' => {
                    let c = match *b.get(j + 1)? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'b' => '\u{8}',
                        b't' => '\t',
                        b'n' => '\n',
                        b'f' => '\u{c}',
                        b'r' => '\r',
                        b'u' => {
                            let hex = self.s.get(j + 2..j + 6)?;
                            let code = u8::from_str_radix(hex.strip_prefix("00")?, 16).ok()?;
                            j += 4;
                            char::from(code)
                        }
                        _ => return None,
                    };
                    out.push(c);
                    j += 2;
                }
                _ => {
                    // Copy up to the next quote or backslash (ASCII, so on a char boundary).
                    let from = j;
                    while j < b.len() && b[j] != b'"' && b[j] != b'\\' {
                        j += 1;
                    }
                    out.push_str(self.s.get(from..j)?);
                }
            }
        }
        self.i = j + 1;
        Some(Cow::Owned(out))
    }

    fn opt_string(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null() {
            Some(None)
        } else {
            self.string().map(Some)
        }
    }

    fn uuid(&mut self) -> Option<Uuid> {
        self.lit("\"")?;
        let end = self.i + uuid::fmt::Hyphenated::LENGTH;
        let id = Uuid::try_parse_ascii(self.s.as_bytes().get(self.i..end)?).ok()?;
        self.i = end;
        self.lit("\"")?;
        Some(id)
    }

    fn opt_uuid(&mut self) -> Option<Option<Uuid>> {
        if self.null() {
            Some(None)
        } else {
            self.uuid().map(Some)
        }
    }

    fn number(&mut self) -> Option<u64> {
        let b = self.s.as_bytes();
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(d) = b.get(self.i).filter(|c| c.is_ascii_digit()) {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.i += 1;
        }
        (self.i > start).then_some(n)
    }

    fn array<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        self.lit("[")?;
        let mut out = Vec::new();
        if self.lit("]").is_some() {
            return Some(out);
        }
        loop {
            out.push(item(self)?);
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(out);
                }
                _ => return None,
            }
        }
    }
}

fn actor_kind(s: &str) -> Option<ActorKind> {
    [
        ActorKind::User,
        ActorKind::Token,
        ActorKind::System,
        ActorKind::Anonymous,
    ]
    .into_iter()
    .find(|k| k.as_str() == s)
}

fn outcome(s: &str) -> Option<Outcome> {
    [Outcome::Ok, Outcome::Denied, Outcome::Failed]
        .into_iter()
        .find(|o| o.as_str() == s)
}

/// Reads the canonical layout; `None` on anything else (including another
/// format version).
fn parse_fast(bytes: &[u8]) -> Option<Parsed<'_>> {
    let s = std::str::from_utf8(bytes).ok()?;
    let r = &mut Reader { s, i: 0 };
    r.lit("{\"action\":")?;
    let action = r.string()?;
    r.lit(",\"actor\":{\"kind\":")?;
    let kind = actor_kind(&r.string()?)?;
    r.lit(",\"role\":")?;
    let role = r.opt_string()?;
    r.lit(",\"token_id\":")?;
    let token_id = r.opt_uuid()?;
    r.lit(",\"user_id\":")?;
    let user_id = r.opt_uuid()?;
    r.lit(",\"username\":")?;
    let username = r.opt_string()?;
    r.lit("},\"at\":")?;
    let at = parse_time(&r.string()?)?;
    r.lit(",\"client\":")?;
    let client = r.opt_string()?;
    r.lit(",\"fields\":")?;
    let fields = r.array(Reader::string)?;
    r.lit(",\"index\":")?;
    let index = r.number()?;
    r.lit(",\"outcome\":")?;
    let outcome = outcome(&r.string()?)?;
    r.lit(",\"prev\":")?;
    let prev = parse_hex32(&r.string()?)?;
    r.lit(",\"purpose\":")?;
    let purpose = r.opt_string()?;
    r.lit(",\"reason\":")?;
    let reason = r.opt_string()?;
    r.lit(",\"record_ids\":")?;
    let record_ids = r.array(Reader::uuid)?;
    r.lit(",\"request_id\":")?;
    let request_id = r.opt_string()?;
    r.lit(",\"subject_id\":")?;
    let subject_id = r.opt_uuid()?;
    r.lit(",\"v\":")?;
    if r.number()? != FORMAT_VERSION {
        return None;
    }
    r.lit("}")?;
    (r.i == s.len()).then_some(Parsed {
        index,
        prev,
        at,
        kind,
        user_id,
        token_id,
        username,
        role,
        action,
        outcome,
        purpose,
        subject_id,
        record_ids,
        fields,
        reason,
        request_id,
        client,
    })
}

/// A string for `serde_json` that borrows from the input unless it had escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> serde::de::Visitor<'de> for V<'a> {
            type Value = Str<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

fn cow(s: Option<Str<'_>>) -> Option<Cow<'_, str>> {
    s.map(|s| s.0)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireActor<'a> {
    kind: ActorKind,
    #[serde(borrow)]
    role: Option<Str<'a>>,
    token_id: Option<Uuid>,
    user_id: Option<Uuid>,
    #[serde(borrow)]
    username: Option<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    #[serde(borrow)]
    action: Str<'a>,
    #[serde(borrow)]
    actor: WireActor<'a>,
    #[serde(borrow)]
    at: Str<'a>,
    #[serde(borrow)]
    client: Option<Str<'a>>,
    #[serde(borrow)]
    fields: Vec<Str<'a>>,
    index: u64,
    outcome: Outcome,
    #[serde(borrow)]
    prev: Str<'a>,
    #[serde(borrow)]
    purpose: Option<Str<'a>>,
    #[serde(borrow)]
    reason: Option<Str<'a>>,
    record_ids: Vec<Uuid>,
    #[serde(borrow)]
    request_id: Option<Str<'a>>,
    subject_id: Option<Uuid>,
    v: u64,
}

/// Parses with `serde_json` (any key order, any JSON spelling) and checks
/// the version, `prev` and `at`; says precisely what is wrong.
fn parse_serde(bytes: &[u8]) -> Result<Parsed<'_>, DecodeError> {
    let w: Wire<'_> = serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
    if w.v != FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion(w.v));
    }
    let prev = parse_hex32(&w.prev.0).ok_or(DecodeError::BadPrev)?;
    let at = parse_time(&w.at.0).ok_or_else(|| DecodeError::BadTimestamp(w.at.0.clone().into_owned()))?;
    Ok(Parsed {
        index: w.index,
        prev,
        at,
        kind: w.actor.kind,
        user_id: w.actor.user_id,
        token_id: w.actor.token_id,
        username: cow(w.actor.username),
        role: cow(w.actor.role),
        action: w.action.0,
        outcome: w.outcome,
        purpose: cow(w.purpose),
        subject_id: w.subject_id,
        record_ids: w.record_ids,
        fields: w.fields.into_iter().map(|f| f.0).collect(),
        reason: cow(w.reason),
        request_id: cow(w.request_id),
        client: cow(w.client),
    })
}

/// Why `bytes` were rejected by the fast path.
fn explain(bytes: &[u8]) -> DecodeError {
    match parse_serde(bytes) {
        Err(e) => e,
        Ok(_) => DecodeError::NonCanonical,
    }
}

/// Parses canonical bytes: the strict reader, then re-encoding into `buf`
/// must give back exactly `bytes`.
fn parse_canonical<'a>(bytes: &'a [u8], buf: &mut Vec<u8>) -> Result<Parsed<'a>, DecodeError> {
    if let Some(p) = parse_fast(bytes) {
        buf.clear();
        write_view(buf, &p.view());
        if buf.as_slice() == bytes {
            return Ok(p);
        }
    }
    Err(explain(bytes))
}

/// What a canonical check yields without building an owned entry.
pub(crate) struct Checked {
    pub index: u64,
    pub prev: Hash,
}

/// Checks that `bytes` are a canonical entry, using `buf` as scratch space
/// for the re-encoding; allocates only for escaped strings and non-empty
/// arrays.
pub(crate) fn check_canonical(bytes: &[u8], buf: &mut Vec<u8>) -> Result<Checked, DecodeError> {
    let p = parse_canonical(bytes, buf)?;
    Ok(Checked {
        index: p.index,
        prev: p.prev,
    })
}

/// Decodes canonical entry bytes; anything else (reordered keys, spaces,
/// escapes that need not be, upper-case hex or UUIDs, missing `null`s,
/// unknown keys, another version) is rejected.
pub fn decode_entry(bytes: &[u8]) -> Result<AuditEntry, DecodeError> {
    let mut buf = Vec::with_capacity(bytes.len());
    Ok(parse_canonical(bytes, &mut buf)?.into_entry())
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 {
        return None;
    }
    s.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}
/// Parses `[+|-]YYYY-MM-DDTHH:MM:SS.ffffffZ` (the canonical form; other
/// spellings of the same instant are caught by the re-encode comparison).
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    let (negative, b) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    // The rest after the year is always "-MM-DDTHH:MM:SS.ffffffZ" (23 bytes).
    let year_len = b.len().checked_sub(23)?;
    let (y, rest) = b.split_at(year_len);
    let year = i32::try_from(digits(y)?).ok()?;
    let year = if negative { -year } else { year };
    if rest[0] != b'-'
        || rest[3] != b'-'
        || rest[6] != b'T'
        || rest[9] != b':'
        || rest[12] != b':'
        || rest[15] != b'.'
        || rest[22] != b'Z'
    {
        return None;
    }
    let month = digits(&rest[1..3])?;
    let day = digits(&rest[4..6])?;
    let hour = digits(&rest[7..9])?;
    let minute = digits(&rest[10..12])?;
    let second = digits(&rest[13..15])?;
    let micro = digits(&rest[16..22])?;
    let date = NaiveDate::from_ymd_opt(year, month, day)?;
    let time = if second == 60 {
        NaiveTime::from_hms_micro_opt(hour, minute, 59, micro + 1_000_000)?
    } else {
        NaiveTime::from_hms_micro_opt(hour, minute, second, micro)?
    };
    Some(date.and_time(time).and_utc())
}
/// Lower-case hex digit values; 0xff for every other byte. A table keeps
/// the loop free of data-dependent branches (hashes are random digits).
const UNHEX: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

fn parse_hex32(s: &str) -> Option<Hash> {
    let b: &[u8; 64] = s.as_bytes().try_into().ok()?;
    let mut h = [0u8; 32];
    let mut bad = 0u8;
    for (out, pair) in h.iter_mut().zip(b.chunks_exact(2)) {
        let (hi, lo) = (UNHEX[usize::from(pair[0])], UNHEX[usize::from(pair[1])]);
        bad |= hi | lo;
        *out = hi << 4 | lo;
    }
    (bad & 0xf0 == 0).then_some(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(0x0190_a5b4_7c3e_7000_8000_0000_0000_0000 | n)
    }

    pub(crate) fn sample() -> AuditEntry {
        let at = Utc.with_ymd_and_hms(2026, 1, 31, 9, 30, 0).unwrap();
        AuditEntry {
            index: 7,
            prev: [0xab; 32],
            record: AuditRecord {
                at,
                actor: Actor {
                    kind: ActorKind::User,
                    user_id: Some(id(1)),
                    token_id: None,
                    username: Some("alice".into()),
                    role: Some("sales".into()),
                },
                action: "contact.read".into(),
                outcome: Outcome::Ok,
                purpose: Some("sales".into()),
                subject_id: Some(id(0xaa)),
                record_ids: vec![id(0xaa), id(0xbb)],
                fields: vec!["email".into(), "given_name".into()],
                reason: None,
                request_id: Some("req-1".into()),
                client: Some("192.0.2.10".into()),
            },
        }
    }

    const GOLDEN: &str = concat!(
        r#"{"action":"contact.read","actor":{"kind":"user","role":"sales","token_id":null,"#,
        r#""user_id":"0190a5b4-7c3e-7000-8000-000000000001","username":"alice"},"#,
        r#""at":"2026-01-31T09:30:00.000000Z","client":"192.0.2.10","fields":["email","given_name"],"#,
        r#""index":7,"outcome":"ok","#,
        r#""prev":"abababababababababababababababababababababababababababababababab","#,
        r#""purpose":"sales","reason":null,"#,
        r#""record_ids":["0190a5b4-7c3e-7000-8000-0000000000aa","0190a5b4-7c3e-7000-8000-0000000000bb"],"#,
        r#""request_id":"req-1","subject_id":"0190a5b4-7c3e-7000-8000-0000000000aa","v":1}"#
    );

    #[test]
    fn golden_bytes() {
        let bytes = encode_entry(&sample());
        assert_eq!(String::from_utf8(bytes.clone()).unwrap(), GOLDEN);
        // The leaf hash, computed independently with Python:
        // obj = {...the same record...}
        // s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        // assert s == GOLDEN; hashlib.sha256(b"\0" + s.encode()).hexdigest()
        let (sealed, h) = seal_entry(7, &[0xab; 32], &sample().record);
        assert_eq!(sealed, bytes);
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "433489de076ae358eab4924319d07a6443680d883f5a6ff1373cbf9bcc187229");
    }

    #[test]
    fn golden_bytes_are_sorted_compact_json() {
        // serde_json's Map (no preserve_order) sorts keys: the same bytes.
        let v: serde_json::Value = serde_json::from_str(GOLDEN).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), GOLDEN);
    }

    #[test]
    fn round_trip() {
        let e = sample();
        assert_eq!(decode_entry(&encode_entry(&e)).unwrap(), e);

        let mut e2 = sample();
        e2.index = u64::MAX;
        e2.prev = [0; 32];
        e2.record.actor = Actor::system();
        e2.record.outcome = Outcome::Denied;
        e2.record.reason = Some("purpose \"sales\" not allowed\n\t\\ \u{1} \u{7f} é ü / 日本".into());
        e2.record.fields = vec![];
        e2.record.record_ids = vec![];
        e2.record.subject_id = None;
        e2.record.client = None;
        e2.record.request_id = None;
        e2.record.purpose = None;
        e2.record.at =
            Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap() + chrono::Duration::microseconds(999_999);
        let bytes = encode_entry(&e2);
        assert_eq!(decode_entry(&bytes).unwrap(), e2);
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains(r#""reason":"purpose \"sales\" not allowed\n\t\\ \u0001 "#),
            "{text}"
        );
        assert!(text.contains(r#""at":"1999-12-31T23:59:59.999999Z""#), "{text}");
        assert!(text.contains(r#""index":18446744073709551615"#), "{text}");
        // Escaping agrees with serde_json's.
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), text);
    }

    #[test]
    fn timestamps_are_truncated_to_microseconds() {
        let mut e = sample();
        e.record.at += chrono::Duration::nanoseconds(1_234_567);
        let d = decode_entry(&encode_entry(&e)).unwrap();
        assert_eq!(d.record.at, sample().record.at + chrono::Duration::microseconds(1234));
        let r = AuditRecord::new(e.record.at, Actor::system(), "x", Outcome::Ok);
        assert_eq!(r.at.nanosecond() % 1000, 0);
    }

    #[test]
    fn odd_years_round_trip() {
        for (y, want) in [(10_000, "+10000-"), (-5, "-0005-"), (0, "0000-"), (999, "0999-")] {
            let mut e = sample();
            e.record.at = Utc.with_ymd_and_hms(y, 2, 3, 4, 5, 6).unwrap();
            let bytes = encode_entry(&e);
            let text = String::from_utf8(bytes.clone()).unwrap();
            assert!(
                text.contains(&format!("\"at\":\"{want}02-03T04:05:06.000000Z\"")),
                "{text}"
            );
            assert_eq!(decode_entry(&bytes).unwrap(), e);
        }
    }

    #[test]
    fn serde_of_a_record_writes_microseconds() {
        let r = sample().record;
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"at\":\"2026-01-31T09:30:00.000000Z\""), "{json}");
        assert!(
            json.contains("\"outcome\":\"ok\"") && json.contains("\"kind\":\"user\""),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<AuditRecord>(&json).unwrap(), r);
        let other = json.replace("2026-01-31T09:30:00.000000Z", "2026-01-31T10:30:00+01:00");
        assert_eq!(serde_json::from_str::<AuditRecord>(&other).unwrap(), r);
    }

    #[test]
    fn leap_seconds_round_trip() {
        let mut e = sample();
        let date = NaiveDate::from_ymd_opt(2016, 12, 31).unwrap();
        e.record.at = date
            .and_time(NaiveTime::from_hms_micro_opt(23, 59, 59, 1_250_000).unwrap())
            .and_utc();
        let bytes = encode_entry(&e);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"at\":\"2016-12-31T23:59:60.250000Z\""), "{text}");
        assert_eq!(decode_entry(&bytes).unwrap(), e);
        // Second 60 only stands for a leap second; 61 is no time at all.
        let bad = text.replacen(":60.250000Z", ":61.250000Z", 1);
        assert!(matches!(
            decode_entry(bad.as_bytes()),
            Err(DecodeError::BadTimestamp(_))
        ));
    }

    #[test]
    fn rejects_non_canonical_input() {
        let golden = GOLDEN.to_owned();
        let variants = [
            // Keys reordered (`v` first).
            golden
                .replacen("{\"action\"", "{\"v\":1,\"action\"", 1)
                .replacen(",\"v\":1}", "}", 1),
            // Whitespace.
            golden.replacen(",\"index\":7", ", \"index\":7", 1),
            golden.clone() + "\n",
            // Unneeded escape.
            golden.replacen("\"alice\"", "\"\\u0061lice\"", 1),
            // Upper-case hex and UUIDs.
            golden.replacen("abababab", "ABABABAB", 1),
            golden.replacen(
                "0190a5b4-7c3e-7000-8000-000000000001",
                "0190A5B4-7C3E-7000-8000-000000000001",
                1,
            ),
            golden.replacen(
                "0190a5b4-7c3e-7000-8000-000000000001",
                "0190a5b47c3e70008000000000000001",
                1,
            ),
            // A missing null, an extra key.
            golden.replacen("\"reason\":null,", "", 1),
            golden.replacen("\"reason\":null,", "\"reason\":null,\"name\":\"Bob\",", 1),
            // Other spellings of the same values.
            golden.replacen("\"index\":7", "\"index\":7.0", 1),
            golden.replacen("\"index\":7", "\"index\":07", 1),
            golden.replacen("09:30:00.000000Z", "09:30:00Z", 1),
            golden.replacen("09:30:00.000000Z", "10:30:00.000000+01:00", 1),
            golden.replacen("\"v\":1", "\"v\":2", 1),
            // Duplicate keys.
            golden.replacen("\"reason\":null,", "\"reason\":null,\"reason\":null,", 1),
        ];
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(v, &golden, "variant {i} did not change anything");
            let err = decode_entry(v.as_bytes());
            assert!(err.is_err(), "variant {i} was accepted: {v}");
            let mut buf = Vec::new();
            assert!(
                check_canonical(v.as_bytes(), &mut buf).is_err(),
                "variant {i} passed the fast check"
            );
        }
        assert_eq!(
            decode_entry(golden.replacen("\"v\":1", "\"v\":2", 1).as_bytes()),
            Err(DecodeError::UnsupportedVersion(2))
        );
        assert_eq!(
            decode_entry(golden.replacen(",\"index\":7", ", \"index\":7", 1).as_bytes()),
            Err(DecodeError::NonCanonical)
        );
        let mut buf = Vec::new();
        assert!(check_canonical(GOLDEN.as_bytes(), &mut buf).is_ok());
    }

    /// The strict reader accepts exactly what `serde_json` + re-encoding
    /// accepts, on thousands of small corruptions of valid entries.
    #[test]
    fn fast_parser_agrees_with_serde_json() {
        let mut entries = vec![sample()];
        let mut e = sample();
        e.record.actor = Actor::anonymous();
        e.record.reason = Some("bad \"password\"\n\u{1}\\ é".into());
        e.record.fields = vec![];
        e.record.record_ids = vec![];
        e.record.subject_id = None;
        entries.push(e);
        let mut accepted = 0;
        let mut total = 0;
        for e in &entries {
            let good = encode_entry(e);
            let mut inputs = Vec::new();
            for i in 0..good.len() {
                let mut d = good.clone();
                d.remove(i);
                inputs.push(d);
                let mut d = good.clone();
                d.insert(i, good[i]);
                inputs.push(d);
                for c in b" \"\\0aA,}n\n\x01" {
                    let mut d = good.clone();
                    d[i] = *c;
                    inputs.push(d);
                }
            }
            for input in inputs {
                let mut buf = Vec::new();
                let fast = parse_canonical(&input, &mut buf).is_ok();
                let oracle = parse_serde(&input).is_ok_and(|p| {
                    let mut out = Vec::new();
                    write_view(&mut out, &p.view());
                    out == input
                });
                assert_eq!(fast, oracle, "disagree on {}", String::from_utf8_lossy(&input));
                if fast {
                    assert_eq!(encode_entry(&decode_entry(&input).unwrap()), input);
                }
                accepted += usize::from(fast);
                total += 1;
            }
        }
        // Some corruptions are themselves valid entries (another digit, another letter).
        assert!(accepted > 100 && accepted < total / 2, "{accepted} of {total}");
    }

    /// The record type has exactly these fields; none holds a data
    /// subject's personal data (values), only ids and names of things.
    /// Adding a field breaks this test on purpose: review it for personal
    /// data before extending the list.
    #[test]
    fn no_personal_data_fields() {
        let AuditRecord {
            at: _,
            actor:
                Actor {
                    kind: _,
                    user_id: _,
                    token_id: _,
                    username: _,
                    role: _,
                },
            action: _,
            outcome: _,
            purpose: _,
            subject_id: _,
            record_ids: _,
            fields: _,
            reason: _,
            request_id: _,
            client: _,
        } = sample().record;
        let v: serde_json::Value = serde_json::from_slice(&encode_entry(&sample())).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "action",
                "actor",
                "at",
                "client",
                "fields",
                "index",
                "outcome",
                "prev",
                "purpose",
                "reason",
                "record_ids",
                "request_id",
                "subject_id",
                "v"
            ]
        );
        let actor: Vec<&str> = v["actor"].as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(actor, ["kind", "role", "token_id", "user_id", "username"]);
    }
}
