//! Authentication: staff users with Argon2id password hashes, API and
//! session tokens stored as keyed hashes, and the resolution of a bearer
//! token to a [`Principal`].
//!
//! Password hashing is slow on purpose; it runs on blocking threads with
//! bounded concurrency so it never stalls the async runtime. Tokens are
//! random 256-bit secrets checked by one HMAC, never by Argon2.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use steward_domain::{TokenId, UserId};
use steward_store::{StoreError, TokenKind, TokenRow, UserRow, WriteOp};
use zeroize::Zeroizing;

use steward_audit::{Actor, ActorKind, AuditRecord, Outcome};

use crate::error::{ServiceError, ServiceResult};
use crate::Service;

/// Prefix that makes Steward tokens recognisable to secret scanners.
pub const TOKEN_PREFIX: &str = "stw_";
/// Lifetime of a session token issued at sign-in.
pub const SESSION_LIFETIME_HOURS: i64 = 12;
pub const MIN_PASSWORD_LEN: usize = 8;

/// Who is making a request, once their token has been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: UserId,
    pub username: String,
    pub role: String,
    /// The token the request came with; `None` for local CLI operations,
    /// which are trusted through access to the data dir.
    pub token_id: Option<TokenId>,
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

impl Service {
    async fn blocking_hash<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> ServiceResult<T> {
        let _permit = self
            .hash_permits
            .acquire()
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// Creates a staff user. Used by `steward user create`.
    pub async fn create_user(&self, username: &str, role: &str, password: Zeroizing<String>) -> ServiceResult<UserId> {
        validate_username(username)?;
        if self.inventory.role(role).is_none() {
            let roles: Vec<_> = self.inventory.roles.keys().map(String::as_str).collect();
            return Err(ServiceError::invalid(
                "role",
                format!("must be one of {}", roles.join(", ")),
            ));
        }
        if password.chars().count() < MIN_PASSWORD_LEN {
            return Err(ServiceError::invalid(
                "password",
                format!("must be at least {MIN_PASSWORD_LEN} characters"),
            ));
        }
        let hash = self.blocking_hash(move || hash_password_blocking(&password)).await??;
        let user = UserRow {
            id: UserId::new(),
            username: username.to_string(),
            role: role.to_string(),
            password_hash: hash,
            disabled: false,
            created_at: Utc::now(),
        };
        let id = user.id;
        let audit = system_entry("user.create", &[*id.as_uuid()], None);
        match self.store.write(vec![WriteOp::InsertUser(user), audit]).await {
            Err(StoreError::Duplicate) => Err(ServiceError::Conflict(
                "a user with this username already exists".into(),
            )),
            other => other.map_err(ServiceError::from),
        }?;
        tracing::info!(user_id = %id, role, "user created");
        Ok(id)
    }

    fn token_hash(&self, token: &str) -> Vec<u8> {
        self.crypto.token_hash(token)
    }

    /// Issues a token and stores its hash together with `audit` (built from
    /// the new token's id), so the token exists only if its issue is recorded.
    async fn issue_token(
        &self,
        user_id: UserId,
        kind: TokenKind,
        name: Option<String>,
        expires_at: Option<DateTime<Utc>>,
        audit: impl FnOnce(TokenId) -> WriteOp,
    ) -> ServiceResult<(TokenId, Zeroizing<String>)> {
        let mut secret = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(secret.as_mut());
        let token = Zeroizing::new(format!(
            "{TOKEN_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret.as_ref())
        ));
        let row = TokenRow {
            id: TokenId::new(),
            user_id,
            kind,
            name,
            hash: self.token_hash(&token),
            created_at: Utc::now(),
            expires_at,
        };
        let id = row.id;
        self.store.write(vec![WriteOp::InsertToken(row), audit(id)]).await?;
        Ok((id, token))
    }

    /// Creates an API token for `username`; returns the secret, shown once.
    pub async fn create_api_token(
        &self,
        username: &str,
        name: Option<String>,
        expires_in_days: Option<u32>,
    ) -> ServiceResult<Zeroizing<String>> {
        let user = self.active_user(username).await?;
        let expires_at = match expires_in_days {
            Some(0) => return Err(ServiceError::invalid("expires_in_days", "must be at least 1")),
            Some(d) => Some(Utc::now() + Duration::days(i64::from(d))),
            None => None,
        };
        let user_uuid = *user.id.as_uuid();
        let (id, token) = self
            .issue_token(user.id, TokenKind::Api, name, expires_at, |t| {
                system_entry("token.create", &[user_uuid, *t.as_uuid()], None)
            })
            .await?;
        tracing::info!(user_id = %user.id, token_id = %id, "API token created");
        Ok(token)
    }

    /// Password sign-in; returns a session token. Unknown users and wrong
    /// passwords fail alike, in the same time.
    pub async fn login(
        &self,
        username: &str,
        password: Zeroizing<String>,
        client: Option<String>,
    ) -> ServiceResult<Zeroizing<String>> {
        let user = self.store.get_user_by_username(username).await?;
        let phc = user
            .as_ref()
            .map_or_else(|| DUMMY_HASH.to_string(), |u| u.password_hash.clone());
        let ok = self
            .blocking_hash(move || verify_password_blocking(&password, &phc))
            .await?;
        let user = match user {
            Some(u) if ok && !u.disabled => u,
            other => {
                tracing::info!("sign-in refused");
                // The attempted username is not recorded: it may be a
                // mistyped password. A known user is recorded by id.
                let mut actor = Actor::anonymous();
                actor.user_id = other.map(|u| *u.id.as_uuid());
                self.audit_actor(actor, "auth.login", Outcome::Failed, client, Some("wrong credentials"))
                    .await?;
                return Err(ServiceError::Unauthenticated);
            }
        };
        let expires = Utc::now() + Duration::hours(SESSION_LIFETIME_HOURS);
        let (uid, role, name) = (*user.id.as_uuid(), user.role.clone(), user.username.clone());
        let (id, token) = self
            .issue_token(user.id, TokenKind::Session, None, Some(expires), |t| {
                let actor = Actor {
                    kind: ActorKind::User,
                    user_id: Some(uid),
                    token_id: Some(*t.as_uuid()),
                    username: Some(name),
                    role: Some(role),
                };
                let mut r = AuditRecord::new(Utc::now(), actor, "auth.login", Outcome::Ok);
                r.client = client;
                WriteOp::AppendAudit(Box::new(r))
            })
            .await?;
        tracing::info!(user_id = %user.id, token_id = %id, "signed in");
        Ok(token)
    }

    /// The user named `username`, refused if disabled.
    async fn active_user(&self, username: &str) -> ServiceResult<UserRow> {
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
        })
    }

    /// Resolves a bearer token to its principal.
    pub async fn authenticate(&self, token: &str) -> ServiceResult<Principal> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Err(ServiceError::Unauthenticated);
        }
        let hash = self.token_hash(token);
        let (row, user) = self
            .store
            .get_token_by_hash(&hash)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        // The lookup was by hash; compare again in constant time for good measure.
        if !bool::from(subtle::ConstantTimeEq::ct_eq(row.hash.as_slice(), hash.as_slice())) {
            return Err(ServiceError::Unauthenticated);
        }
        if row.expires_at.is_some_and(|e| e <= Utc::now()) || user.disabled {
            return Err(ServiceError::Unauthenticated);
        }
        Ok(Principal {
            user_id: user.id,
            username: user.username,
            role: user.role,
            token_id: Some(row.id),
        })
    }
}

/// An entry for an administrative act by Steward's operator (the CLI).
pub(crate) fn system_entry(action: &str, records: &[uuid::Uuid], reason: Option<String>) -> WriteOp {
    let mut r = AuditRecord::new(Utc::now(), Actor::system(), action, Outcome::Ok);
    r.record_ids = records.to_vec();
    r.reason = reason;
    WriteOp::AppendAudit(Box::new(r))
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
