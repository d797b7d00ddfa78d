//! Administration: user management (list, create, disable, change role,
//! reset password or second factor, revoke tokens), staff training
//! records, a user's own tokens and sessions, and settings. Administrative
//! acts need the role action `users.manage`; every change is audited.

use chrono::{DateTime, NaiveDate, Utc};
use steward_domain::{TokenId, UserId};
pub use steward_store::TrainingRow;
use steward_store::{StoreError, TokenKind, TokenRow, UserRow, WriteOp};
use zeroize::Zeroizing;

use crate::auth::{system_entry, Principal};
use crate::error::{ServiceError, ServiceResult};
use crate::Service;

/// The role action for managing users and settings (the `admin` role).
pub const USERS_MANAGE: &str = "users.manage";

#[derive(Debug, Clone)]
pub struct UserView {
    pub id: UserId,
    pub username: String,
    pub role: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub mfa_enabled: bool,
    pub locked_until: Option<DateTime<Utc>>,
    pub training_current: bool,
}

/// A token as its owner or an administrator sees it (never the secret).
#[derive(Debug, Clone)]
pub struct TokenView {
    pub id: TokenId,
    pub kind: &'static str,
    pub name: Option<String>,
    pub purpose: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub mfa: bool,
}

impl From<&TokenRow> for TokenView {
    fn from(t: &TokenRow) -> Self {
        Self {
            id: t.id,
            kind: t.kind.as_str(),
            name: t.name.clone(),
            purpose: t.purpose.clone(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
            mfa: t.mfa,
        }
    }
}

/// Changes an administrator may make to a user.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub role: Option<String>,
    pub disabled: Option<bool>,
}

/// Whether training records include one that is current on `today`.
pub fn training_current(records: &[TrainingRow], today: NaiveDate) -> bool {
    records.iter().any(|t| {
        let done = NaiveDate::parse_from_str(&t.completed_on, "%Y-%m-%d").is_ok_and(|d| d <= today);
        let valid = t
            .expires_on
            .as_deref()
            .is_none_or(|e| NaiveDate::parse_from_str(e, "%Y-%m-%d").is_ok_and(|d| d >= today));
        done && valid
    })
}

fn parse_day(field: &str, s: &str) -> ServiceResult<NaiveDate> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| ServiceError::invalid(field, "must be a date written YYYY-MM-DD"))
}

