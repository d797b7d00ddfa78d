//! Read queries on a pooled read connection.

use crate::{AuditVisit, ScanRow};
use rusqlite::{params, Connection, Row};
use steward_domain::values::{Amount, CurrencyCode};
use steward_domain::{
    Deal, DealId, DealStage, InteractionId, InteractionKind, Organization, OrganizationId, SubjectId, TokenId, UserId,
};
use uuid::Uuid;

use super::ops::map_err;
use crate::{
    fields, from_micros, ContactRow, InteractionRow, StoreError, StoreResult, StoredKey, TokenKind, TokenRow, UserRow,
    MAX_PAGE,
};

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

fn uuid_at(row: &Row<'_>, i: usize) -> StoreResult<Uuid> {
    let b: Vec<u8> = row.get(i).map_err(|e| map_err(&e))?;
    Uuid::from_slice(&b).map_err(|_| corrupt("bad id"))
}

fn opt_uuid_at(row: &Row<'_>, i: usize) -> StoreResult<Option<Uuid>> {
    let b: Option<Vec<u8>> = row.get(i).map_err(|e| map_err(&e))?;
    b.map(|b| Uuid::from_slice(&b).map_err(|_| corrupt("bad id")))
        .transpose()
}

fn get<T: rusqlite::types::FromSql>(row: &Row<'_>, i: usize) -> StoreResult<T> {
    row.get(i).map_err(|e| map_err(&e))
}

fn page(limit: u32) -> u32 {
    limit.clamp(1, MAX_PAGE)
}

/// Lower bound for `id > ?` paging: 16 zero bytes sorts before every UUID.
fn after_bytes(after: Option<&[u8; 16]>) -> [u8; 16] {
    after.copied().unwrap_or([0; 16])
}

const CONTACT_COLS: &str = "c.subject_id, c.purposes, c.fields, c.created_at, c.updated_at, c.version, \
     k.master_key_id, k.key_version, k.wrapped, c.restricted, c.consented";
/// Every contact read carries its wrapped data key.
const KEY_JOIN: &str = "LEFT JOIN subject_keys k ON k.subject_id = c.subject_id";
const CONTACT_FROM: &str = "contacts c LEFT JOIN subject_keys k ON k.subject_id = c.subject_id";

fn contact(row: &Row<'_>) -> StoreResult<ContactRow> {
    let purposes: String = get(row, 1)?;
    let blob: Vec<u8> = get(row, 2)?;
    Ok(ContactRow {
        subject_id: SubjectId::from_uuid(uuid_at(row, 0)?),
        purposes: purposes
            .split(',')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
        fields: fields::decode(&blob)?,
        created_at: from_micros(get(row, 3)?)?,
        updated_at: from_micros(get(row, 4)?)?,
        version: get(row, 5)?,
        key: stored_key_at(row, 6)?,
        restricted: get(row, 9)?,
        consented: crate::decode_consented(&get::<String>(row, 10)?)?,
    })
}

fn stored_key_at(row: &Row<'_>, i: usize) -> StoreResult<Option<StoredKey>> {
    let master: Option<String> = get(row, i)?;
    let Some(master_key_id) = master else { return Ok(None) };
    Ok(Some(StoredKey {
        master_key_id,
        version: get(row, i + 1)?,
        wrapped: get(row, i + 2)?,
    }))
}

fn collect<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(|e| map_err(&e))?;
    let mut rows = stmt.query(params).map_err(|e| map_err(&e))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(|e| map_err(&e))? {
        out.push(f(row)?);
    }
    Ok(out)
}

fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    Ok(collect(conn, sql, params, f)?.into_iter().next())
}

pub fn get_contact(conn: &Connection, id: SubjectId) -> StoreResult<Option<ContactRow>> {
    one(
        conn,
        &format!("SELECT {CONTACT_COLS} FROM {CONTACT_FROM} WHERE c.subject_id = ?1"),
        [id.as_bytes()],
        contact,
    )
}

pub fn list_contacts(conn: &Connection, after: Option<SubjectId>, limit: u32) -> StoreResult<Vec<ContactRow>> {
    collect(
        conn,
        &format!("SELECT {CONTACT_COLS} FROM {CONTACT_FROM} WHERE c.subject_id > ?1 ORDER BY c.subject_id LIMIT ?2"),
        params![after_bytes(after.as_ref().map(SubjectId::as_bytes)), page(limit)],
        contact,
    )
}

pub fn find_contacts_by_term(
    conn: &Connection,
    term: &[u8],
    after: Option<SubjectId>,
    limit: u32,
) -> StoreResult<Vec<ContactRow>> {
    collect(
        conn,
        &format!(
            "SELECT {CONTACT_COLS} FROM contact_terms t JOIN contacts c ON c.subject_id = t.subject_id {KEY_JOIN} \
             WHERE t.term = ?1 AND t.subject_id > ?2 ORDER BY t.subject_id LIMIT ?3"
        ),
        params![term, after_bytes(after.as_ref().map(SubjectId::as_bytes)), page(limit)],
        contact,
    )
}

pub fn count(conn: &Connection, sql: &str) -> StoreResult<u64> {
    let n: i64 = conn.query_row(sql, [], |r| r.get(0)).map_err(|e| map_err(&e))?;
    u64::try_from(n).map_err(|_| corrupt("negative count"))
}

fn organization(row: &Row<'_>) -> StoreResult<Organization> {
    Ok(Organization {
        id: OrganizationId::from_uuid(uuid_at(row, 0)?),
        name: get(row, 1)?,
        domain: get(row, 2)?,
        created_at: from_micros(get(row, 3)?)?,
        updated_at: from_micros(get(row, 4)?)?,
    })
}

pub fn get_organization(conn: &Connection, id: OrganizationId) -> StoreResult<Option<Organization>> {
    one(
        conn,
        "SELECT id, name, domain, created_at, updated_at FROM organizations WHERE id = ?1",
        [id.as_bytes()],
        organization,
    )
}

pub fn list_organizations(
    conn: &Connection,
    after: Option<OrganizationId>,
    limit: u32,
) -> StoreResult<Vec<Organization>> {
    collect(
        conn,
        "SELECT id, name, domain, created_at, updated_at FROM organizations WHERE id > ?1 ORDER BY id LIMIT ?2",
        params![after_bytes(after.as_ref().map(OrganizationId::as_bytes)), page(limit)],
        organization,
    )
}

const DEAL_COLS: &str = "id, title, stage, amount_minor, currency, organization_id, subject_id, created_at, updated_at";

