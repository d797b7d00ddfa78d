//! Second factors: TOTP (RFC 6238) enrolment, confirmation and checking at
//! sign-in, with replay protection (the last accepted time step is stored
//! and only later steps are accepted) and one-time recovery codes stored as
//! keyed hashes. Credentials are kept as a list per user with a `kind`, so
//! WebAuthn can sit beside TOTP.

use chrono::Utc;
use steward_crypto::totp::{self, TotpParams, TotpSecret};
use steward_store::{CredentialRow, StoreError, UserRow, WriteOp};
use zeroize::Zeroizing;

use crate::auth::Principal;
use crate::error::{ServiceError, ServiceResult};
use crate::Service;

pub const TOTP: &str = "totp";
const ISSUER: &str = "Steward";
const RECOVERY_CODES: usize = 10;
const RECOVERY_LABEL: &str = "recovery-code";

/// What enrolment returns: shown once.
pub struct Enrollment {
    pub secret_base32: Zeroizing<String>,
    pub otpauth_uri: Zeroizing<String>,
}

fn unix_now() -> u64 {
    u64::try_from(Utc::now().timestamp()).unwrap_or(0)
}

impl Service {
    fn open_totp(&self, c: &CredentialRow) -> ServiceResult<TotpSecret> {
        self.crypto
            .open_credential(c.id.as_bytes(), &c.secret)
            .map(TotpSecret::from_bytes)
            .map_err(|_| ServiceError::Internal(format!("credential {} could not be decrypted", c.id)))
    }

    /// At sign-in, after the password: (whether the user has a second
    /// factor, whether `code` satisfies it). A TOTP code is accepted once; a
    /// recovery code is used up.
    pub(crate) async fn check_second_factor(&self, user: &UserRow, code: Option<&str>) -> ServiceResult<(bool, bool)> {
        let creds = self.store.get_credentials(user.id).await?;
        let Some(cred) = creds.iter().find(|c| c.kind == TOTP && c.confirmed) else {
            return Ok((false, true));
        };
        let Some(code) = code.map(str::trim).filter(|c| !c.is_empty()) else {
            return Ok((true, false));
        };
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            let secret = self.open_totp(cred)?;
            let Some(step) = totp::verify(&secret, code, unix_now(), cred.last_step, &TotpParams::default()) else {
                return Ok((true, false));
            };
            return match self
                .store
                .write(vec![WriteOp::AcceptCredentialStep { id: cred.id, step }])
                .await
            {
                Ok(()) => Ok((true, true)),
                // Accepted meanwhile by another sign-in: a replay.
                Err(StoreError::VersionConflict) => Ok((true, false)),
                Err(e) => Err(e.into()),
            };
        }
        let hash = self
            .crypto
            .labelled_hash(RECOVERY_LABEL, totp::normalise_recovery_code(code).as_bytes());
        match self
            .store
            .write(vec![WriteOp::UseRecoveryCode {
                user_id: user.id,
                hash,
                at: Utc::now(),
            }])
            .await
        {
            Ok(()) => {
                tracing::info!(user_id = %user.id, "recovery code used");
                Ok((true, true))
            }
            Err(StoreError::NotFound) => Ok((true, false)),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts TOTP enrolment for the signed-in user: a new secret, stored
    /// sealed and unconfirmed until a code from it is confirmed.
    pub async fn totp_enroll(&self, p: &Principal) -> ServiceResult<Enrollment> {
        let creds = self.store.get_credentials(p.user_id).await?;
        if creds.iter().any(|c| c.kind == TOTP && c.confirmed) {
            return Err(ServiceError::Conflict(
                "a second factor is already enabled; an administrator can reset it".into(),
            ));
        }
        let secret = TotpSecret::generate().map_err(|e| ServiceError::Internal(e.to_string()))?;
        let id = creds
            .iter()
            .find(|c| c.kind == TOTP)
            .map_or_else(uuid::Uuid::now_v7, |c| c.id);
        let sealed = self
            .crypto
            .seal_credential(id.as_bytes(), secret.as_bytes())
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let row = CredentialRow {
            id,
            user_id: p.user_id,
            kind: TOTP.into(),
            secret: sealed,
            confirmed: false,
            last_step: None,
            created_at: Utc::now(),
        };
        let audit = self.principal_entry(p, "mfa.enroll", &[*p.user_id.as_uuid()]);
        self.store.write(vec![WriteOp::PutCredential(row), audit]).await?;
        let params = TotpParams::default();
        Ok(Enrollment {
            secret_base32: Zeroizing::new(secret.to_base32()),
            otpauth_uri: Zeroizing::new(totp::otpauth_uri(&secret, ISSUER, &p.username, &params)),
        })
    }

    /// Confirms enrolment with a current code; turns the second factor on
    /// and returns one-time recovery codes (shown once, stored hashed).
    pub async fn totp_confirm(&self, p: &Principal, code: &str) -> ServiceResult<Vec<String>> {
        let creds = self.store.get_credentials(p.user_id).await?;
        let cred = creds.iter().find(|c| c.kind == TOTP && !c.confirmed).ok_or_else(|| {
            ServiceError::Conflict("there is no enrolment to confirm; call POST /api/v1/auth/totp/enroll first".into())
        })?;
        let secret = self.open_totp(cred)?;
        let step = totp::verify(&secret, code.trim(), unix_now(), cred.last_step, &TotpParams::default())
            .ok_or_else(|| ServiceError::invalid("code", "is not a current code from the authenticator"))?;
        let codes = totp::generate_recovery_codes(RECOVERY_CODES).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let hashes = codes
            .iter()
            .map(|c| {
                self.crypto
                    .labelled_hash(RECOVERY_LABEL, totp::normalise_recovery_code(c).as_bytes())
            })
            .collect();
        let audit = self.principal_entry(p, "mfa.enable", &[*p.user_id.as_uuid()]);
        match self
            .store
            .write(vec![
                WriteOp::AcceptCredentialStep { id: cred.id, step },
                WriteOp::ReplaceRecoveryCodes {
                    user_id: p.user_id,
                    hashes,
                },
                audit,
            ])
            .await
        {
            Ok(()) => {}
            Err(StoreError::VersionConflict) => return Err(ServiceError::invalid("code", "has already been used")),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(user_id = %p.user_id, "second factor enabled");
        Ok(codes)
    }

    /// Whether the user has a confirmed second factor, and how many unused
    /// recovery codes remain.
    pub async fn mfa_status(&self, user: steward_domain::UserId) -> ServiceResult<(bool, u64)> {
        let enabled = self.store.get_credentials(user).await?.iter().any(|c| c.confirmed);
        Ok((enabled, self.store.count_unused_recovery_codes(user).await?))
    }
}
