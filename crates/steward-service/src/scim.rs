//! SCIM 2.0 provisioning of staff accounts (RFC 7643/7644) by an identity
//! provider: its bearer tokens, and the use cases behind `/scim/v2`.
//!
//! - A provisioning client authenticates with a SCIM token (`steward scim
//!   token create`), stored as a keyed hash and owned by no staff user: it
//!   can do nothing but SCIM, and no staff token can do SCIM.
//! - Every Steward account is a SCIM `User`; every role is a `Group`. An
//!   account has one role, so joining a group moves the account there;
//!   leaving its group moves it to the token's default role.
//! - A SCIM-created account gets an unusable random password: it cannot
//!   sign in with a password until an administrator sets one (passwords are
//!   never provisioned over SCIM). Lockout, sessions and second factors then
//!   work as for every account.
//! - `active: false` disables the account and revokes its sessions and
//!   tokens. DELETE does the same and drops the SCIM profile; the account
//!   itself stays (it is evidence in the audit log) and SCIM answers 404
//!   for it from then on (RFC 7644 §3.6).
//! - Names, e-mail addresses and the `externalId` are sealed at rest; audit
//!   entries carry ids and attribute names, never values.

pub mod filter;
pub mod patch;
pub mod resource;

use std::collections::HashMap;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde_json::{json, Value};
use steward_audit::{Actor, ActorKind, AuditRecord, Outcome};
use steward_domain::UserId;
use steward_store::{ScimTokenRow, ScimUserRow, StoreError, UserRow, WriteOp};
use zeroize::Zeroizing;

use crate::auth::system_entry;
use crate::error::{ServiceError, ServiceResult};
use crate::Service;
use filter::EqFilter;
use resource::{Profile, ScimGroup, ScimUser, UserInput, GROUP_SCHEMA, USER_SCHEMA};

/// SCIM tokens start with this, so secret scanners recognise them (and
/// they still start with the prefix of every Steward token).
pub const SCIM_TOKEN_PREFIX: &str = "stw_scim_";
/// `last_used_at` is written at most this often per token.
const TOUCH_EVERY: Duration = Duration::seconds(60);
const PROFILE_FIELD: &str = "scim.profile";

/// A SCIM error (RFC 7644 §3.12): status, `scimType` where one is defined,
/// and one sentence without personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimError {
    pub status: u16,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl ScimError {
    /// A 400 with a `scimType`.
    pub fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status: 400,
            scim_type: Some(scim_type),
            detail: detail.into(),
        }
    }

    #[must_use]
    pub fn status(status: u16, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type: None,
            detail: detail.into(),
        }
    }

    #[must_use]
    pub fn not_found() -> Self {
        Self::status(404, "the resource does not exist")
    }

    #[must_use]
    pub fn unauthorized() -> Self {
        Self::status(401, "a valid SCIM bearer token is required")
    }

    fn uniqueness(detail: &str) -> Self {
        Self {
            status: 409,
            scim_type: Some("uniqueness"),
            detail: detail.into(),
        }
    }
}

impl From<ServiceError> for ScimError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Unauthenticated => Self::unauthorized(),
            ServiceError::Forbidden(m) => Self::status(403, m),
            ServiceError::NotFound(_) | ServiceError::Gone(_) => Self::not_found(),
            ServiceError::Conflict(m) => Self {
                status: 409,
                scim_type: Some("uniqueness"),
                detail: m,
            },
            ServiceError::Invalid(errors) => Self::bad(
                "invalidValue",
                errors
                    .iter()
                    .map(|e| format!("{} {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            ServiceError::BadRequest(m) => Self::bad("invalidValue", m),
            ServiceError::Locked(m) => Self::status(409, m),
            ServiceError::TooManyRequests(m) => Self::status(429, m),
            ServiceError::Internal(m) => {
                tracing::error!(error = %m, "SCIM request failed");
                Self::status(500, "an internal error occurred")
            }
        }
    }
}

impl From<StoreError> for ScimError {
    fn from(e: StoreError) -> Self {
        ServiceError::from(e).into()
    }
}