fn deal(row: &Row<'_>) -> StoreResult<Deal> {
    let stage: String = get(row, 2)?;
    let currency: Option<String> = get(row, 4)?;
    Ok(Deal {
        id: DealId::from_uuid(uuid_at(row, 0)?),
        title: get(row, 1)?,
        stage: DealStage::parse(&stage).map_err(|_| corrupt("bad deal stage"))?,
        amount: get::<Option<i64>>(row, 3)?.map(Amount::from_minor),
        currency: currency
            .map(|c| CurrencyCode::parse(&c).map_err(|_| corrupt("bad currency")))
            .transpose()?,
        organization_id: opt_uuid_at(row, 5)?.map(OrganizationId::from_uuid),
        contact_id: opt_uuid_at(row, 6)?.map(SubjectId::from_uuid),
        created_at: from_micros(get(row, 7)?)?,
        updated_at: from_micros(get(row, 8)?)?,
    })
}

pub fn get_deal(conn: &Connection, id: DealId) -> StoreResult<Option<Deal>> {
    one(
        conn,
        &format!("SELECT {DEAL_COLS} FROM deals WHERE id = ?1"),
        [id.as_bytes()],
        deal,
    )
}

pub fn list_deals(conn: &Connection, after: Option<DealId>, limit: u32) -> StoreResult<Vec<Deal>> {
    collect(
        conn,
        &format!("SELECT {DEAL_COLS} FROM deals WHERE id > ?1 ORDER BY id LIMIT ?2"),
        params![after_bytes(after.as_ref().map(DealId::as_bytes)), page(limit)],
        deal,
    )
}

pub fn deals_of_subject(conn: &Connection, subject: SubjectId) -> StoreResult<Vec<Deal>> {
    collect(
        conn,
        &format!("SELECT {DEAL_COLS} FROM deals WHERE subject_id = ?1 ORDER BY id"),
        [subject.as_bytes()],
        deal,
    )
}

fn interaction(row: &Row<'_>) -> StoreResult<InteractionRow> {
    let kind: String = get(row, 2)?;
    Ok(InteractionRow {
        id: InteractionId::from_uuid(uuid_at(row, 0)?),
        subject_id: SubjectId::from_uuid(uuid_at(row, 1)?),
        kind: InteractionKind::parse(&kind).map_err(|_| corrupt("bad interaction kind"))?,
        occurred_at: from_micros(get(row, 3)?)?,
        created_at: from_micros(get(row, 4)?)?,
        summary: get(row, 5)?,
    })
}

pub fn list_interactions(
    conn: &Connection,
    subject: SubjectId,
    after: Option<InteractionId>,
    limit: u32,
) -> StoreResult<Vec<InteractionRow>> {
    collect(
        conn,
        "SELECT id, subject_id, kind, occurred_at, created_at, summary FROM interactions \
         WHERE subject_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
        params![
            subject.as_bytes(),
            after_bytes(after.as_ref().map(InteractionId::as_bytes)),
            page(limit)
        ],
        interaction,
    )
}

const USER_COLS: &str =
    "u.id, u.username, u.role, u.password_hash, u.disabled, u.created_at, u.failed_logins, u.locked_until";

fn user_at(row: &Row<'_>, base: usize) -> StoreResult<UserRow> {
    let failed: i64 = get(row, base + 6)?;
    let locked: Option<i64> = get(row, base + 7)?;
    Ok(UserRow {
        id: UserId::from_uuid(uuid_at(row, base)?),
        username: get(row, base + 1)?,
        role: get(row, base + 2)?,
        password_hash: get(row, base + 3)?,
        disabled: get(row, base + 4)?,
        created_at: from_micros(get(row, base + 5)?)?,
        failed_logins: crate::failures_from_db(failed)?,
        locked_until: locked.map(from_micros).transpose()?,
    })
}

pub fn get_user(conn: &Connection, id: UserId) -> StoreResult<Option<UserRow>> {
    one(
        conn,
        &format!("SELECT {USER_COLS} FROM users u WHERE u.id = ?1"),
        [id.as_bytes()],
        |r| user_at(r, 0),
    )
}

pub fn get_user_by_username(conn: &Connection, username: &str) -> StoreResult<Option<UserRow>> {
    one(
        conn,
        &format!("SELECT {USER_COLS} FROM users u WHERE u.username = ?1"),
        [username],
        |r| user_at(r, 0),
    )
}

const TOKEN_COLS: &str =
    "t.id, t.user_id, t.kind, t.name, t.hash, t.created_at, t.expires_at, t.revoked_at, t.last_used_at, t.purpose, t.mfa";

fn token_at(r: &Row<'_>) -> StoreResult<TokenRow> {
    let kind: String = get(r, 2)?;
    let opt_time = |i: usize| -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        get::<Option<i64>>(r, i)?.map(from_micros).transpose()
    };
    Ok(TokenRow {
        id: TokenId::from_uuid(uuid_at(r, 0)?),
        user_id: UserId::from_uuid(uuid_at(r, 1)?),
        kind: TokenKind::parse(&kind).ok_or_else(|| corrupt("bad token kind"))?,
        name: get(r, 3)?,
        hash: get(r, 4)?,
        created_at: from_micros(get(r, 5)?)?,
        expires_at: opt_time(6)?,
        revoked_at: opt_time(7)?,
        last_used_at: opt_time(8)?,
        purpose: get(r, 9)?,
        mfa: get(r, 10)?,
    })
}

pub fn get_token_by_hash(conn: &Connection, hash: &[u8]) -> StoreResult<Option<(TokenRow, UserRow)>> {
    one(
        conn,
        &format!("SELECT {TOKEN_COLS}, {USER_COLS} FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1"),
        [hash],
        |r| Ok((token_at(r)?, user_at(r, 11)?)),
    )
}

pub fn list_users(conn: &Connection) -> StoreResult<Vec<UserRow>> {
    collect(
        conn,
        &format!("SELECT {USER_COLS} FROM users u ORDER BY u.username"),
        [],
        |r| user_at(r, 0),
    )
}

pub fn list_tokens(conn: &Connection, user: UserId) -> StoreResult<Vec<TokenRow>> {
    collect(
        conn,
        &format!("SELECT {TOKEN_COLS} FROM tokens t WHERE t.user_id = ?1 ORDER BY t.id"),
        [user.as_bytes()],
        token_at,
    )
}

pub fn get_credentials(conn: &Connection, user: UserId) -> StoreResult<Vec<crate::CredentialRow>> {
    collect(
        conn,
        "SELECT id, user_id, kind, secret, confirmed, last_step, created_at FROM credentials WHERE user_id = ?1 ORDER BY id",
        [user.as_bytes()],
        |r| {
            let step: Option<i64> = get(r, 5)?;
            Ok(crate::CredentialRow {
                id: uuid_at(r, 0)?,
                user_id: UserId::from_uuid(uuid_at(r, 1)?),
                kind: get(r, 2)?,
                secret: get(r, 3)?,
                confirmed: get(r, 4)?,
                last_step: step.map(crate::step_from_db).transpose()?,
                created_at: from_micros(get(r, 6)?)?,
            })
        },
    )
}