impl Service {
    pub(crate) fn require_admin(&self, p: &Principal) -> ServiceResult<()> {
        if p.mfa_pending {
            return Err(ServiceError::Forbidden(
                "a second factor is required first: POST /api/v1/auth/totp/enroll".into(),
            ));
        }
        let ok = self
            .inventory
            .role(&p.role)
            .is_some_and(|r| r.actions.iter().any(|a| a == USERS_MANAGE));
        if ok {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "role '{}' may not manage users or settings",
                p.role
            )))
        }
    }

    async fn denied_admin(&self, p: &Principal, action: &str, e: ServiceError) -> ServiceError {
        if let ServiceError::Forbidden(reason) = &e {
            let mut op = self.principal_entry(p, action, &[]);
            if let WriteOp::AppendAudit(r) = &mut op {
                r.outcome = steward_audit::Outcome::Denied;
                r.reason = Some(reason.clone());
            }
            if let Err(err) = self.store.write(vec![op]).await {
                tracing::error!(error = %err, "could not record a denial");
            }
        }
        e
    }

    async fn admin_gate(&self, p: &Principal, action: &str) -> ServiceResult<()> {
        match self.require_admin(p) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.denied_admin(p, action, e).await),
        }
    }

    async fn user_view(&self, u: UserRow) -> ServiceResult<UserView> {
        let (mfa_enabled, _) = self.mfa_status(u.id).await?;
        let training = self.store.list_training(Some(u.id)).await?;
        Ok(UserView {
            id: u.id,
            username: u.username,
            role: u.role,
            disabled: u.disabled,
            created_at: u.created_at,
            mfa_enabled,
            locked_until: u.locked_until.filter(|l| *l > Utc::now()),
            training_current: training_current(&training, Utc::now().date_naive()),
        })
    }

    async fn user_by_id(&self, id: UserId) -> ServiceResult<UserRow> {
        self.store.get_user(id).await?.ok_or(ServiceError::NotFound("user"))
    }

    /// The user named `username` (for the CLI).
    pub async fn user_by_name(&self, username: &str) -> ServiceResult<UserRow> {
        self.store
            .get_user_by_username(username)
            .await?
            .ok_or(ServiceError::NotFound("user"))
    }

    pub async fn list_users(&self, p: Option<&Principal>) -> ServiceResult<Vec<UserView>> {
        if let Some(p) = p {
            self.admin_gate(p, "user.list").await?;
        }
        let mut out = Vec::new();
        for u in self.store.list_users().await? {
            out.push(self.user_view(u).await?);
        }
        Ok(out)
    }

    pub async fn get_user_view(&self, p: &Principal, id: UserId) -> ServiceResult<UserView> {
        self.admin_gate(p, "user.read").await?;
        let u = self.user_by_id(id).await?;
        self.user_view(u).await
    }

    /// Creates a user through the API.
    pub async fn create_user_by(
        &self,
        p: &Principal,
        username: &str,
        role: &str,
        password: Zeroizing<String>,
    ) -> ServiceResult<UserView> {
        self.admin_gate(p, "user.create").await?;
        let id = self
            .insert_user(username, role, password, |id| {
                self.principal_entry(p, "user.create", &[*id.as_uuid()])
            })
            .await?;
        let u = self.user_by_id(id).await?;
        self.user_view(u).await
    }

    /// Changes role or enabled state. Disabling also revokes every token.
    pub async fn update_user(&self, p: Option<&Principal>, id: UserId, change: UserChange) -> ServiceResult<UserView> {
        if let Some(p) = p {
            self.admin_gate(p, "user.update").await?;
        }
        if let Some(role) = &change.role {
            if self.inventory.role(role).is_none() {
                let roles: Vec<_> = self.inventory.roles.keys().map(String::as_str).collect();
                return Err(ServiceError::invalid(
                    "role",
                    format!("must be one of {}", roles.join(", ")),
                ));
            }
        }
        let mut ops = vec![WriteOp::UpdateUser {
            id,
            role: change.role.clone(),
            disabled: change.disabled,
            password_hash: None,
        }];
        if change.disabled == Some(true) {
            ops.push(WriteOp::RevokeUserTokens {
                user_id: id,
                at: Utc::now(),
            });
        }
        let reason = format!(
            "{}{}",
            change
                .role
                .as_ref()
                .map(|r| format!("role set to {r}; "))
                .unwrap_or_default(),
            change
                .disabled
                .map(|d| if d { "disabled" } else { "enabled" })
                .unwrap_or_default()
        );
        ops.push(self.admin_entry(p, "user.update", &[*id.as_uuid()], Some(reason)));
        self.write_user_change(ops).await?;
        let u = self.user_by_id(id).await?;
        self.user_view(u).await
    }

    fn admin_entry(
        &self,
        p: Option<&Principal>,
        action: &str,
        records: &[uuid::Uuid],
        reason: Option<String>,
    ) -> WriteOp {
        match p {
            Some(p) => {
                let mut op = self.principal_entry(p, action, records);
                if let WriteOp::AppendAudit(r) = &mut op {
                    r.reason = reason;
                }
                op
            }
            None => system_entry(action, records, reason),
        }
    }

    async fn write_user_change(&self, ops: Vec<WriteOp>) -> ServiceResult<()> {
        match self.store.write(ops).await {
            Err(StoreError::NotFound) => Err(ServiceError::NotFound("user")),
            other => other.map_err(ServiceError::from),
        }?;
        self.auth.forget_tokens();
        Ok(())
    }

    /// Sets a new password; signs the user out everywhere and clears a lockout.
    pub async fn reset_password(
        &self,
        p: Option<&Principal>,
        id: UserId,
        password: Zeroizing<String>,
    ) -> ServiceResult<()> {
        if let Some(p) = p {
            self.admin_gate(p, "user.reset_password").await?;
        }
        let hash = self.hash_password(password).await?;
        let ops = vec![
            WriteOp::UpdateUser {
                id,
                role: None,
                disabled: None,
                password_hash: Some(hash),
            },
            WriteOp::SetLoginFailures {
                user_id: id,
                failed_logins: 0,
                locked_until: None,
            },
            WriteOp::RevokeUserTokens {
                user_id: id,
                at: Utc::now(),
            },
            self.admin_entry(p, "user.reset_password", &[*id.as_uuid()], None),
        ];
        self.write_user_change(ops).await
    }

    /// Removes the user's second factor and recovery codes and signs them out.
    pub async fn reset_mfa(&self, p: Option<&Principal>, id: UserId) -> ServiceResult<()> {
        if let Some(p) = p {
            self.admin_gate(p, "user.reset_mfa").await?;
        }
        self.user_by_id(id).await?;
        let ops = vec![
            WriteOp::DeleteCredentials { user_id: id },
            WriteOp::RevokeUserTokens {
                user_id: id,
                at: Utc::now(),
            },
            self.admin_entry(p, "user.reset_mfa", &[*id.as_uuid()], None),
        ];
        self.write_user_change(ops).await
    }

    /// Revokes every token and session of a user.
    pub async fn revoke_user_tokens(&self, p: Option<&Principal>, id: UserId) -> ServiceResult<()> {
        if let Some(p) = p {
            self.admin_gate(p, "user.revoke_tokens").await?;
        }
        self.user_by_id(id).await?;
        let ops = vec![
            WriteOp::RevokeUserTokens {
                user_id: id,
                at: Utc::now(),
            },
            self.admin_entry(p, "user.revoke_tokens", &[*id.as_uuid()], None),
        ];
        self.write_user_change(ops).await
    }

    /// Records a completed training.
    pub async fn add_training(
        &self,
        p: Option<&Principal>,
        user: UserId,
        course: &str,
        completed_on: &str,
        expires_on: Option<&str>,
    ) -> ServiceResult<TrainingRow> {
        if let Some(p) = p {
            self.admin_gate(p, "training.record").await?;
        }
        self.user_by_id(user).await?;
        let course = course.trim();
        if course.is_empty() || course.chars().count() > 200 || course.chars().any(char::is_control) {
            return Err(ServiceError::invalid("course", "must be 1 to 200 printable characters"));
        }
        let done = parse_day("completed_on", completed_on)?;
        if done > Utc::now().date_naive() {
            return Err(ServiceError::invalid("completed_on", "must not be in the future"));
        }
        let expires = expires_on.map(|e| parse_day("expires_on", e)).transpose()?;
        if expires.is_some_and(|e| e < done) {
            return Err(ServiceError::invalid("expires_on", "must not be before completed_on"));
        }
        let row = TrainingRow {
            id: uuid::Uuid::now_v7(),
            user_id: user,
            course: course.to_string(),
            completed_on: done.format("%Y-%m-%d").to_string(),
            expires_on: expires.map(|e| e.format("%Y-%m-%d").to_string()),
            created_at: Utc::now(),
        };
        let audit = self.admin_entry(p, "training.record", &[*user.as_uuid(), row.id], None);
        self.store
            .write(vec![WriteOp::InsertTraining(row.clone()), audit])
            .await?;
        self.auth.forget_tokens();
        Ok(row)
    }

    /// Training records of one user, or of everyone.
    pub async fn list_training(&self, p: Option<&Principal>, user: Option<UserId>) -> ServiceResult<Vec<TrainingRow>> {
        if let Some(p) = p {
            // Staff may read their own records.
            if user != Some(p.user_id) {
                self.admin_gate(p, "training.list").await?;
            }
        }
        Ok(self.store.list_training(user).await?)
    }

    /// The caller's own tokens and sessions.
    pub async fn own_tokens(&self, p: &Principal) -> ServiceResult<Vec<TokenView>> {
        Ok(self
            .store
            .list_tokens(p.user_id)
            .await?
            .iter()
            .map(TokenView::from)
            .collect())
    }

    /// Creates an API token for the caller (not from a session still waiting
    /// for its second factor).
    pub async fn create_own_token(
        &self,
        p: &Principal,
        name: Option<String>,
        expires_in_days: Option<u32>,
        purpose: Option<String>,
    ) -> ServiceResult<(TokenView, Zeroizing<String>)> {
        if p.mfa_pending {
            return Err(ServiceError::Forbidden(
                "a second factor is required first: POST /api/v1/auth/totp/enroll".into(),
            ));
        }
        if let Some(scope) = &p.scope {
            return Err(ServiceError::Forbidden(format!(
                "a token scoped to '{scope}' may not create tokens"
            )));
        }
        if let Some(purpose) = &purpose {
            if !self.inventory.role(&p.role).is_some_and(|r| r.allows_purpose(purpose)) {
                return Err(ServiceError::invalid(
                    "purpose",
                    format!("is not a purpose of role '{}'", p.role),
                ));
            }
        }
        let row = self.api_token_row(p.user_id, name, expires_in_days, purpose)?;
        let view = TokenView::from(&row);
        let (id, secret) = self
            .issue_token(row, |t| self.principal_entry(p, "token.create", &[*t.as_uuid()]))
            .await?;
        Ok((TokenView { id, ..view }, secret))
    }

    /// Revokes one of the caller's own tokens or sessions.
    pub async fn revoke_own_token(&self, p: &Principal, id: TokenId) -> ServiceResult<()> {
        let owned = self.store.list_tokens(p.user_id).await?.iter().any(|t| t.id == id);
        if !owned {
            return Err(ServiceError::NotFound("token"));
        }
        let audit = self.principal_entry(p, "token.revoke", &[*id.as_uuid()]);
        self.store
            .write(vec![WriteOp::RevokeToken { id, at: Utc::now() }, audit])
            .await?;
        self.auth.forget_tokens();
        Ok(())
    }

    /// Changes a setting through the API.
    pub async fn set_setting_by(&self, p: &Principal, name: &str, value: &str) -> ServiceResult<String> {
        self.admin_gate(p, "setting.change").await?;
        let mut audit = self.principal_entry(p, "setting.change", &[]);
        if let WriteOp::AppendAudit(r) = &mut audit {
            r.reason = Some(format!(
                "{} changed",
                name.chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            ));
        }
        self.set_setting(name, value, audit).await
    }

    pub async fn settings_for(&self, p: &Principal) -> ServiceResult<Vec<(&'static str, String, &'static str)>> {
        self.admin_gate(p, "setting.read").await?;
        self.settings_table().await
    }
}

/// Whether a token kind is a session.
#[must_use]
pub fn is_session(kind: &str) -> bool {
    kind == TokenKind::Session.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(done: &str, exp: Option<&str>) -> TrainingRow {
        TrainingRow {
            id: uuid::Uuid::nil(),
            user_id: UserId::new(),
            course: "GDPR".into(),
            completed_on: done.into(),
            expires_on: exp.map(Into::into),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn training_currency() {
        let today = NaiveDate::from_ymd_opt(2026, 6, 1).unwrap();
        assert!(!training_current(&[], today));
        assert!(training_current(&[t("2026-01-01", None)], today));
        assert!(
            training_current(&[t("2025-06-01", Some("2026-06-01"))], today),
            "valid through its expiry day"
        );
        assert!(!training_current(&[t("2025-01-01", Some("2026-05-31"))], today));
        assert!(!training_current(&[t("2026-07-01", None)], today), "not yet completed");
        assert!(training_current(
            &[t("2025-01-01", Some("2026-01-01")), t("2026-02-01", Some("2027-02-01"))],
            today
        ));
    }
}
