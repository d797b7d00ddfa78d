//! The request context: who is asking, in which role, for which purpose.
//! Built once per request from the authenticated principal and the
//! requested purpose; every use case takes it.

use steward_domain::inventory::{LawfulBasis, COMPLIANCE};
use steward_domain::Verb;

use crate::auth::Principal;
use crate::error::{ServiceError, ServiceResult};
use crate::Service;

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub principal: Principal,
    /// The purpose the request is made for: the one asked for, else the
    /// role's default. `None` when the role has neither; such a request may
    /// not touch personal data.
    pub purpose: Option<String>,
    /// The adapter's request id, for correlating logs and (later) audit.
    pub request_id: Option<String>,
    /// The client's network address, when the adapter knows it.
    pub client: Option<String>,
    /// Why this request may not touch personal data at all, if it may not
    /// (a second factor still to enrol, missing training).
    pub personal_data_block: Option<String>,
}

impl Service {
    /// Resolves the purpose of a request: the requested purpose must be one
    /// the principal's role may act for. A refusal is recorded in the audit log.
    pub async fn context(
        &self,
        principal: Principal,
        requested_purpose: Option<&str>,
        request_id: Option<String>,
        client: Option<String>,
    ) -> ServiceResult<RequestContext> {
        let mut ctx = RequestContext {
            principal,
            purpose: None,
            request_id,
            client,
            personal_data_block: None,
        };
        ctx.personal_data_block = self.personal_data_block(&ctx.principal).await?;
        match self.resolve_purpose(&ctx.principal, requested_purpose) {
            Ok(purpose) => {
                ctx.purpose = purpose;
                Ok(ctx)
            }
            Err(e) => self.guard(&ctx, "purpose.resolve", None, async { Err(e) }).await,
        }
    }

    /// Whether the principal is barred from personal data as such: an
    /// interactive session still waiting for its second factor, or staff
    /// without current data-protection training when training is required.
    async fn personal_data_block(&self, p: &Principal) -> ServiceResult<Option<String>> {
        if p.mfa_pending {
            return Ok(Some(
                "a second factor is required: enrol with POST /api/v1/auth/totp/enroll and confirm it, then sign in again with a code"
                    .into(),
            ));
        }
        let reads_personal_data = self.inventory.role(&p.role).is_some_and(|r| !r.purposes.is_empty());
        if reads_personal_data && self.settings().await?.require_training && !self.trained(p.user_id).await? {
            return Ok(Some(
                "current data-protection training is required for access to personal data".into(),
            ));
        }
        Ok(None)
    }

    fn resolve_purpose(&self, principal: &Principal, requested: Option<&str>) -> ServiceResult<Option<String>> {
        let role = self.inventory.role(&principal.role).ok_or_else(|| {
            ServiceError::Forbidden(format!(
                "role '{}' is not defined in the data inventory",
                principal.role
            ))
        })?;
        if let Some(scope) = &principal.scope {
            return match requested {
                Some(p) if p != scope => Err(ServiceError::Forbidden(format!(
                    "this token may be used only for purpose '{scope}'"
                ))),
                _ => Ok(Some(scope.clone())),
            };
        }
        match requested {
            Some(p) if self.inventory.purpose(p).is_none() => Err(ServiceError::Forbidden(format!(
                "'{}' is not a purpose in the data inventory",
                sanitize(p)
            ))),
            Some(p) if !role.allows_purpose(p) => Err(ServiceError::Forbidden(format!(
                "role '{}' may not act for purpose '{p}'",
                principal.role
            ))),
            Some(p) => Ok(Some(p.to_string())),
            None => Ok(role.default_purpose.clone()),
        }
    }

    /// Refuses unless the role may perform `verb` on `record_type`.
    pub(crate) fn require_action(&self, ctx: &RequestContext, record_type: &str, verb: Verb) -> ServiceResult<()> {
        let allowed = self
            .inventory
            .role(&ctx.principal.role)
            .is_some_and(|r| r.allows_action(record_type, verb));
        if allowed {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "role '{}' may not {} {record_type} records",
                ctx.principal.role,
                verb.as_str()
            )))
        }
    }

    /// The request's purpose, required for anything touching personal data.
    pub(crate) fn require_purpose<'c>(&self, ctx: &'c RequestContext) -> ServiceResult<&'c str> {
        if let Some(block) = &ctx.personal_data_block {
            return Err(ServiceError::Forbidden(block.clone()));
        }
        ctx.purpose.as_deref().ok_or_else(|| {
            ServiceError::Forbidden(format!(
                "role '{}' has no purpose for personal data; name one in the Steward-Purpose header",
                ctx.principal.role
            ))
        })
    }

    /// Whether `purpose` is usable for a subject collected for `collected`:
    /// compliance always is; any other purpose must be among the collection
    /// purposes and have a lawful basis that currently holds.
    pub(crate) fn purpose_usable(&self, purpose: &str, row: &steward_store::ContactRow) -> Result<(), String> {
        if purpose == COMPLIANCE {
            return Ok(());
        }
        if row.restricted {
            return Err(
                "processing of this contact's data is restricted; only the privacy officer may use it, for compliance"
                    .into(),
            );
        }
        if !row.purposes.iter().any(|p| p == purpose) {
            return Err(format!("the contact's data was not collected for purpose '{purpose}'"));
        }
        if row
            .consented
            .iter()
            .any(|(p, _)| p.strip_prefix(crate::dsr::OBJECTED) == Some(purpose))
        {
            return Err(format!(
                "the contact has objected to processing for purpose '{purpose}'"
            ));
        }
        match self.inventory.purpose(purpose).map(|p| p.lawful_basis) {
            // A consent-based purpose needs a current consent: granted, not
            // withdrawn since, not expired. Withdrawal takes effect at once.
            Some(LawfulBasis::Consent) => {
                let now = chrono::Utc::now();
                let current = row
                    .consented
                    .iter()
                    .any(|(p, expires)| p == purpose && expires.is_none_or(|e| e > now));
                if current {
                    Ok(())
                } else {
                    Err(format!(
                        "purpose '{purpose}' requires the contact's current consent, which is not on record"
                    ))
                }
            }
            Some(_) => Ok(()),
            None => Err(format!("'{purpose}' is not a purpose in the data inventory")),
        }
    }
}

/// Echo only identifier-like text back in messages.
fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}