pub fn count_unused_recovery_codes(conn: &Connection, user: UserId) -> StoreResult<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL")
        .map_err(|e| map_err(&e))?
        .query_row([user.as_bytes()], |r| r.get(0))
        .map_err(|e| map_err(&e))?;
    u64::try_from(n).map_err(|_| corrupt("negative count"))
}

pub fn list_training(conn: &Connection, user: Option<UserId>) -> StoreResult<Vec<crate::TrainingRow>> {
    let map = |r: &Row<'_>| {
        Ok(crate::TrainingRow {
            id: uuid_at(r, 0)?,
            user_id: UserId::from_uuid(uuid_at(r, 1)?),
            course: get(r, 2)?,
            completed_on: get(r, 3)?,
            expires_on: get(r, 4)?,
            created_at: from_micros(get(r, 5)?)?,
        })
    };
    const COLS: &str = "id, user_id, course, completed_on, expires_on, created_at";
    match user {
        Some(u) => collect(
            conn,
            &format!("SELECT {COLS} FROM training_records WHERE user_id = ?1 ORDER BY id"),
            [u.as_bytes()],
            map,
        ),
        None => collect(
            conn,
            &format!("SELECT {COLS} FROM training_records ORDER BY id"),
            [],
            map,
        ),
    }
}

pub fn get_settings(conn: &Connection) -> StoreResult<Vec<(String, String)>> {
    collect(conn, "SELECT name, value FROM settings ORDER BY name", [], |r| {
        Ok((get(r, 0)?, get(r, 1)?))
    })
}

pub fn list_subject_keys(
    conn: &Connection,
    master_key_id: &str,
    after: Option<SubjectId>,
    limit: u32,
) -> StoreResult<Vec<(SubjectId, StoredKey)>> {
    collect(
        conn,
        "SELECT subject_id, master_key_id, key_version, wrapped FROM subject_keys \
         WHERE master_key_id = ?1 AND subject_id > ?2 ORDER BY subject_id LIMIT ?3",
        params![
            master_key_id,
            after_bytes(after.as_ref().map(SubjectId::as_bytes)),
            page(limit)
        ],
        |r| {
            Ok((
                SubjectId::from_uuid(uuid_at(r, 0)?),
                stored_key_at(r, 1)?.ok_or_else(|| corrupt("missing key"))?,
            ))
        },
    )
}

pub fn count_subject_keys_not_under(conn: &Connection, master_key_id: &str) -> StoreResult<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM subject_keys WHERE master_key_id <> ?1")
        .map_err(|e| map_err(&e))?
        .query_row([master_key_id], |r| r.get(0))
        .map_err(|e| map_err(&e))?;
    u64::try_from(n).map_err(|_| corrupt("negative count"))
}

pub fn get_instance_keys(conn: &Connection) -> StoreResult<Vec<(String, StoredKey)>> {
    collect(
        conn,
        "SELECT name, master_key_id, key_version, wrapped FROM instance_keys ORDER BY name",
        [],
        |r| Ok((get(r, 0)?, stored_key_at(r, 1)?.ok_or_else(|| corrupt("missing key"))?)),
    )
}

fn hash_at(row: &Row<'_>, i: usize) -> StoreResult<steward_audit::Hash> {
    let b: Vec<u8> = get(row, i)?;
    b.try_into().map_err(|_| corrupt("bad leaf hash"))
}

fn audit_entry(row: &Row<'_>) -> StoreResult<crate::StoredAuditEntry> {
    let idx: i64 = get(row, 0)?;
    Ok(crate::StoredAuditEntry {
        index: u64::try_from(idx).map_err(|_| corrupt("negative audit index"))?,
        bytes: get(row, 1)?,
        leaf_hash: hash_at(row, 2)?,
    })
}

fn idx(i: u64) -> i64 {
    i64::try_from(i).unwrap_or(i64::MAX)
}

pub fn audit_entries(conn: &Connection, from: u64, limit: u32) -> StoreResult<Vec<crate::StoredAuditEntry>> {
    collect(
        conn,
        "SELECT idx, entry, leaf_hash FROM audit_log WHERE idx >= ?1 ORDER BY idx LIMIT ?2",
        params![idx(from), i64::from(limit)],
        audit_entry,
    )
}

/// Entries scanned per statement by [`scan_audit`]'s caller.
pub const SCAN_PAGE: u64 = 50_000;

/// Visits the entries `from..to` in order with their bytes borrowed from
/// the row; `Ok(false)` when `visit` asked to stop. The connection's memory
/// map is widened for the pass (a long sequential read costs a system call
/// and a copy per page without one) and closed again after it.
pub fn scan_audit(conn: &Connection, from: u64, to: u64, visit: &mut AuditVisit<'_>) -> StoreResult<bool> {
    conn.pragma_update(None, "mmap_size", SCAN_MMAP)
        .map_err(|e| map_err(&e))?;
    let out = scan_rows(conn, from, to, visit);
    let unmapped = conn.pragma_update(None, "mmap_size", 0).map_err(|e| map_err(&e));
    let go = out?;
    unmapped?;
    Ok(go)
}

/// The memory map of a scanning connection (SQLite caps it at its
/// compile-time maximum, 2 GiB by default).
const SCAN_MMAP: i64 = 1 << 40;

fn blob<'r>(row: &'r Row<'_>, k: usize) -> StoreResult<Option<&'r [u8]>> {
    row.get_ref(k)
        .map_err(|e| map_err(&e))?
        .as_blob_or_null()
        .map_err(|_| StoreError::Corrupt("an audit entry is not a blob".into()))
}

fn scan_rows(conn: &Connection, from: u64, to: u64, visit: &mut AuditVisit<'_>) -> StoreResult<bool> {
    // The facts table (migration 18) in index order; an entry without
    // facts (appended before migration 15) shows as a gap in it and is
    // handed over from audit_log. Entries are never changed once written,
    // so the two statements agree without sharing a snapshot.
    let mut stmt = conn
        .prepare_cached("SELECT idx, facts FROM audit_facts WHERE idx >= ?1 AND idx < ?2 ORDER BY idx")
        .map_err(|e| map_err(&e))?;
    let mut rows = stmt.query(params![idx(from), idx(to)]).map_err(|e| map_err(&e))?;
    let mut next = from;
    while let Some(row) = rows.next().map_err(|e| map_err(&e))? {
        let i = u64::try_from(row.get::<_, i64>(0).map_err(|e| map_err(&e))?).unwrap_or(0);
        if i > next && !scan_entries(conn, next, i, visit)? {
            return Ok(false);
        }
        next = i + 1;
        if !visit(i, ScanRow::Facts(blob(row, 1)?.unwrap_or_default())) {
            return Ok(false);
        }
    }
    if next < to {
        return scan_entries(conn, next, to, visit);
    }
    Ok(true)
}