pub type ScimResult<T> = Result<T, ScimError>;

/// An authenticated provisioning client, and where its request came from.
#[derive(Debug, Clone)]
pub struct ScimClient {
    pub token_id: uuid::Uuid,
    pub name: String,
    pub default_role: String,
    pub request_id: Option<String>,
    pub client: Option<String>,
}

/// A SCIM token as the operator sees it (never the secret).
#[derive(Debug, Clone)]
pub struct ScimTokenView {
    pub id: uuid::Uuid,
    pub name: String,
    pub default_role: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<&ScimTokenRow> for ScimTokenView {
    fn from(t: &ScimTokenRow) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            default_role: t.default_role.clone(),
            created_at: t.created_at,
            revoked_at: t.revoked_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// Token names: 1–64 of lower-case letters, digits, `.`, `_`, `-` (they
/// appear in the audit log as the actor).
fn validate_token_name(name: &str) -> ServiceResult<()> {
    crate::auth::validate_username(name)
        .map_err(|_| ServiceError::invalid("name", "must be 1 to 64 lower-case letters, digits, '.', '_' or '-'"))
}

/// The attribute names whose values differ between two profiles.
fn changed_fields(old: &Profile, new: &Profile) -> Vec<String> {
    let mut out = Vec::new();
    if old.external_id != new.external_id {
        out.push("externalId".to_string());
    }
    if old.name != new.name {
        out.push("name".to_string());
    }
    if old.display_name != new.display_name {
        out.push("displayName".to_string());
    }
    if old.emails != new.emails {
        out.push("emails".to_string());
    }
    out
}

impl Service {
    fn scim_token_hash(&self, token: &str) -> Vec<u8> {
        self.crypto.labelled_hash("scim-token", token.as_bytes())
    }

    fn external_id_hash(&self, external_id: &str) -> Vec<u8> {
        self.crypto.labelled_hash("scim-external-id", external_id.as_bytes())
    }

    fn require_role(&self, role: &str, field: &str) -> ServiceResult<()> {
        if self.inventory.role(role).is_some() {
            return Ok(());
        }
        let roles: Vec<_> = self.inventory.roles.keys().map(String::as_str).collect();
        Err(ServiceError::invalid(
            field,
            format!("must be one of {}", roles.join(", ")),
        ))
    }

    /// Creates a SCIM token for a provisioning client (`steward scim token
    /// create`); returns the secret, shown once.
    pub async fn create_scim_token(
        &self,
        name: &str,
        default_role: &str,
    ) -> ServiceResult<(ScimTokenView, Zeroizing<String>)> {
        validate_token_name(name)?;
        self.require_role(default_role, "default_role")?;
        let mut secret = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(secret.as_mut());
        let token = Zeroizing::new(format!(
            "{SCIM_TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret.as_ref())
        ));
        let row = ScimTokenRow {
            id: uuid::Uuid::now_v7(),
            name: name.to_string(),
            default_role: default_role.to_string(),
            hash: self.scim_token_hash(&token),
            created_at: Utc::now(),
            revoked_at: None,
            last_used_at: None,
        };
        let view = ScimTokenView::from(&row);
        let audit = system_entry(
            "scim.token.create",
            &[row.id],
            Some(format!("default role {default_role}")),
        );
        self.store.write(vec![WriteOp::InsertScimToken(row), audit]).await?;
        tracing::info!(token_id = %view.id, "SCIM token created");
        Ok((view, token))
    }

    /// Every SCIM token, revoked ones included.
    pub async fn list_scim_tokens(&self) -> ServiceResult<Vec<ScimTokenView>> {
        Ok(self
            .store
            .list_scim_tokens()
            .await?
            .iter()
            .map(ScimTokenView::from)
            .collect())
    }

    /// Revokes a SCIM token; it stops working at once.
    pub async fn revoke_scim_token(&self, id: uuid::Uuid) -> ServiceResult<()> {
        let audit = system_entry("scim.token.revoke", &[id], None);
        match self
            .store
            .write(vec![WriteOp::RevokeScimToken { id, at: Utc::now() }, audit])
            .await
        {
            Err(StoreError::NotFound) => Err(ServiceError::NotFound("SCIM token")),
            other => other.map_err(ServiceError::from),
        }
    }

    /// Resolves a bearer token to its provisioning client. Checked against
    /// the database on every request (provisioning is rare), so a
    /// revocation applies at once in every process.
    pub async fn authenticate_scim(&self, token: &str) -> ScimResult<ScimClient> {
        if !token.starts_with(SCIM_TOKEN_PREFIX) || token.len() > 128 {
            return Err(ScimError::unauthorized());
        }
        let hash = self.scim_token_hash(token);
        let row = self
            .store
            .get_scim_token_by_hash(&hash)
            .await?
            .ok_or_else(ScimError::unauthorized)?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(row.hash.as_slice(), hash.as_slice())) || row.revoked_at.is_some()
        {
            return Err(ScimError::unauthorized());
        }
        let now = Utc::now();
        if row.last_used_at.is_none_or(|l| now - l >= TOUCH_EVERY) {
            if let Err(e) = self
                .store
                .write(vec![WriteOp::TouchScimToken { id: row.id, at: now }])
                .await
            {
                tracing::warn!(token_id = %row.id, error = %e, "could not record a SCIM token's use");
            }
        }
        Ok(ScimClient {
            token_id: row.id,
            name: row.name,
            default_role: row.default_role,
            request_id: None,
            client: None,
        })
    }

    /// An audit entry for an act of a provisioning client: ids and
    /// attribute names only.
    fn scim_entry(
        &self,
        c: &ScimClient,
        action: &str,
        records: &[uuid::Uuid],
        fields: Vec<String>,
        reason: Option<String>,
    ) -> WriteOp {
        let actor = Actor {
            kind: ActorKind::Token,
            user_id: None,
            token_id: Some(c.token_id),
            username: Some(format!("scim:{}", c.name)),
            role: None,
        };
        let mut r = AuditRecord::new(Utc::now(), actor, action, Outcome::Ok);
        r.record_ids = records.to_vec();
        r.fields = fields;
        r.reason = reason;
        r.request_id.clone_from(&c.request_id);
        r.client = self.audit_client(c.client.as_deref(), r.at);
        WriteOp::AppendAudit(Box::new(r))
    }

    fn seal_profile(&self, id: UserId, profile: &Profile) -> ScimResult<Vec<u8>> {
        let plain = Zeroizing::new(
            serde_json::to_vec(profile).map_err(|e| ServiceError::Internal(format!("profile encoding: {e}")))?,
        );
        Ok(self
            .crypto
            .seal_record(id.as_bytes(), PROFILE_FIELD, &plain)
            .map_err(|e| ServiceError::Internal(format!("sealing a SCIM profile: {e}")))?)
    }

    fn open_profile(&self, row: &ScimUserRow) -> ScimResult<Profile> {
        let plain = Zeroizing::new(
            self.crypto
                .open_record(row.user_id.as_bytes(), PROFILE_FIELD, &row.profile)
                .map_err(|e| ServiceError::Internal(format!("opening a SCIM profile: {e}")))?,
        );
        Ok(
            serde_json::from_slice(&plain)
                .map_err(|_| ServiceError::Internal("a SCIM profile is unreadable".into()))?,
        )
    }

    fn scim_view(&self, u: UserRow, s: Option<&ScimUserRow>) -> ScimResult<ScimUser> {
        let profile = s.map(|s| self.open_profile(s)).transpose()?.unwrap_or_default();
        Ok(ScimUser {
            id: u.id,
            user_name: u.username,
            active: !u.disabled,
            role: u.role,
            profile,
            created: u.created_at,
            last_modified: s.map_or(u.created_at, |s| s.updated_at),
        })
    }

    /// An account SCIM may see: it exists and SCIM has not deleted it.
    async fn scim_visible(&self, id: UserId) -> ScimResult<(UserRow, Option<ScimUserRow>)> {
        let user = self.store.get_user(id).await?.ok_or_else(ScimError::not_found)?;
        let s = self.store.get_scim_user(id).await?;
        if s.as_ref().is_some_and(|s| s.deleted_at.is_some()) {
            return Err(ScimError::not_found());
        }
        Ok((user, s))
    }

    /// One User.
    pub async fn scim_user(&self, _c: &ScimClient, id: UserId) -> ScimResult<ScimUser> {
        let (user, s) = self.scim_visible(id).await?;
        self.scim_view(user, s.as_ref())
    }

    /// Every User SCIM may see (by username), or those matching `filter`
    /// (`userName` or `externalId`).
    pub async fn scim_users(&self, _c: &ScimClient, filter: Option<&EqFilter>) -> ScimResult<Vec<ScimUser>> {
        match filter {
            Some(f) if f.attribute == "externalId" => {
                let Some(s) = self
                    .store
                    .find_scim_user_by_external_id(&self.external_id_hash(&f.value))
                    .await?
                else {
                    return Ok(Vec::new());
                };
                match self.scim_visible(s.user_id).await {
                    Ok((u, s)) => Ok(vec![self.scim_view(u, s.as_ref())?]),
                    Err(e) if e.status == 404 => Ok(Vec::new()),
                    Err(e) => Err(e),
                }
            }
            Some(f) => {
                let Some(u) = self.store.get_user_by_username(&f.value.to_lowercase()).await? else {
                    return Ok(Vec::new());
                };
                match self.scim_visible(u.id).await {
                    Ok((u, s)) => Ok(vec![self.scim_view(u, s.as_ref())?]),
                    Err(e) if e.status == 404 => Ok(Vec::new()),
                    Err(e) => Err(e),
                }
            }
            None => {
                let scim: HashMap<UserId, ScimUserRow> = self
                    .store
                    .list_scim_users()
                    .await?
                    .into_iter()
                    .map(|s| (s.user_id, s))
                    .collect();
                let mut out = Vec::new();
                for u in self.store.list_users().await? {
                    let s = scim.get(&u.id);
                    if s.is_some_and(|s| s.deleted_at.is_some()) {
                        continue;
                    }
                    out.push(self.scim_view(u, s)?);
                }
                Ok(out)
            }
        }
    }

    /// The role a `groups` value names, checked.
    fn group_role(&self, c: &ScimClient, group: Option<Option<String>>, current: &str) -> ScimResult<String> {
        match group {
            None => Ok(current.to_string()),
            Some(None) => Ok(c.default_role.clone()),
            Some(Some(g)) if self.inventory.role(&g).is_some() => Ok(g),
            Some(Some(_)) => Err(ScimError::bad(
                "invalidValue",
                "groups lists a group that does not exist",
            )),
        }
    }

    async fn external_id_free(&self, id: UserId, profile: &Profile) -> ScimResult<Option<Vec<u8>>> {
        let Some(x) = &profile.external_id else { return Ok(None) };
        let hash = self.external_id_hash(x);
        if let Some(other) = self.store.find_scim_user_by_external_id(&hash).await? {
            if other.user_id != id {
                return Err(ScimError::uniqueness("another account has this externalId"));
            }
        }
        Ok(Some(hash))
    }

    /// Creates a staff account from a SCIM User (POST /Users).
    pub async fn scim_create_user(&self, c: &ScimClient, body: &Value) -> ScimResult<ScimUser> {
        let input = resource::parse_user(body)?;
        let role = self.group_role(c, input.group.clone(), &c.default_role)?;
        self.require_role(&role, "default_role")?;
        if self.store.get_user_by_username(&input.user_name).await?.is_some() {
            return Err(ScimError::uniqueness("an account with this userName already exists"));
        }
        let id = UserId::new();
        let external_id_hash = self.external_id_free(id, &input.profile).await?;
        // An unusable password: the account signs in with a password only
        // once an administrator sets one.
        let mut secret = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(secret.as_mut());
        let unusable = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(secret.as_ref()));
        let password_hash = self.hash_password(unusable).await?;
        let now = Utc::now();
        let user = UserRow {
            id,
            username: input.user_name.clone(),
            role: role.clone(),
            password_hash,
            disabled: !input.active,
            created_at: now,
            failed_logins: 0,
            locked_until: None,
        };
        let scim = ScimUserRow {
            user_id: id,
            external_id_hash,
            profile: self.seal_profile(id, &input.profile)?,
            updated_at: now,
            deleted_at: None,
        };
        let mut fields = vec!["userName".to_string(), "active".to_string()];
        fields.extend(changed_fields(&Profile::default(), &input.profile));
        fields.push("groups".to_string());
        let audit = self.scim_entry(
            c,
            "scim.user.create",
            &[*id.as_uuid()],
            fields,
            Some(format!("role {role}{}", if input.active { "" } else { "; disabled" })),
        );
        match self
            .store
            .write(vec![
                WriteOp::InsertUser(user.clone()),
                WriteOp::PutScimUser(scim.clone()),
                audit,
            ])
            .await
        {
            Err(StoreError::Duplicate) => {
                return Err(ScimError::uniqueness(
                    "an account with this userName or externalId already exists",
                ))
            }
            other => other?,
        }
        self.auth.forget_tokens();
        tracing::info!(user_id = %id, token_id = %c.token_id, "SCIM created a user");
        self.scim_view(user, Some(&scim))
    }

