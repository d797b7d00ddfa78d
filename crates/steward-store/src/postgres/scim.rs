//! SCIM provisioning tables on PostgreSQL: the writers' statements and the
//! reads.

use steward_domain::UserId;
use tokio_postgres::Row;

use super::{col, opt_time, time, PgStore};
use crate::{ScimTokenRow, ScimUserRow, StoreResult};

pub(super) const INSERT_TOKEN: &str = "INSERT INTO scim_tokens \
     (id, name, default_role, hash, created_at, revoked_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub(super) const REVOKE_TOKEN: &str = "UPDATE scim_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1";
pub(super) const TOUCH_TOKEN: &str = "UPDATE scim_tokens SET last_used_at = $2 WHERE id = $1";
pub(super) const PUT_USER: &str = "INSERT INTO scim_users \
     (user_id, external_id_hash, profile, updated_at, deleted_at) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (user_id) DO UPDATE SET external_id_hash = EXCLUDED.external_id_hash, \
     profile = EXCLUDED.profile, updated_at = EXCLUDED.updated_at, deleted_at = EXCLUDED.deleted_at";

const TOKEN_COLS: &str = "id, name, default_role, hash, created_at, revoked_at, last_used_at";
const USER_COLS: &str = "user_id, external_id_hash, profile, updated_at, deleted_at";

fn token(row: &Row) -> StoreResult<ScimTokenRow> {
    Ok(ScimTokenRow {
        id: col(row, 0)?,
        name: col(row, 1)?,
        default_role: col(row, 2)?,
        hash: col(row, 3)?,
        created_at: time(row, 4)?,
        revoked_at: opt_time(row, 5)?,
        last_used_at: opt_time(row, 6)?,
    })
}

fn user(row: &Row) -> StoreResult<ScimUserRow> {
    Ok(ScimUserRow {
        user_id: UserId::from_uuid(col(row, 0)?),
        external_id_hash: col(row, 1)?,
        profile: col(row, 2)?,
        updated_at: time(row, 3)?,
        deleted_at: opt_time(row, 4)?,
    })
}

impl PgStore {
    pub(super) async fn scim_token_by_hash(&self, hash: &[u8]) -> StoreResult<Option<ScimTokenRow>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM scim_tokens WHERE hash = $1");
        self.query_opt(&sql, &[&hash]).await?.as_ref().map(token).transpose()
    }

    pub(super) async fn scim_tokens(&self) -> StoreResult<Vec<ScimTokenRow>> {
        let sql = format!("SELECT {TOKEN_COLS} FROM scim_tokens ORDER BY id");
        self.query(&sql, &[]).await?.iter().map(token).collect()
    }

    pub(super) async fn scim_user(&self, id: UserId) -> StoreResult<Option<ScimUserRow>> {
        let sql = format!("SELECT {USER_COLS} FROM scim_users WHERE user_id = $1");
        self.query_opt(&sql, &[id.as_uuid()])
            .await?
            .as_ref()
            .map(user)
            .transpose()
    }

    pub(super) async fn scim_user_by_external_id(&self, hash: &[u8]) -> StoreResult<Option<ScimUserRow>> {
        let sql = format!("SELECT {USER_COLS} FROM scim_users WHERE external_id_hash = $1");
        self.query_opt(&sql, &[&hash]).await?.as_ref().map(user).transpose()
    }

    pub(super) async fn scim_users(&self) -> StoreResult<Vec<ScimUserRow>> {
        let sql = format!("SELECT {USER_COLS} FROM scim_users ORDER BY user_id");
        self.query(&sql, &[]).await?.iter().map(user).collect()
    }
}