/// Hands over the entries `from..to` themselves (those without facts).
fn scan_entries(conn: &Connection, from: u64, to: u64, visit: &mut AuditVisit<'_>) -> StoreResult<bool> {
    let mut stmt = conn
        .prepare_cached("SELECT idx, entry FROM audit_log WHERE idx >= ?1 AND idx < ?2 ORDER BY idx")
        .map_err(|e| map_err(&e))?;
    let mut rows = stmt.query(params![idx(from), idx(to)]).map_err(|e| map_err(&e))?;
    while let Some(row) = rows.next().map_err(|e| map_err(&e))? {
        let i: i64 = row.get(0).map_err(|e| map_err(&e))?;
        if !visit(
            u64::try_from(i).unwrap_or(0),
            ScanRow::Entry(blob(row, 1)?.unwrap_or_default()),
        ) {
            return Ok(false);
        }
    }
    Ok(true)
}

pub fn audit_leaf_hashes(conn: &Connection, from: u64, to: u64) -> StoreResult<Vec<steward_audit::Hash>> {
    collect(
        conn,
        "SELECT leaf_hash FROM audit_log WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
        params![idx(from), idx(to)],
        |r| hash_at(r, 0),
    )
}

pub fn query_audit(conn: &Connection, f: &crate::AuditFilter) -> StoreResult<Vec<crate::StoredAuditEntry>> {
    // The access path: an index table when one fits (a subject's entries
    // are the fewer, as a rule), else audit_log itself, where SQLite picks
    // the `audit_actor_user` index for `user` or `actor` by itself.
    let indexed = if let Some(subject) = f.subject {
        Some((&SUBJECT_INDEX, subject.as_bytes().to_vec()))
    } else {
        f.token.map(|token| (&TOKEN_INDEX, token.as_bytes().to_vec()))
    };
    let Some((index, key)) = indexed else {
        let q = plain_audit_query(f);
        return collect(conn, &q.sql, rusqlite::params_from_iter(q.values), audit_entry);
    };
    // Entries below `indexed_upto` are found through the index table; the
    // tail above it (at most a few thousand entries) is scanned. Both in
    // one snapshot, so that a batch the writer indexes in between is
    // neither missed nor counted twice.
    let tx = conn.unchecked_transaction().map_err(|e| map_err(&e))?;
    let upto = super::ops::indexed_upto(&tx)?;
    let limit = i64::from(page(f.limit));
    let q = indexed_audit_query(f, index, &key, upto, limit);
    let mut out = collect(&tx, &q.sql, rusqlite::params_from_iter(q.values), audit_entry)?;
    let missing = limit - i64::try_from(out.len()).unwrap_or(limit);
    if missing > 0 {
        let q = tail_audit_query(f, index, &key, upto, missing);
        out.extend(collect(&tx, &q.sql, rusqlite::params_from_iter(q.values), audit_entry)?);
    }
    Ok(out)
}

/// A table that indexes one column of audit_log by `(key, idx)`, complete
/// below `audit_index_state.indexed_upto` (see `ops::merge_subject_index`).
struct AuditIndex {
    table: &'static str,
    key: &'static str,
    /// The audit_log column it copies.
    column: &'static str,
}

const SUBJECT_INDEX: AuditIndex = AuditIndex {
    table: "audit_subject_index",
    key: "subject_id",
    column: "subject_id",
};
const TOKEN_INDEX: AuditIndex = AuditIndex {
    table: "audit_token_index",
    key: "token_id",
    column: "actor_token",
};

/// One statement of an audit query and its parameters.
struct AuditQuery {
    sql: String,
    values: Vec<rusqlite::types::Value>,
}

/// The cursor as a lower bound (`idx > after`).
fn audit_after(f: &crate::AuditFilter) -> i64 {
    f.after.map_or(-1, idx)
}

/// `before` as an upper bound (`idx < before`).
fn audit_before(f: &crate::AuditFilter) -> i64 {
    f.before.map_or(i64::MAX, idx)
}

/// The whole query on audit_log, without an index table.
fn plain_audit_query(f: &crate::AuditFilter) -> AuditQuery {
    let mut values = vec![audit_after(f).into()];
    let mut sql = String::from("SELECT idx, entry, leaf_hash FROM audit_log WHERE idx > ?1");
    if f.before.is_some() {
        values.push(audit_before(f).into());
        sql.push_str(&format!(" AND idx < ?{}", values.len()));
    }
    sql.push_str(&audit_conditions(f, "", "", &mut values));
    values.push(i64::from(page(f.limit)).into());
    sql.push_str(&format!(" ORDER BY idx LIMIT ?{}", values.len()));
    AuditQuery { sql, values }
}

/// The part of the query below `upto`, through `index` for `key`.
fn indexed_audit_query(f: &crate::AuditFilter, index: &AuditIndex, key: &[u8], upto: i64, limit: i64) -> AuditQuery {
    let AuditIndex {
        table,
        key: key_col,
        column,
    } = index;
    let mut values: Vec<rusqlite::types::Value> = vec![
        key.to_vec().into(),
        audit_after(f).into(),
        audit_before(f).min(upto).into(),
    ];
    // CROSS JOIN: the index table first, whatever the planner would guess.
    let mut sql = format!(
        "SELECT a.idx, a.entry, a.leaf_hash FROM {table} s CROSS JOIN audit_log a ON a.idx = s.idx \
         WHERE s.{key_col} = ?1 AND s.idx > ?2 AND s.idx < ?3"
    );
    sql.push_str(&audit_conditions(f, "a.", column, &mut values));
    values.push(limit.into());
    sql.push_str(&format!(" ORDER BY s.idx LIMIT ?{}", values.len()));
    AuditQuery { sql, values }
}

/// The part of the query from `upto` on: a scan of the unindexed tail.
fn tail_audit_query(f: &crate::AuditFilter, index: &AuditIndex, key: &[u8], upto: i64, limit: i64) -> AuditQuery {
    let column = index.column;
    let mut values: Vec<rusqlite::types::Value> = vec![
        key.to_vec().into(),
        audit_after(f).max(upto - 1).into(),
        audit_before(f).into(),
    ];
    let mut sql = format!("SELECT idx, entry, leaf_hash FROM audit_log WHERE idx > ?2 AND idx < ?3 AND {column} = ?1");
    sql.push_str(&audit_conditions(f, "", column, &mut values));
    values.push(limit.into());
    sql.push_str(&format!(" ORDER BY idx LIMIT ?{}", values.len()));
    AuditQuery { sql, values }
}