    /// Applies a parsed User to an existing account (PUT, and PATCH after
    /// its operations): one batch, audited with the changed attributes.
    async fn scim_update(
        &self,
        c: &ScimClient,
        user: UserRow,
        s: Option<ScimUserRow>,
        input: UserInput,
        action: &str,
    ) -> ScimResult<ScimUser> {
        let current = self.scim_view(user.clone(), s.as_ref())?;
        if input.user_name != current.user_name {
            return Err(ScimError::bad("mutability", "userName cannot be changed in Steward"));
        }
        let role = self.group_role(c, input.group.clone(), &current.role)?;
        let mut fields = Vec::new();
        let mut reason = Vec::new();
        if input.active != current.active {
            fields.push("active".to_string());
            reason.push(if input.active { "enabled" } else { "disabled" }.to_string());
        }
        fields.extend(changed_fields(&current.profile, &input.profile));
        if role != current.role {
            fields.push("groups".to_string());
            reason.push(format!("role set to {role}"));
        }
        if fields.is_empty() {
            return Ok(current);
        }
        let id = user.id;
        let now = Utc::now();
        let mut ops = Vec::new();
        if role != current.role || input.active != current.active {
            ops.push(WriteOp::UpdateUser {
                id,
                role: (role != current.role).then(|| role.clone()),
                disabled: (input.active != current.active).then_some(!input.active),
                password_hash: None,
            });
        }
        if !input.active && current.active {
            ops.push(WriteOp::RevokeUserTokens { user_id: id, at: now });
        }
        let scim = ScimUserRow {
            user_id: id,
            external_id_hash: self.external_id_free(id, &input.profile).await?,
            profile: self.seal_profile(id, &input.profile)?,
            updated_at: now,
            deleted_at: None,
        };
        ops.push(WriteOp::PutScimUser(scim.clone()));
        ops.push(self.scim_entry(
            c,
            action,
            &[*id.as_uuid()],
            fields,
            (!reason.is_empty()).then(|| reason.join("; ")),
        ));
        match self.store.write(ops).await {
            Err(StoreError::Duplicate) => return Err(ScimError::uniqueness("another account has this externalId")),
            Err(StoreError::NotFound) => return Err(ScimError::not_found()),
            other => other?,
        }
        self.auth.forget_tokens();
        tracing::info!(user_id = %id, token_id = %c.token_id, action, "SCIM changed a user");
        let user = UserRow {
            role,
            disabled: !input.active,
            ..user
        };
        self.scim_view(user, Some(&scim))
    }

