//! SCIM provisioning tables on SQLite: the writes (inside the writer's
//! transaction) and the reads (on a pooled read connection).

use rusqlite::{params, Connection, Row};
use steward_domain::UserId;

use super::ops::map_err;
use crate::{from_micros, to_micros, ScimTokenRow, ScimUserRow, StoreError, StoreResult, WriteOp};

const TOKEN_COLS: &str = "id, name, default_role, hash, created_at, revoked_at, last_used_at";
const USER_COLS: &str = "user_id, external_id_hash, profile, updated_at, deleted_at";

fn e(err: rusqlite::Error) -> StoreError {
    map_err(&err)
}

fn uuid(b: &[u8]) -> StoreResult<uuid::Uuid> {
    uuid::Uuid::from_slice(b).map_err(|_| StoreError::Corrupt("bad id".into()))
}

fn opt_time(v: Option<i64>) -> StoreResult<Option<chrono::DateTime<chrono::Utc>>> {
    v.map(from_micros).transpose()
}

/// Applies one SCIM write op; any other op is a programming error.
pub fn apply(conn: &Connection, op: &WriteOp) -> StoreResult<()> {
    match op {
        WriteOp::InsertScimToken(t) => {
            conn.prepare_cached(&format!(
                "INSERT INTO scim_tokens ({TOKEN_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ))
            .map_err(e)?
            .execute(params![
                t.id.as_bytes(),
                t.name,
                t.default_role,
                t.hash,
                to_micros(t.created_at),
                t.revoked_at.map(to_micros),
                t.last_used_at.map(to_micros)
            ])
            .map_err(e)?;
            Ok(())
        }
        WriteOp::RevokeScimToken { id, at } => {
            let n = conn
                .prepare_cached("UPDATE scim_tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1")
                .map_err(e)?
                .execute(params![id.as_bytes(), to_micros(*at)])
                .map_err(e)?;
            if n == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        }
        WriteOp::TouchScimToken { id, at } => {
            conn.prepare_cached("UPDATE scim_tokens SET last_used_at = ?2 WHERE id = ?1")
                .map_err(e)?
                .execute(params![id.as_bytes(), to_micros(*at)])
                .map_err(e)?;
            Ok(())
        }
        WriteOp::PutScimUser(u) => {
            conn.prepare_cached(&format!(
                "INSERT INTO scim_users ({USER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (user_id) DO UPDATE SET external_id_hash = excluded.external_id_hash, \
                 profile = excluded.profile, updated_at = excluded.updated_at, deleted_at = excluded.deleted_at"
            ))
            .map_err(e)?
            .execute(params![
                u.user_id.as_bytes(),
                u.external_id_hash,
                u.profile,
                to_micros(u.updated_at),
                u.deleted_at.map(to_micros)
            ])
            .map_err(e)?;
            Ok(())
        }
        _ => Err(StoreError::Backend("not a SCIM operation".into())),
    }
}

fn get<T: rusqlite::types::FromSql>(r: &Row<'_>, i: usize) -> StoreResult<T> {
    r.get(i).map_err(e)
}

fn token(r: &Row<'_>) -> StoreResult<ScimTokenRow> {
    Ok(ScimTokenRow {
        id: uuid(&get::<Vec<u8>>(r, 0)?)?,
        name: get(r, 1)?,
        default_role: get(r, 2)?,
        hash: get(r, 3)?,
        created_at: from_micros(get(r, 4)?)?,
        revoked_at: opt_time(get(r, 5)?)?,
        last_used_at: opt_time(get(r, 6)?)?,
    })
}

fn scim_user(r: &Row<'_>) -> StoreResult<ScimUserRow> {
    Ok(ScimUserRow {
        user_id: UserId::from_uuid(uuid(&get::<Vec<u8>>(r, 0)?)?),
        external_id_hash: get(r, 1)?,
        profile: get(r, 2)?,
        updated_at: from_micros(get(r, 3)?)?,
        deleted_at: opt_time(get(r, 4)?)?,
    })
}

fn collect<T>(
    conn: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
    f: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(e)?;
    let mut rows = stmt.query(p).map_err(e)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(e)? {
        out.push(f(row)?);
    }
    Ok(out)
}

fn tokens(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> StoreResult<Vec<ScimTokenRow>> {
    collect(conn, sql, p, token)
}

fn users(conn: &Connection, sql: &str, p: impl rusqlite::Params) -> StoreResult<Vec<ScimUserRow>> {
    collect(conn, sql, p, scim_user)
}

pub fn get_token_by_hash(conn: &Connection, hash: &[u8]) -> StoreResult<Option<ScimTokenRow>> {
    Ok(tokens(
        conn,
        &format!("SELECT {TOKEN_COLS} FROM scim_tokens WHERE hash = ?1"),
        [hash],
    )?
    .into_iter()
    .next())
}

pub fn list_tokens(conn: &Connection) -> StoreResult<Vec<ScimTokenRow>> {
    tokens(conn, &format!("SELECT {TOKEN_COLS} FROM scim_tokens ORDER BY id"), [])
}

pub fn get_user(conn: &Connection, user: UserId) -> StoreResult<Option<ScimUserRow>> {
    Ok(users(
        conn,
        &format!("SELECT {USER_COLS} FROM scim_users WHERE user_id = ?1"),
        [user.as_bytes()],
    )?
    .into_iter()
    .next())
}

pub fn find_user_by_external_id(conn: &Connection, hash: &[u8]) -> StoreResult<Option<ScimUserRow>> {
    Ok(users(
        conn,
        &format!("SELECT {USER_COLS} FROM scim_users WHERE external_id_hash = ?1"),
        [hash],
    )?
    .into_iter()
    .next())
}

pub fn list_users(conn: &Connection) -> StoreResult<Vec<ScimUserRow>> {
    users(
        conn,
        &format!("SELECT {USER_COLS} FROM scim_users ORDER BY user_id"),
        [],
    )
}