/// The subject, actor and time conditions of `f` on the audit log (columns
/// prefixed with `table`) but the one on `skip` (the column the access path
/// already matches), their values appended to `values`.
fn audit_conditions(
    f: &crate::AuditFilter,
    table: &str,
    skip: &str,
    values: &mut Vec<rusqlite::types::Value>,
) -> String {
    let mut sql = String::new();
    let id = |u: &uuid::Uuid| rusqlite::types::Value::from(u.as_bytes().to_vec());
    if let Some(a) = f.actor {
        values.push(id(&a));
        let n = values.len();
        sql.push_str(&format!(" AND ({table}actor_user = ?{n} OR {table}actor_token = ?{n})"));
    }
    let conditions = [
        ("subject_id", "=", f.subject.map(|s| id(s.as_uuid()))),
        ("actor_user", "=", f.user.as_ref().map(id)),
        ("actor_token", "=", f.token.as_ref().map(id)),
        ("at", ">=", f.from.map(|t| crate::to_micros(t).into())),
        ("at", "<", f.to.map(|t| crate::to_micros(t).into())),
    ];
    for (column, op, value) in conditions {
        if let Some(value) = value.filter(|_| column != skip) {
            values.push(value);
            sql.push_str(&format!(" AND {table}{column} {op} ?{}", values.len()));
        }
    }
    sql
}

pub fn tree_heads(conn: &Connection) -> StoreResult<Vec<steward_audit::SignedTreeHead>> {
    collect(
        conn,
        "SELECT tree_size, timestamp_ms, root, signature, key_id FROM audit_tree_heads ORDER BY tree_size",
        [],
        |r| {
            let size: i64 = get(r, 0)?;
            Ok(steward_audit::SignedTreeHead {
                tree_size: u64::try_from(size).map_err(|_| corrupt("negative tree size"))?,
                timestamp_ms: get(r, 1)?,
                root: hash_at(r, 2)?,
                signature: get(r, 3)?,
                key_id: get(r, 4)?,
            })
        },
    )
}

pub fn list_notices(conn: &Connection) -> StoreResult<Vec<crate::NoticeRow>> {
    collect(
        conn,
        "SELECT id, version, language, text, text_hash, material, published_at FROM notices ORDER BY published_at, id",
        [],
        |r| {
            Ok(crate::NoticeRow {
                id: uuid_at(r, 0)?,
                version: get(r, 1)?,
                language: get(r, 2)?,
                text: get(r, 3)?,
                text_hash: get(r, 4)?,
                material: get(r, 5)?,
                published_at: from_micros(get(r, 6)?)?,
            })
        },
    )
}

const CONSENT_COLS: &str =
    "id, subject_id, purpose, status, recorded_at, source, notice_version, notice_hash, evidence, \
    recorded_by, expires_at, confirmation_hash, confirmation_expires_at, confirmed_at";

fn consent_at(r: &Row<'_>) -> StoreResult<crate::ConsentRow> {
    let t = |i: usize| -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        get::<Option<i64>>(r, i)?.map(from_micros).transpose()
    };
    Ok(crate::ConsentRow {
        id: uuid_at(r, 0)?,
        subject_id: SubjectId::from_uuid(uuid_at(r, 1)?),
        purpose: get(r, 2)?,
        status: get(r, 3)?,
        recorded_at: from_micros(get(r, 4)?)?,
        source: get(r, 5)?,
        notice_version: get(r, 6)?,
        notice_hash: get(r, 7)?,
        evidence: get(r, 8)?,
        recorded_by: opt_uuid_at(r, 9)?.map(UserId::from_uuid),
        expires_at: t(10)?,
        confirmation_hash: get(r, 11)?,
        confirmation_expires_at: t(12)?,
        confirmed_at: t(13)?,
    })
}

pub fn list_consents(conn: &Connection, subject: SubjectId) -> StoreResult<Vec<crate::ConsentRow>> {
    collect(
        conn,
        &format!("SELECT {CONSENT_COLS} FROM consents WHERE subject_id = ?1 ORDER BY id"),
        [subject.as_bytes()],
        consent_at,
    )
}

pub fn find_consent_by_confirmation(conn: &Connection, hash: &[u8]) -> StoreResult<Option<crate::ConsentRow>> {
    one(
        conn,
        &format!("SELECT {CONSENT_COLS} FROM consents WHERE confirmation_hash = ?1"),
        [hash],
        consent_at,
    )
}

pub fn consent_summaries(conn: &Connection) -> StoreResult<Vec<crate::ConsentSummary>> {
    collect(
        conn,
        "SELECT subject_id, purpose, status, notice_version, recorded_at FROM consents ORDER BY id",
        [],
        |r| {
            Ok(crate::ConsentSummary {
                subject_id: SubjectId::from_uuid(uuid_at(r, 0)?),
                purpose: get(r, 1)?,
                status: get(r, 2)?,
                notice_version: get(r, 3)?,
                recorded_at: from_micros(get(r, 4)?)?,
            })
        },
    )
}

const DSR_COLS: &str = "id, kind, regime, subject_id, identifier_hash, status, received_at, received_offset, due_at, extensions, \
    extension_reason, verified_at, verified_by, verification_method, completed_at, outcome, details, created_by, created_at, updated_at";

fn dsr_at(r: &Row<'_>) -> StoreResult<crate::DsrRow> {
    let t = |i: usize| -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
        get::<Option<i64>>(r, i)?.map(from_micros).transpose()
    };
    Ok(crate::DsrRow {
        id: uuid_at(r, 0)?,
        kind: get(r, 1)?,
        regime: get(r, 2)?,
        subject_id: opt_uuid_at(r, 3)?.map(SubjectId::from_uuid),
        identifier_hash: get(r, 4)?,
        status: get(r, 5)?,
        received_at: from_micros(get(r, 6)?)?,
        received_offset: get(r, 7)?,
        due_at: from_micros(get(r, 8)?)?,
        extensions: get(r, 9)?,
        extension_reason: get(r, 10)?,
        verified_at: t(11)?,
        verified_by: opt_uuid_at(r, 12)?.map(UserId::from_uuid),
        verification_method: get(r, 13)?,
        completed_at: t(14)?,
        outcome: get(r, 15)?,
        details: get(r, 16)?,
        created_by: opt_uuid_at(r, 17)?.map(UserId::from_uuid),
        created_at: from_micros(get(r, 18)?)?,
        updated_at: from_micros(get(r, 19)?)?,
    })
}