    /// Replaces a User (PUT /Users/{id}). `groups` left out keeps the role.
    pub async fn scim_replace_user(&self, c: &ScimClient, id: UserId, body: &Value) -> ScimResult<ScimUser> {
        let (user, s) = self.scim_visible(id).await?;
        let input = resource::parse_user(body)?;
        self.scim_update(c, user, s, input, "scim.user.replace").await
    }

    /// Patches a User (PATCH /Users/{id}, RFC 7644 §3.5.2).
    pub async fn scim_patch_user(&self, c: &ScimClient, id: UserId, body: &Value) -> ScimResult<ScimUser> {
        let ops = patch::parse_request(body, USER_SCHEMA)?;
        let (user, s) = self.scim_visible(id).await?;
        let current = self.scim_view(user.clone(), s.as_ref())?;
        let Value::Object(mut doc) = resource::user_json(&current, "") else {
            return Err(ScimError::status(500, "an internal error occurred"));
        };
        let shape = patch::Shape {
            attributes: resource::USER_ATTRIBUTES,
            multi_valued: resource::USER_MULTI_VALUED,
            read_only: resource::READ_ONLY,
            schema: USER_SCHEMA,
        };
        for op in &ops {
            patch::apply(&mut doc, op, &shape)?;
        }
        let input = resource::parse_user(&Value::Object(doc))?;
        self.scim_update(c, user, s, input, "scim.user.update").await
    }

