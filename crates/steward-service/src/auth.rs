//! Authentication: staff users with Argon2id password hashes; sessions and
//! API tokens stored as keyed hashes, with expiry (absolute and, for
//! sessions, idle), revocation, last use and an optional purpose scope; the
//! sign-in flow with a second factor, per-account lockout and per-address
//! throttling; and the resolution of a bearer token to a [`Principal`].
//!
//! Password hashing is slow on purpose; it runs on blocking threads with
//! bounded concurrency so it never stalls the async runtime. Tokens are
//! random 256-bit secrets checked by one HMAC, never by Argon2, and resolved
//! through a short-lived cache so authentication costs little per request.
//! Unknown usernames go through the same work (a dummy Argon2 verification,
//! the same lockout counting) and get the same answers as known ones.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration as StdDuration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use steward_audit::{Actor, ActorKind, AuditRecord, Outcome};
use steward_domain::{TokenId, UserId};
use steward_store::{StoreError, TokenKind, TokenRow, UserRow, WriteOp};
use zeroize::Zeroizing;

use crate::error::{ServiceError, ServiceResult};
use crate::Service;

/// Prefix that makes Steward tokens recognisable to secret scanners.
pub const TOKEN_PREFIX: &str = "stw_";
pub const MIN_PASSWORD_LEN: usize = 8;
/// How long a resolved token is trusted without looking at the database.
/// Revocations in this process clear the cache at once.
const TOKEN_CACHE_TTL: StdDuration = StdDuration::from_secs(2);
/// `last_used_at` is written at most this often per token.
const TOUCH_EVERY: Duration = Duration::seconds(60);
/// Failed sign-ins from one address within [`ADDRESS_WINDOW`] before it is throttled.
const ADDRESS_LIMIT: usize = 20;
const ADDRESS_WINDOW: StdDuration = StdDuration::from_secs(15 * 60);

/// Who is making a request, once their token has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub username: String,
    pub role: String,
    /// The token the request came with; `None` for local CLI operations,
    /// which are trusted through access to the data dir.
    pub token_id: Option<TokenId>,
    pub token_kind: Option<TokenKind>,
    /// The only purpose this token may be used for, if scoped.
    pub scope: Option<String>,
    /// An interactive session that still needs a second factor: it may
    /// enrol one and nothing that touches personal data.
    pub mfa_pending: bool,
}

/// The result of a successful sign-in.
pub struct LoginOutcome {
    pub token: Zeroizing<String>,
    pub token_id: TokenId,
    pub expires_in_seconds: i64,
    /// The session was established with a second factor.
    pub mfa: bool,
    /// The role needs a second factor and the user has none yet: the session
    /// can only enrol one (`POST /api/v1/auth/totp/enroll`).
    pub mfa_enrollment_required: bool,
}

/// Failed sign-ins counted and the lock they caused, if any.
type Failures = (u32, Option<DateTime<Utc>>);

/// In-memory state of authentication: the token cache and sign-in throttles.
#[derive(Default)]
pub(crate) struct AuthState {
    cache: Mutex<HashMap<Vec<u8>, (Instant, Principal)>>,
    touched: Mutex<HashMap<TokenId, DateTime<Utc>>>,
    by_address: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Failures for usernames that do not exist, so they lock like real ones.
    phantom: Mutex<HashMap<String, Failures>>,
    settings: Mutex<Option<(Instant, crate::settings::Settings)>>,
    training: Mutex<HashMap<UserId, (Instant, bool)>>,
    /// The store's access epoch when the caches were last known valid.
    epoch: std::sync::atomic::AtomicU64,
}

impl AuthState {
    /// Forgets every cached token, setting and training state (after any
    /// change to users, tokens, settings or training).
    pub(crate) fn forget_tokens(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
        if let Ok(mut s) = self.settings.lock() {
            *s = None;
        }
        if let Ok(mut t) = self.training.lock() {
            t.clear();
        }
    }

    /// Drops every cache if the store's access epoch moved: another process
    /// (e.g. `steward settings set`, `steward user disable`) changed
    /// settings, users, tokens or training.
    pub(crate) fn sync_epoch(&self, current: u64) {
        if self.epoch.swap(current, std::sync::atomic::Ordering::AcqRel) != current {
            self.forget_tokens();
        }
    }