pub fn get_dsr(conn: &Connection, id: uuid::Uuid) -> StoreResult<Option<crate::DsrRow>> {
    one(
        conn,
        &format!("SELECT {DSR_COLS} FROM dsr WHERE id = ?1"),
        [id.as_bytes()],
        dsr_at,
    )
}

pub fn list_dsr(conn: &Connection, open_only: bool) -> StoreResult<Vec<crate::DsrRow>> {
    let filter = if open_only {
        "WHERE status NOT IN ('completed', 'refused', 'withdrawn')"
    } else {
        ""
    };
    collect(
        conn,
        &format!("SELECT {DSR_COLS} FROM dsr {filter} ORDER BY due_at, id"),
        [],
        dsr_at,
    )
}

pub fn legal_holds(conn: &Connection, subject: SubjectId) -> StoreResult<Vec<crate::LegalHoldRow>> {
    collect(
        conn,
        "SELECT id, subject_id, reason, created_by, created_at, released_at, released_by FROM legal_holds \
         WHERE subject_id = ?1 ORDER BY created_at, id",
        [subject.as_bytes()],
        |r| {
            Ok(crate::LegalHoldRow {
                id: uuid_at(r, 0)?,
                subject_id: SubjectId::from_uuid(uuid_at(r, 1)?),
                reason: get(r, 2)?,
                created_by: opt_uuid_at(r, 3)?.map(UserId::from_uuid),
                created_at: from_micros(get(r, 4)?)?,
                released_at: get::<Option<i64>>(r, 5)?.map(from_micros).transpose()?,
                released_by: opt_uuid_at(r, 6)?.map(UserId::from_uuid),
            })
        },
    )
}

pub fn get_export_bundle(conn: &Connection, id: uuid::Uuid) -> StoreResult<Option<crate::ExportBundleRow>> {
    one(
        conn,
        "SELECT dsr_id, subject_id, sealed, created_at, expires_at FROM export_bundles WHERE dsr_id = ?1",
        [id.as_bytes()],
        |r| {
            Ok(crate::ExportBundleRow {
                dsr_id: uuid_at(r, 0)?,
                subject_id: SubjectId::from_uuid(uuid_at(r, 1)?),
                sealed: get(r, 2)?,
                created_at: from_micros(get(r, 3)?)?,
                expires_at: from_micros(get(r, 4)?)?,
            })
        },
    )
}

pub fn list_outbox(conn: &Connection, unsent_only: bool) -> StoreResult<Vec<crate::OutboxRow>> {
    let filter = if unsent_only { "WHERE sent_at IS NULL" } else { "" };
    collect(
        conn,
        &format!("SELECT id, kind, message, created_at, sent_at FROM outbox {filter} ORDER BY created_at, id"),
        [],
        |r| {
            Ok(crate::OutboxRow {
                id: uuid_at(r, 0)?,
                kind: get(r, 1)?,
                message: get(r, 2)?,
                created_at: from_micros(get(r, 3)?)?,
                sent_at: get::<Option<i64>>(r, 4)?.map(from_micros).transpose()?,
            })
        },
    )
}

pub fn get_dsr_verification(conn: &Connection, hash: &[u8]) -> StoreResult<Option<crate::DsrVerificationRow>> {
    one(
        conn,
        "SELECT token_hash, dsr_id, expires_at, used_at FROM dsr_verifications WHERE token_hash = ?1",
        [hash],
        |r| {
            Ok(crate::DsrVerificationRow {
                token_hash: get(r, 0)?,
                dsr_id: uuid_at(r, 1)?,
                expires_at: from_micros(get(r, 2)?)?,
                used_at: get::<Option<i64>>(r, 3)?.map(from_micros).transpose()?,
            })
        },
    )
}

pub fn get_pending_consent(conn: &Connection, hash: &[u8]) -> StoreResult<Option<crate::PendingConsentRow>> {
    one(
        conn,
        "SELECT token_hash, id, sealed, created_at, expires_at, used_at FROM pending_consents WHERE token_hash = ?1",
        [hash],
        |r| {
            Ok(crate::PendingConsentRow {
                token_hash: get(r, 0)?,
                id: uuid_at(r, 1)?,
                sealed: get(r, 2)?,
                created_at: from_micros(get(r, 3)?)?,
                expires_at: from_micros(get(r, 4)?)?,
                used_at: get::<Option<i64>>(r, 5)?.map(from_micros).transpose()?,
            })
        },
    )
}

pub fn erasure_proof(
    conn: &Connection,
    hash: &[u8],
) -> StoreResult<Option<(uuid::Uuid, chrono::DateTime<chrono::Utc>)>> {
    one(
        conn,
        "SELECT request_id, erased_at FROM erasure_proofs WHERE identifier_hash = ?1",
        [hash],
        |r| Ok((uuid_at(r, 0)?, from_micros(get(r, 1)?)?)),
    )
}

const INCIDENT_COLS: &str = "id, status, aware_at, due_at, created_at, updated_at, sealed";

fn incident_at(r: &Row<'_>) -> StoreResult<crate::IncidentRow> {
    Ok(crate::IncidentRow {
        id: uuid_at(r, 0)?,
        status: get(r, 1)?,
        aware_at: from_micros(get(r, 2)?)?,
        due_at: get::<Option<i64>>(r, 3)?.map(from_micros).transpose()?,
        created_at: from_micros(get(r, 4)?)?,
        updated_at: from_micros(get(r, 5)?)?,
        sealed: get(r, 6)?,
    })
}

pub fn get_incident(conn: &Connection, id: uuid::Uuid) -> StoreResult<Option<crate::IncidentRow>> {
    one(
        conn,
        &format!("SELECT {INCIDENT_COLS} FROM incidents WHERE id = ?1"),
        [id.as_bytes()],
        incident_at,
    )
}

pub fn list_incidents(conn: &Connection) -> StoreResult<Vec<crate::IncidentRow>> {
    collect(
        conn,
        &format!("SELECT {INCIDENT_COLS} FROM incidents ORDER BY created_at DESC, id DESC"),
        [],
        incident_at,
    )
}

pub fn incident_entries(conn: &Connection, incident: uuid::Uuid) -> StoreResult<Vec<crate::IncidentEntryRow>> {
    collect(
        conn,
        "SELECT id, incident_id, kind, at, sealed FROM incident_entries WHERE incident_id = ?1 ORDER BY id",
        [incident.as_bytes()],
        |r| {
            Ok(crate::IncidentEntryRow {
                id: uuid_at(r, 0)?,
                incident_id: uuid_at(r, 1)?,
                kind: get(r, 2)?,
                at: from_micros(get(r, 3)?)?,
                sealed: get(r, 4)?,
            })
        },
    )
}