    /// Deprovisions a User (DELETE /Users/{id}): the account is disabled,
    /// its sessions and tokens revoked and its SCIM profile dropped; it
    /// stays in Steward, and SCIM answers 404 for it from then on.
    pub async fn scim_delete_user(&self, c: &ScimClient, id: UserId) -> ScimResult<()> {
        let (user, _) = self.scim_visible(id).await?;
        let now = Utc::now();
        let ops = vec![
            WriteOp::UpdateUser {
                id,
                role: None,
                disabled: Some(true),
                password_hash: None,
            },
            WriteOp::RevokeUserTokens { user_id: id, at: now },
            WriteOp::PutScimUser(ScimUserRow {
                user_id: id,
                external_id_hash: None,
                profile: self.seal_profile(id, &Profile::default())?,
                updated_at: now,
                deleted_at: Some(now),
            }),
            self.scim_entry(
                c,
                "scim.user.delete",
                &[*id.as_uuid()],
                Vec::new(),
                Some(if user.disabled {
                    "deprovisioned".into()
                } else {
                    "deprovisioned; disabled".into()
                }),
            ),
        ];
        self.store.write(ops).await?;
        self.auth.forget_tokens();
        tracing::info!(user_id = %id, token_id = %c.token_id, "SCIM deprovisioned a user");
        Ok(())
    }