    pub(crate) fn cached_settings(&self) -> Option<crate::settings::Settings> {
        let s = self.settings.lock().ok()?;
        s.as_ref()
            .filter(|(at, _)| at.elapsed() < TOKEN_CACHE_TTL)
            .map(|(_, s)| s.clone())
    }

    pub(crate) fn cache_settings(&self, settings: &crate::settings::Settings) {
        if let Ok(mut s) = self.settings.lock() {
            *s = Some((Instant::now(), settings.clone()));
        }
    }

    pub(crate) fn cached_training(&self, user: UserId) -> Option<bool> {
        let t = self.training.lock().ok()?;
        t.get(&user)
            .filter(|(at, _)| at.elapsed() < TOKEN_CACHE_TTL)
            .map(|(_, v)| *v)
    }

    pub(crate) fn cache_training(&self, user: UserId, current: bool) {
        if let Ok(mut t) = self.training.lock() {
            if t.len() > 10_000 {
                t.clear();
            }
            t.insert(user, (Instant::now(), current));
        }
    }
}

fn argon2() -> Argon2<'static> {
    // OWASP's recommended Argon2id parameters: m=19 MiB, t=2, p=1.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_password_blocking(password: &str) -> ServiceResult<String> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| ServiceError::Internal(e.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ServiceError::Internal(e.to_string()))
}

fn verify_password_blocking(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
}

/// A fixed hash verified when the username is unknown, so that a failed
/// sign-in takes the same time whether or not the user exists.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c3Rld2FyZC1kdW1teQ$0dIWdVWOA5Jgu2Y7YrQmHx7kybNxkCmGbqd1UCwmmvE";

/// Usernames: 1–64 of lower-case letters, digits, `.`, `_`, `-`.
pub fn validate_username(username: &str) -> ServiceResult<()> {
    let ok = (1..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "username",
            "must be 1 to 64 lower-case letters, digits, '.', '_' or '-'",
        ))
    }
}

pub(crate) fn validate_password(password: &str) -> ServiceResult<()> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(ServiceError::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    Ok(())
}

/// An entry for an administrative act by Steward's operator (the CLI).
pub(crate) fn system_entry(action: &str, records: &[uuid::Uuid], reason: Option<String>) -> WriteOp {
    let mut r = AuditRecord::new(Utc::now(), Actor::system(), action, Outcome::Ok);
    r.record_ids = records.to_vec();
    r.reason = reason;
    WriteOp::AppendAudit(Box::new(r))
}

/// The same answer for a locked account whether or not it exists.
fn locked_error(until: DateTime<Utc>) -> ServiceError {
    let minutes = (until - Utc::now()).num_minutes().max(1);
    ServiceError::Locked(format!(
        "too many failed sign-ins; this account is locked for about {minutes} more minutes"
    ))
}