// ---- retention -------------------------------------------------------------

use crate::retention::{
    candidates_sql, split_purposes, AggregateRow, FactsPage, RetentionCandidate, RetentionFactsRow, RetentionLogRow,
    RetentionQuery,
};

fn subject_at(row: &Row<'_>, i: usize) -> StoreResult<SubjectId> {
    Ok(SubjectId::from_uuid(uuid_at(row, i)?))
}

pub fn retention_facts(conn: &Connection, after: Option<SubjectId>, limit: u32) -> StoreResult<Vec<RetentionFactsRow>> {
    let lo = after_bytes(after.as_ref().map(SubjectId::as_bytes));
    let rows = collect(
        conn,
        "SELECT c.subject_id, c.purposes, c.created_at, c.updated_at, \
         EXISTS (SELECT 1 FROM legal_holds h WHERE h.subject_id = c.subject_id AND h.released_at IS NULL) \
         FROM contacts c WHERE c.subject_id > ?1 ORDER BY c.subject_id LIMIT ?2",
        params![lo, page(limit)],
        |r| {
            Ok(RetentionFactsRow {
                subject_id: subject_at(r, 0)?,
                purposes: split_purposes(&get::<String>(r, 1)?),
                created_at: from_micros(get(r, 2)?)?,
                updated_at: from_micros(get(r, 3)?)?,
                last_interaction: None,
                open_deal: false,
                last_deal_closed: None,
                latest_consents: Vec::new(),
                held: get(r, 4)?,
            })
        },
    )?;
    let Some(hi) = rows.last().map(|r| *r.subject_id.as_bytes()) else {
        return Ok(rows);
    };
    let mut facts = FactsPage::new(rows);
    for (s, t) in collect(
        conn,
        "SELECT subject_id, max(max(occurred_at, created_at)) FROM interactions \
         WHERE subject_id > ?1 AND subject_id <= ?2 GROUP BY subject_id",
        params![lo, hi],
        |r| Ok((subject_at(r, 0)?, from_micros(get(r, 1)?)?)),
    )? {
        facts.interaction(s, t);
    }
    for (s, closed, t) in collect(
        conn,
        "SELECT subject_id, stage IN ('won', 'lost'), updated_at FROM deals WHERE subject_id > ?1 AND subject_id <= ?2",
        params![lo, hi],
        |r| Ok((subject_at(r, 0)?, get::<bool>(r, 1)?, from_micros(get(r, 2)?)?)),
    )? {
        facts.deal(s, closed, t);
    }
    for (s, p, st, t) in collect(
        conn,
        "SELECT subject_id, purpose, status, recorded_at FROM consents \
         WHERE subject_id > ?1 AND subject_id <= ?2 AND status IN ('granted', 'withdrawn') \
         ORDER BY subject_id, recorded_at, id",
        params![lo, hi],
        |r| Ok((subject_at(r, 0)?, get(r, 1)?, get(r, 2)?, from_micros(get(r, 3)?)?)),
    )? {
        facts.consent(s, p, st, t);
    }
    Ok(facts.finish())
}

pub fn retention_candidates(conn: &Connection, q: &RetentionQuery) -> StoreResult<Vec<RetentionCandidate>> {
    let Some(sql) = candidates_sql(q, |n| format!("?{n}"), |_| "NULL".into()) else {
        return Ok(Vec::new());
    };
    let map = |r: &Row<'_>| -> StoreResult<RetentionCandidate> {
        let attr: Option<String> = get(r, 3)?;
        let period: Option<i64> = get(r, 4)?;
        Ok(RetentionCandidate {
            id: uuid_at(r, 0)?,
            subject_id: opt_uuid_at(r, 1)?.map(SubjectId::from_uuid),
            from_at: from_micros(get(r, 2)?)?,
            attribute: match (attr, period) {
                (Some(a), Some(p)) => Some((a, from_micros(p)?)),
                _ => None,
            },
        })
    };
    let before = crate::to_micros(q.before);
    let after = after_bytes(q.after.as_ref().map(Uuid::as_bytes));
    match &q.purpose {
        Some(p) if q.kind == crate::retention::PurgeKind::ConsentRecord => {
            collect(conn, &sql, params![before, page(q.limit), after, p], map)
        }
        _ => collect(conn, &sql, params![before, page(q.limit), after], map),
    }
}

pub fn retention_log(conn: &Connection, since: chrono::DateTime<chrono::Utc>) -> StoreResult<Vec<RetentionLogRow>> {
    collect(
        conn,
        "SELECT run_id, rule, record, action, at, count FROM retention_log WHERE at >= ?1 ORDER BY at, run_id, rule, record, action",
        [crate::to_micros(since)],
        |r| {
            Ok(RetentionLogRow {
                run_id: uuid_at(r, 0)?,
                rule: get(r, 1)?,
                record: get(r, 2)?,
                action: get(r, 3)?,
                at: from_micros(get(r, 4)?)?,
                count: u64::try_from(get::<i64>(r, 5)?).map_err(|_| corrupt("bad count"))?,
            })
        },
    )
}

pub fn retention_aggregates(conn: &Connection) -> StoreResult<Vec<AggregateRow>> {
    collect(
        conn,
        "SELECT record, period, attribute, value, count FROM retention_aggregates ORDER BY record, period, attribute, value",
        [],
        |r| {
            Ok(AggregateRow {
                record: get(r, 0)?,
                period: get(r, 1)?,
                attribute: get(r, 2)?,
                value: get(r, 3)?,
                count: u64::try_from(get::<i64>(r, 4)?).map_err(|_| corrupt("bad count"))?,
            })
        },
    )
}

const DRP_AGENT_COLS: &str = "id, name, verify_key, token_hash, token_issued_at, created_by, created_at";

fn drp_agent(r: &Row<'_>) -> StoreResult<crate::DrpAgentRow> {
    Ok(crate::DrpAgentRow {
        id: get(r, 0)?,
        name: get(r, 1)?,
        verify_key: get(r, 2)?,
        token_hash: get(r, 3)?,
        token_issued_at: get::<Option<i64>>(r, 4)?.map(from_micros).transpose()?,
        created_by: opt_uuid_at(r, 5)?.map(UserId::from_uuid),
        created_at: from_micros(get(r, 6)?)?,
    })
}

pub fn get_drp_agent(conn: &Connection, id: &str) -> StoreResult<Option<crate::DrpAgentRow>> {
    one(
        conn,
        &format!("SELECT {DRP_AGENT_COLS} FROM drp_agents WHERE id = ?1"),
        [id],
        drp_agent,
    )
}