    /// Every role as a Group, with its members (accounts SCIM may see), or
    /// the one whose `displayName` matches `filter`.
    pub async fn scim_groups(&self, c: &ScimClient, filter: Option<&EqFilter>) -> ScimResult<Vec<ScimGroup>> {
        let users = self.scim_users(c, None).await?;
        let mut groups: Vec<ScimGroup> = self
            .inventory
            .roles
            .keys()
            .filter(|r| filter.is_none_or(|f| f.value.eq_ignore_ascii_case(r)))
            .map(|role| ScimGroup {
                role: role.clone(),
                members: users
                    .iter()
                    .filter(|u| &u.role == role)
                    .map(|u| (u.id, u.user_name.clone()))
                    .collect(),
            })
            .collect();
        groups.sort_by(|a, b| a.role.cmp(&b.role));
        Ok(groups)
    }

    /// One Group.
    pub async fn scim_group(&self, c: &ScimClient, role: &str) -> ScimResult<ScimGroup> {
        if self.inventory.role(role).is_none() {
            return Err(ScimError::not_found());
        }
        let users = self.scim_users(c, None).await?;
        Ok(ScimGroup {
            role: role.to_string(),
            members: users
                .iter()
                .filter(|u| u.role == role)
                .map(|u| (u.id, u.user_name.clone()))
                .collect(),
        })
    }