impl Service {
    pub(crate) async fn blocking_hash<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> ServiceResult<T> {
        let _permit = self
            .hash_permits
            .acquire()
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    pub(crate) async fn hash_password(&self, password: Zeroizing<String>) -> ServiceResult<String> {
        validate_password(&password)?;
        self.blocking_hash(move || hash_password_blocking(&password)).await?
    }

    /// Creates a staff user; `audit` records who did it.
    pub(crate) async fn insert_user(
        &self,
        username: &str,
        role: &str,
        password: Zeroizing<String>,
        audit: impl FnOnce(UserId) -> WriteOp,
    ) -> ServiceResult<UserId> {
        validate_username(username)?;
        if self.inventory.role(role).is_none() {
            let roles: Vec<_> = self.inventory.roles.keys().map(String::as_str).collect();
            return Err(ServiceError::invalid(
                "role",
                format!("must be one of {}", roles.join(", ")),
            ));
        }
        let hash = self.hash_password(password).await?;
        let user = UserRow {
            id: UserId::new(),
            username: username.to_string(),
            role: role.to_string(),
            password_hash: hash,
            disabled: false,
            created_at: Utc::now(),
            failed_logins: 0,
            locked_until: None,
        };
        let id = user.id;
        match self.store.write(vec![WriteOp::InsertUser(user), audit(id)]).await {
            Err(StoreError::Duplicate) => Err(ServiceError::Conflict(
                "a user with this username already exists".into(),
            )),
            other => other.map_err(ServiceError::from),
        }?;
        tracing::info!(user_id = %id, role, "user created");
        Ok(id)
    }

    /// Creates a staff user. Used by `steward user create`.
    pub async fn create_user(&self, username: &str, role: &str, password: Zeroizing<String>) -> ServiceResult<UserId> {
        self.insert_user(username, role, password, |id| {
            system_entry("user.create", &[*id.as_uuid()], None)
        })
        .await
    }

    fn token_hash(&self, token: &str) -> Vec<u8> {
        self.crypto.token_hash(token)
    }

    /// Issues a token and stores its hash together with `audit` (built from
    /// the new token's id), so the token exists only if its issue is recorded.
    pub(crate) async fn issue_token(
        &self,
        template: TokenRow,
        audit: impl FnOnce(TokenId) -> WriteOp,
    ) -> ServiceResult<(TokenId, Zeroizing<String>)> {
        let mut secret = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(secret.as_mut());
        let token = Zeroizing::new(format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret.as_ref())
        ));
        let row = TokenRow {
            hash: self.token_hash(&token),
            ..template
        };
        let id = row.id;
        self.store.write(vec![WriteOp::InsertToken(row), audit(id)]).await?;
        Ok((id, token))
    }

    /// A new API token row for `user` (the secret is added by `issue_token`).
    pub(crate) fn api_token_row(
        &self,
        user: UserId,
        name: Option<String>,
        expires_in_days: Option<u32>,
        purpose: Option<String>,
    ) -> ServiceResult<TokenRow> {
        let expires_at = match expires_in_days {
            Some(0) => return Err(ServiceError::invalid("expires_in_days", "must be at least 1")),
            Some(d) => Some(Utc::now() + Duration::days(i64::from(d))),
            None => None,
        };
        if let Some(p) = &purpose {
            if self.inventory.purpose(p).is_none() {
                return Err(ServiceError::invalid(
                    "purpose",
                    "is not a purpose in the data inventory",
                ));
            }
        }
        if name
            .as_ref()
            .is_some_and(|n| n.chars().count() > 100 || n.chars().any(char::is_control))
        {
            return Err(ServiceError::invalid(
                "name",
                "must be at most 100 printable characters",
            ));
        }
        Ok(TokenRow {
            id: TokenId::new(),
            user_id: user,
            kind: TokenKind::Api,
            name,
            hash: Vec::new(),
            created_at: Utc::now(),
            expires_at,
            revoked_at: None,
            last_used_at: None,
            purpose,
            mfa: false,
        })
    }

    /// Creates an API token for `username`; returns the secret, shown once.
    pub async fn create_api_token(
        &self,
        username: &str,
        name: Option<String>,
        expires_in_days: Option<u32>,
    ) -> ServiceResult<Zeroizing<String>> {
        self.create_scoped_api_token(username, name, expires_in_days, None)
            .await
    }

    /// [`Service::create_api_token`] limited to one purpose.
    pub async fn create_scoped_api_token(
        &self,
        username: &str,
        name: Option<String>,
        expires_in_days: Option<u32>,
        purpose: Option<String>,
    ) -> ServiceResult<Zeroizing<String>> {
        let user = self.active_user(username).await?;
        if let Some(p) = &purpose {
            if !self.inventory.role(&user.role).is_some_and(|r| r.allows_purpose(p)) {
                return Err(ServiceError::invalid(
                    "purpose",
                    format!("is not a purpose of role '{}'", user.role),
                ));
            }
        }
        let row = self.api_token_row(user.id, name, expires_in_days, purpose)?;
        let user_uuid = *user.id.as_uuid();
        let (id, token) = self
            .issue_token(row, |t| system_entry("token.create", &[user_uuid, *t.as_uuid()], None))
            .await?;
        tracing::info!(user_id = %user.id, token_id = %id, "API token created");
        Ok(token)
    }

    /// Whether the per-address throttle refuses `client` now.
    fn address_throttled(&self, client: Option<&str>) -> bool {
        let (Some(client), Ok(mut map)) = (client, self.auth.by_address.lock()) else {
            return false;
        };
        let now = Instant::now();
        let q = map.entry(client.to_string()).or_default();
        while q.front().is_some_and(|t| now.duration_since(*t) > ADDRESS_WINDOW) {
            q.pop_front();
        }
        q.len() >= ADDRESS_LIMIT
    }

    fn note_address_failure(&self, client: Option<&str>) {
        if let (Some(client), Ok(mut map)) = (client, self.auth.by_address.lock()) {
            map.entry(client.to_string()).or_default().push_back(Instant::now());
            if map.len() > 100_000 {
                map.clear();
            }
        }
    }

    /// Password sign-in (plus a TOTP or recovery code once the user has a
    /// second factor); returns a session. Unknown users and wrong passwords
    /// fail alike, in the same time, and lock alike.
    pub async fn login(
        &self,
        username: &str,
        password: Zeroizing<String>,
        code: Option<&str>,
        client: Option<String>,
    ) -> ServiceResult<LoginOutcome> {
        if self.address_throttled(client.as_deref()) {
            return Err(ServiceError::TooManyRequests(
                "too many failed sign-ins from this address; try again later".into(),
            ));
        }
        let settings = self.settings().await?;
        let now = Utc::now();
        let user = self.store.get_user_by_username(username).await?;
        // Lockout, answered the same way for unknown usernames.
        let locked_until = match &user {
            Some(u) => u.locked_until,
            None => self
                .auth
                .phantom
                .lock()
                .ok()
                .and_then(|m| m.get(username).and_then(|(_, l)| *l)),
        };
        if let Some(until) = locked_until.filter(|u| *u > now) {
            self.note_address_failure(client.as_deref());
            let mut actor = Actor::anonymous();
            actor.user_id = user.as_ref().map(|u| *u.id.as_uuid());
            self.audit_actor(actor, "auth.login", Outcome::Denied, client, Some("account locked"))
                .await?;
            return Err(locked_error(until));
        }
        let phc = user
            .as_ref()
            .map_or_else(|| DUMMY_HASH.to_string(), |u| u.password_hash.clone());
        let password_ok = self
            .blocking_hash(move || verify_password_blocking(&password, &phc))
            .await?;
        let (second_factor, factor_ok) = match (&user, password_ok) {
            (Some(u), true) if !u.disabled => self.check_second_factor(u, code).await?,
            _ => (false, false),
        };
        let user = match user {
            Some(u) if password_ok && factor_ok && !u.disabled => u,
            other => {
                self.note_address_failure(client.as_deref());
                self.record_login_failure(other.as_ref(), username, &settings).await?;
                let mut actor = Actor::anonymous();
                actor.user_id = other.as_ref().map(|u| *u.id.as_uuid());
                // The attempted username is not recorded: it may be a mistyped password.
                self.audit_actor(actor, "auth.login", Outcome::Failed, client, Some("wrong credentials"))
                    .await?;
                tracing::info!("sign-in refused");
                return Err(ServiceError::Unauthenticated);
            }
        };
        let reads_personal_data = self.inventory.role(&user.role).is_some_and(|r| !r.purposes.is_empty());
        let enrollment_required = settings.require_mfa && reads_personal_data && !second_factor;
        let lifetime = Duration::hours(settings.session_absolute_hours);
        let template = TokenRow {
            id: TokenId::new(),
            user_id: user.id,
            kind: TokenKind::Session,
            name: None,
            hash: Vec::new(),
            created_at: now,
            expires_at: Some(now + lifetime),
            revoked_at: None,
            last_used_at: Some(now),
            purpose: None,
            mfa: second_factor,
        };
        let (uid, role, name) = (*user.id.as_uuid(), user.role.clone(), user.username.clone());
        let reset = (user.failed_logins > 0 || user.locked_until.is_some()).then_some(WriteOp::SetLoginFailures {
            user_id: user.id,
            failed_logins: 0,
            locked_until: None,
        });
        let (id, token) = self
            .issue_token(template, |t| {
                let actor = Actor {
                    kind: ActorKind::User,
                    user_id: Some(uid),
                    token_id: Some(*t.as_uuid()),
                    username: Some(name),
                    role: Some(role),
                };
                let mut r = AuditRecord::new(Utc::now(), actor, "auth.login", Outcome::Ok);
                r.client = self.audit_client(client.as_deref(), r.at);
                r.reason = Some(
                    if second_factor {
                        "password and second factor"
                    } else {
                        "password"
                    }
                    .into(),
                );
                WriteOp::AppendAudit(Box::new(r))
            })
            .await?;
        if let Some(op) = reset {
            self.store.write(vec![op]).await?;
        }
        tracing::info!(user_id = %user.id, token_id = %id, "signed in");
        Ok(LoginOutcome {
            token,
            token_id: id,
            expires_in_seconds: lifetime.num_seconds(),
            mfa: second_factor,
            mfa_enrollment_required: enrollment_required,
        })
    }

    async fn record_login_failure(
        &self,
        user: Option<&UserRow>,
        username: &str,
        settings: &crate::settings::Settings,
    ) -> ServiceResult<()> {
        let lock_for = Duration::minutes(settings.lockout_minutes);
        let now = Utc::now();
        match user {
            Some(u) => {
                // A lock that has run out starts a fresh count.
                let before = if u.locked_until.is_some_and(|l| l <= now) {
                    0
                } else {
                    u.failed_logins
                };
                let failed = before + 1;
                let locked_until = (failed >= settings.lockout_threshold).then(|| now + lock_for);
                self.store
                    .write(vec![WriteOp::SetLoginFailures {
                        user_id: u.id,
                        failed_logins: failed,
                        locked_until,
                    }])
                    .await?;
            }
            None => {
                if let Ok(mut m) = self.auth.phantom.lock() {
                    let e = m.entry(username.chars().take(64).collect()).or_insert((0, None));
                    if e.1.is_some_and(|l| l <= now) {
                        *e = (0, None);
                    }
                    e.0 += 1;
                    if e.0 >= settings.lockout_threshold {
                        e.1 = Some(now + lock_for);
                    }
                    if m.len() > 100_000 {
                        m.clear();
                    }
                }
            }
        }
        Ok(())
    }

    /// Signs out: revokes the session (or token) the request came with.
    pub async fn logout(&self, principal: &Principal) -> ServiceResult<()> {
        let Some(id) = principal.token_id else { return Ok(()) };
        let audit = self.principal_entry(principal, "auth.logout", &[*id.as_uuid()]);
        self.store
            .write(vec![WriteOp::RevokeToken { id, at: Utc::now() }, audit])
            .await?;
        self.auth.forget_tokens();
        Ok(())
    }

    /// An audit entry for an act of an authenticated principal outside a
    /// purpose (account and token management).
    pub(crate) fn principal_entry(&self, p: &Principal, action: &str, records: &[uuid::Uuid]) -> WriteOp {
        let actor = Actor {
            kind: if p.token_kind == Some(TokenKind::Api) {
                ActorKind::Token
            } else {
                ActorKind::User
            },
            user_id: Some(*p.user_id.as_uuid()),
            token_id: p.token_id.map(|t| *t.as_uuid()),
            username: Some(p.username.clone()),
            role: Some(p.role.clone()),
        };
        let mut r = AuditRecord::new(Utc::now(), actor, action, Outcome::Ok);
        r.record_ids = records.to_vec();
        WriteOp::AppendAudit(Box::new(r))
    }

    /// The user named `username`, refused if disabled.
    pub(crate) async fn active_user(&self, username: &str) -> ServiceResult<UserRow> {
        let user = self
            .store
            .get_user_by_username(username)
            .await?
            .ok_or(ServiceError::NotFound("user"))?;
        if user.disabled {
            return Err(ServiceError::Forbidden("the user is disabled".into()));
        }
        Ok(user)
    }

    /// The principal for a local CLI operation made as `username`.
    pub async fn local_principal(&self, username: &str) -> ServiceResult<Principal> {
        let user = self.active_user(username).await?;
        Ok(Principal {
            user_id: user.id,
            username: user.username,
            role: user.role,
            token_id: None,
            token_kind: None,
            scope: None,
            mfa_pending: false,
        })
    }

    /// Resolves a bearer token to its principal: the token must exist, not
    /// be revoked or expired (sessions also expire when idle), and belong to
    /// an enabled user.
    pub async fn authenticate(&self, token: &str) -> ServiceResult<Principal> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Err(ServiceError::Unauthenticated);
        }
        let hash = self.token_hash(token);
        self.auth.sync_epoch(self.store.access_epoch());
        if let Ok(cache) = self.auth.cache.lock() {
            if let Some((at, p)) = cache.get(&hash) {
                if at.elapsed() < TOKEN_CACHE_TTL {
                    return Ok(p.clone());
                }
            }
        }
        let (row, user) = self
            .store
            .get_token_by_hash(&hash)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        // The lookup was by hash; compare again in constant time for good measure.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(row.hash.as_slice(), hash.as_slice())) {
            return Err(ServiceError::Unauthenticated);
        }
        let now = Utc::now();
        let settings = self.settings().await?;
        let idle = row.kind == TokenKind::Session
            && row.last_used_at.unwrap_or(row.created_at) + Duration::minutes(settings.session_idle_minutes) <= now;
        if row.revoked_at.is_some() || row.expires_at.is_some_and(|e| e <= now) || idle || user.disabled {
            return Err(ServiceError::Unauthenticated);
        }
        self.touch_token(&row, now).await;
        let reads_personal_data = self.inventory.role(&user.role).is_some_and(|r| !r.purposes.is_empty());
        let principal = Principal {
            user_id: user.id,
            username: user.username,
            role: user.role,
            token_id: Some(row.id),
            token_kind: Some(row.kind),
            scope: row.purpose,
            mfa_pending: row.kind == TokenKind::Session && !row.mfa && settings.require_mfa && reads_personal_data,
        };
        if let Ok(mut cache) = self.auth.cache.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(hash, (Instant::now(), principal.clone()));
        }
        Ok(principal)
    }

    /// The CSRF token that goes with a cookie session: a keyed hash of the
    /// session token, so it needs no storage and cannot be guessed.
    #[must_use]
    pub fn csrf_token_for(&self, session_token: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(self.crypto.labelled_hash("csrf", session_token.as_bytes()))
    }

    /// Whether `sent` is the CSRF token of `session_token` (constant time).
    #[must_use]
    pub fn csrf_matches(&self, session_token: &str, sent: &str) -> bool {
        let expected = self.csrf_token_for(session_token);
        !sent.is_empty() && bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), sent.as_bytes()))
    }

    /// Records the token's use, at most once a minute per token.
    async fn touch_token(&self, row: &TokenRow, now: DateTime<Utc>) {
        let last = self
            .auth
            .touched
            .lock()
            .ok()
            .and_then(|m| m.get(&row.id).copied())
            .or(row.last_used_at);
        if last.is_some_and(|l| now - l < TOUCH_EVERY) {
            return;
        }
        if let Ok(mut m) = self.auth.touched.lock() {
            if m.len() > 100_000 {
                m.clear();
            }
            m.insert(row.id, now);
        }
        if let Err(e) = self
            .store
            .write(vec![WriteOp::TouchToken { id: row.id, at: now }])
            .await
        {
            tracing::warn!(token_id = %row.id, error = %e, "could not record a token's use");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummy_hash_is_a_valid_phc_string() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify_password_blocking("anything", DUMMY_HASH));
    }

    #[test]
    fn password_hash_round_trip() {
        let h = hash_password_blocking("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password_blocking("correct horse", &h));
        assert!(!verify_password_blocking("wrong horse", &h));
    }

    #[test]
    fn usernames() {
        assert!(validate_username("alice.smith-2").is_ok());
        for bad in ["", "Alice", "a b", "ä", &"x".repeat(65)] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }
}