pub fn drp_agent_by_token(conn: &Connection, hash: &[u8]) -> StoreResult<Option<crate::DrpAgentRow>> {
    one(
        conn,
        &format!("SELECT {DRP_AGENT_COLS} FROM drp_agents WHERE token_hash = ?1"),
        [hash],
        drp_agent,
    )
}

pub fn list_drp_agents(conn: &Connection) -> StoreResult<Vec<crate::DrpAgentRow>> {
    collect(
        conn,
        &format!("SELECT {DRP_AGENT_COLS} FROM drp_agents ORDER BY id"),
        [],
        drp_agent,
    )
}

pub fn get_drp_request(conn: &Connection, id: Uuid) -> StoreResult<Option<crate::DrpRequestRow>> {
    one(
        conn,
        "SELECT dsr_id, agent_id, exercise, agent_request_id, attested, created_at FROM drp_requests WHERE dsr_id = ?1",
        [id.as_bytes()],
        |r| {
            Ok(crate::DrpRequestRow {
                dsr_id: uuid_at(r, 0)?,
                agent_id: get(r, 1)?,
                exercise: get(r, 2)?,
                agent_request_id: get(r, 3)?,
                attested: crate::split_list(&get::<String>(r, 4)?),
                created_at: from_micros(get(r, 5)?)?,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditFilter;

    fn migrated() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = Connection::open(dir.path().join("steward.db")).expect("open");
        super::super::migrations::run(&mut conn).expect("migrate");
        (dir, conn)
    }

    /// The plan's steps (`EXPLAIN QUERY PLAN`'s detail column).
    fn plan(conn: &Connection, q: &AuditQuery) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", q.sql)).expect("explain");
        let rows = stmt
            .query_map(rusqlite::params_from_iter(q.values.iter()), |r| r.get::<_, String>(3))
            .expect("plan");
        rows.map(|r| r.expect("step")).collect()
    }

    fn id() -> uuid::Uuid {
        uuid::Uuid::now_v7()
    }

    /// A query by token reads the token index below `indexed_upto` and the
    /// log by index range above it: never a scan of audit_log, nor a sort.
    #[test]
    fn token_queries_use_the_token_index_and_never_scan_the_log() {
        let (_dir, conn) = migrated();
        let token = id();
        let filters = [
            AuditFilter {
                token: Some(token),
                limit: 100,
                ..AuditFilter::default()
            },
            AuditFilter {
                token: Some(token),
                user: Some(id()),
                actor: Some(id()),
                from: Some(chrono::Utc::now()),
                to: Some(chrono::Utc::now()),
                after: Some(10),
                before: Some(5000),
                limit: 100,
                ..AuditFilter::default()
            },
        ];
        for f in &filters {
            let indexed = plan(
                &conn,
                &indexed_audit_query(f, &TOKEN_INDEX, token.as_bytes(), 4096, 100),
            );
            assert!(
                indexed
                    .iter()
                    .any(|s| s.contains("SEARCH s USING PRIMARY KEY (token_id=?")),
                "{indexed:?}"
            );
            assert!(
                indexed
                    .iter()
                    .any(|s| s.contains("SEARCH a USING INTEGER PRIMARY KEY (rowid=?)")),
                "{indexed:?}"
            );
            let tail = plan(&conn, &tail_audit_query(f, &TOKEN_INDEX, token.as_bytes(), 4096, 100));
            for steps in [&indexed, &tail] {
                assert!(steps.iter().all(|s| s.starts_with("SEARCH")), "{steps:?}");
                assert!(!steps.iter().any(|s| s.contains("TEMP B-TREE")), "{steps:?}");
            }
            assert!(
                tail.iter()
                    .any(|s| s.contains("rowid>? AND rowid<?") || s.contains("audit_actor_user")),
                "{tail:?}"
            );
        }
        // The same shape for a subject.
        let subject = steward_domain::SubjectId::new();
        let f = AuditFilter {
            subject: Some(subject),
            token: Some(token),
            limit: 100,
            ..AuditFilter::default()
        };
        let steps = plan(
            &conn,
            &indexed_audit_query(&f, &SUBJECT_INDEX, subject.as_bytes(), 4096, 100),
        );
        assert!(
            steps
                .iter()
                .any(|s| s.contains("SEARCH s USING PRIMARY KEY (subject_id=?")),
            "{steps:?}"
        );
        assert!(steps.iter().all(|s| s.starts_with("SEARCH")), "{steps:?}");
    }

    /// A query by user (and no subject or token) goes through
    /// `audit_actor_user`.
    #[test]
    fn user_queries_use_the_actor_user_index() {
        let (_dir, conn) = migrated();
        let filters = [
            AuditFilter {
                user: Some(id()),
                limit: 100,
                ..AuditFilter::default()
            },
            AuditFilter {
                user: Some(id()),
                from: Some(chrono::Utc::now()),
                to: Some(chrono::Utc::now()),
                after: Some(3),
                before: Some(900),
                limit: 100,
                ..AuditFilter::default()
            },
        ];
        for f in &filters {
            let steps = plan(&conn, &plain_audit_query(f));
            assert!(
                steps
                    .iter()
                    .any(|s| s.starts_with("SEARCH audit_log USING INDEX audit_actor_user (actor_user=?")),
                "{steps:?}"
            );
            assert!(!steps.iter().any(|s| s.contains("TEMP B-TREE")), "{steps:?}");
        }
    }

    /// The query takes the index that fits: subject, else token, else none.
    #[test]
    fn the_access_path_is_the_subject_then_the_token_index() {
        let token = id();
        let subject = steward_domain::SubjectId::new();
        let both = AuditFilter {
            subject: Some(subject),
            token: Some(token),
            limit: 10,
            ..AuditFilter::default()
        };
        let q = indexed_audit_query(&both, &SUBJECT_INDEX, subject.as_bytes(), 0, 10);
        assert!(q.sql.contains("FROM audit_subject_index s"), "{}", q.sql);
        assert!(
            q.sql.contains("a.actor_token = ?"),
            "the token still applies: {}",
            q.sql
        );
        let q = tail_audit_query(&both, &TOKEN_INDEX, token.as_bytes(), 0, 10);
        assert!(
            q.sql.contains("actor_token = ?1") && q.sql.contains("subject_id = ?4"),
            "{}",
            q.sql
        );
        assert_eq!(q.sql.matches("actor_token").count(), 1, "{}", q.sql);
        let q = plain_audit_query(&AuditFilter {
            actor: Some(token),
            before: Some(7),
            limit: 10,
            ..AuditFilter::default()
        });
        assert!(q.sql.contains("(actor_user = ?3 OR actor_token = ?3)"), "{}", q.sql);
        assert!(q.sql.contains("idx < ?2"), "{}", q.sql);
    }
}