    /// Patches a Group's members (PATCH /Groups/{id}): a member added takes
    /// this role (leaving the group it was in: one role per account); a
    /// member removed takes the token's default role. Groups themselves
    /// (the roles) come from the data inventory and cannot be changed here.
    pub async fn scim_patch_group(&self, c: &ScimClient, role: &str, body: &Value) -> ScimResult<()> {
        let ops = patch::parse_request(body, GROUP_SCHEMA)?;
        let group = self.scim_group(c, role).await?;
        let before: Vec<UserId> = group.members.iter().map(|(id, _)| *id).collect();
        let Value::Object(mut doc) = json!({
            "displayName": role,
            "members": before.iter().map(|id| json!({"value": id.to_string()})).collect::<Vec<_>>(),
        }) else {
            return Err(ScimError::status(500, "an internal error occurred"));
        };
        let shape = patch::Shape {
            attributes: &["displayName", "members"],
            multi_valued: &["members"],
            read_only: &["id", "meta"],
            schema: GROUP_SCHEMA,
        };
        for op in &ops {
            patch::apply(&mut doc, op, &shape)?;
        }
        if patch::member(&doc, "displayName").and_then(Value::as_str) != Some(role) {
            return Err(ScimError::bad(
                "mutability",
                "a group is a Steward role; its name comes from the data inventory",
            ));
        }
        let mut after: Vec<UserId> = Vec::new();
        let members = match patch::member(&doc, "members") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err(ScimError::bad("invalidValue", "members must be an array")),
        };
        for m in &members {
            let id = m
                .as_object()
                .and_then(|m| patch::member(m, "value"))
                .and_then(Value::as_str)
                .and_then(|v| v.parse::<UserId>().ok())
                .ok_or_else(|| ScimError::bad("invalidValue", "each of members needs the value of a User id"))?;
            if !after.contains(&id) {
                after.push(id);
            }
        }
        let added: Vec<UserId> = after.iter().filter(|id| !before.contains(id)).copied().collect();
        let removed: Vec<UserId> = if c.default_role == role {
            Vec::new()
        } else {
            before.iter().filter(|id| !after.contains(id)).copied().collect()
        };
        if added.is_empty() && removed.is_empty() {
            return Ok(());
        }
        for id in &added {
            if let Err(e) = self.scim_visible(*id).await {
                return Err(if e.status == 404 {
                    ScimError::bad("invalidValue", "members lists a User that does not exist")
                } else {
                    e
                });
            }
        }
        self.require_role(&c.default_role, "default_role")?;
        let mut ops: Vec<WriteOp> = Vec::new();
        for (id, to) in added
            .iter()
            .map(|id| (id, role))
            .chain(removed.iter().map(|id| (id, c.default_role.as_str())))
        {
            ops.push(WriteOp::UpdateUser {
                id: *id,
                role: Some(to.to_string()),
                disabled: None,
                password_hash: None,
            });
        }
        let records: Vec<uuid::Uuid> = added.iter().chain(&removed).map(|id| *id.as_uuid()).collect();
        let mut reason = Vec::new();
        if !added.is_empty() {
            reason.push(format!("{} moved to role {role}", added.len()));
        }
        if !removed.is_empty() {
            reason.push(format!("{} moved to default role {}", removed.len(), c.default_role));
        }
        ops.push(self.scim_entry(
            c,
            "scim.group.update",
            &records,
            vec!["members".to_string()],
            Some(reason.join("; ")),
        ));
        match self.store.write(ops).await {
            Err(StoreError::NotFound) => {
                return Err(ScimError::bad(
                    "invalidValue",
                    "members lists a User that does not exist",
                ))
            }
            other => other?,
        }
        self.auth.forget_tokens();
        tracing::info!(group = role, token_id = %c.token_id, added = added.len(), removed = removed.len(), "SCIM changed a group");
        Ok(())
    }
}
