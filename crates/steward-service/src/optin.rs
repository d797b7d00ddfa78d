//! Double opt-in: how a consent given through the public endpoint (web
//! forms, no staff login) becomes consent.
//!
//! Anyone can type anyone's address into a web form, so a public grant is
//! never consent by itself. It is recorded as *pending* — sealed under the
//! instance outbox key, because the person may not be a contact yet, and
//! linked to no contact — and a one-time code is e-mailed to the address
//! through the sealed outbox. Only when the code comes back is the contact
//! found or created and the consent recorded as granted, with the request
//! and the confirmation as its evidence. A code works once and expires
//! after `consent_confirmation_days` (a setting). The endpoint answers the
//! same for known and unknown addresses, and for an erased person's address
//! (to whom nothing is sent: the proof of erasure is checked in the
//! writing transaction, as for every write that sets an identifier).
//!
//! A public *withdrawal* takes effect at once, without confirmation,
//! because it can only narrow processing: it never makes a purpose usable,
//! and an unknown address records nothing. Global Privacy Control
//! (`Sec-GPC: 1`) is such an opt-out too (of sale and sharing).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use steward_audit::{Actor, AuditRecord, Outcome};
use steward_domain::inventory::{LawfulBasis, CONTACT};
use steward_domain::Inventory;
use steward_store::{ContactRow, PendingConsentRow, StoreError, WriteOp};

use crate::consent::{one_time_code, ConsentInput, SALE_SHARING};
use crate::error::{ServiceError, ServiceResult};
use crate::outbox::Message;
use crate::Service;

/// Domain label of the keyed hash of a public confirmation code.
const CODE_LABEL: &str = "public-consent";
/// The sealed note's field name (binds the ciphertext to its use).
const NOTE_FIELD: &str = "pending_consent";

/// What the public endpoint answers: the same whether or not the address
/// is known (or was erased), so it reveals nothing about who is a contact.
#[derive(Debug, Clone)]
pub struct PublicConsentOutcome {
    /// `pending_confirmation` for a grant, `accepted` for a withdrawal.
    pub status: &'static str,
    pub gpc_opt_out: bool,
    /// Only with development tokens on (see [`Service::set_development_tokens`]).
    pub confirmation_token: Option<String>,
}

/// A public grant as it waits for confirmation (sealed).
#[derive(Debug, Serialize, Deserialize)]
struct PendingRequest {
    email: String,
    purpose: String,
    notice_version: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    gpc: bool,
    requested_at: DateTime<Utc>,
}

/// The e-mail that carries a double opt-in code.
pub(crate) fn confirmation_message(inventory: &Inventory, to: String, purpose: &str, code: &str, days: i64) -> Message {
    let what = inventory
        .purpose(purpose)
        .map_or_else(|| purpose.to_string(), |p| p.description.clone());
    Message {
        to,
        subject: "Please confirm your consent".into(),
        body: format!(
            "We were asked to record your consent to: {what}.\n\
             To confirm that it was you, use this code within {days} days on our privacy page \
             (POST /api/v1/public/consents/confirm {{\"token\": \"{code}\"}}).\n\
             If you did not ask for this, ignore this message: nothing will be recorded and \
             your address will not be used for it.\n"
        ),
    }
}

impl Service {
    /// The public consent endpoint (web forms; no staff login; rate
    /// limited). A grant waits for double opt-in (see the module
    /// documentation); a withdrawal, and with Global Privacy Control an
    /// opt-out of sale and sharing, is recorded at once for a known address.
    pub async fn public_consent(
        &self,
        email: &str,
        input: ConsentInput,
        gpc: bool,
    ) -> ServiceResult<PublicConsentOutcome> {
        self.public.check(input.ip.as_deref())?;
        let normal = steward_domain::records::normalise_contact_field(
            &self.inventory,
            "email",
            &Value::String(email.to_string()),
        )
        .map_err(|e| ServiceError::Invalid(vec![e]))?;
        if input.purpose != SALE_SHARING {
            let basis = self.inventory.purpose(&input.purpose).map(|p| p.lawful_basis);
            if basis != Some(LawfulBasis::Consent) {
                return Err(ServiceError::invalid("purpose", "is not a consent-based purpose"));
            }
        }
        // Validated the same way for every address.
        self.notice_of(input.notice_version.as_deref()).await?;
        let mut opt_outs = Vec::new();
        if !input.granted {
            opt_outs.push(ConsentInput {
                source: Some("web form (opt-out)".into()),
                ..input.clone()
            });
        }
        if gpc && (input.granted || input.purpose != SALE_SHARING) {
            opt_outs.push(ConsentInput {
                purpose: SALE_SHARING.into(),
                granted: false,
                source: Some("global privacy control".into()),
                ..input.clone()
            });
        }
        if !opt_outs.is_empty() {
            self.public_opt_out(&normal, &opt_outs, input.ip.clone(), gpc).await?;
        }
        // Under GPC, a grant of sale and sharing is not taken.
        if !input.granted || (gpc && input.purpose == SALE_SHARING) {
            return Ok(PublicConsentOutcome {
                status: "accepted",
                gpc_opt_out: gpc,
                confirmation_token: None,
            });
        }
        let token = self.request_confirmation(normal, &input, gpc).await?;
        Ok(PublicConsentOutcome {
            status: "pending_confirmation",
            gpc_opt_out: gpc,
            confirmation_token: token.filter(|_| self.development_tokens()),
        })
    }

    /// Records opt-outs for the contact holding `email`, if there is one
    /// (an unknown or erased address records nothing).
    async fn public_opt_out(
        &self,
        email: &str,
        inputs: &[ConsentInput],
        client: Option<String>,
        gpc: bool,
    ) -> ServiceResult<()> {
        let Some(row) = self.contact_by_email(email).await?.filter(|r| self.key_of(r).is_ok()) else {
            return Ok(());
        };
        let mut records = Vec::new();
        for input in inputs {
            records.push(self.consent_row(&row, input, None, 1).await?.0);
        }
        let ids: Vec<uuid::Uuid> = records.iter().map(|r| r.id).collect();
        let mut ops = self.consent_write_ops(&row, records).await?;
        let mut audit = AuditRecord::new(Utc::now(), Actor::anonymous(), "consent.withdraw", Outcome::Ok);
        audit.subject_id = Some(*row.subject_id.as_uuid());
        audit.record_ids = ids;
        audit.purpose = inputs.first().map(|i| i.purpose.clone());
        audit.client = self.audit_client(client.as_deref(), audit.at);
        audit.reason = Some(if gpc {
            "opt-out through the public endpoint (Sec-GPC: 1 honoured as an opt-out of sale and sharing)".into()
        } else {
            "opt-out through the public endpoint".into()
        });
        ops.push(WriteOp::AppendAudit(Box::new(audit)));
        Ok(self.store.write(ops).await?)
    }

    /// Records a public grant as pending and e-mails its one-time code;
    /// returns the code (`None` when nothing was sent because the address
    /// belongs to an erased person).
    async fn request_confirmation(
        &self,
        email: String,
        input: &ConsentInput,
        gpc: bool,
    ) -> ServiceResult<Option<String>> {
        let now = Utc::now();
        let days = self.settings().await?.consent_confirmation_days;
        let code = one_time_code();
        let id = uuid::Uuid::now_v7();
        let request = PendingRequest {
            email: email.clone(),
            purpose: input.purpose.clone(),
            notice_version: input.notice_version.clone(),
            ip: input.ip.clone(),
            user_agent: input.user_agent.clone(),
            gpc,
            requested_at: now,
        };
        let plain = serde_json::to_string(&request).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let sealed = self
            .crypto
            .seal_note(id.as_bytes(), NOTE_FIELD, &plain)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let pending = PendingConsentRow {
            token_hash: self.crypto.labelled_hash(CODE_LABEL, code.as_bytes()),
            id,
            sealed,
            created_at: now,
            expires_at: now + Duration::days(days),
            used_at: None,
        };
        let message = confirmation_message(&self.inventory, email.clone(), &input.purpose, &code, days);
        let audit = |outcome, reason: Option<&str>| {
            let mut a = AuditRecord::new(now, Actor::anonymous(), "consent.request", outcome);
            a.record_ids = vec![id];
            a.purpose = Some(input.purpose.clone());
            a.client = self.audit_client(input.ip.as_deref(), a.at);
            a.reason = reason.map(str::to_string);
            WriteOp::AppendAudit(Box::new(a))
        };
        let field = "email".to_string();
        let mut ops = self.erasure_guards(std::iter::once((&field, &email)));
        ops.extend([
            WriteOp::PurgePendingConsents { before: now },
            WriteOp::PutPendingConsent(Box::new(pending)),
            self.queue_mail("consent.confirmation", &message)?,
            audit(
                Outcome::Ok,
                Some("double opt-in: a one-time code was e-mailed to the address given"),
            ),
        ]);
        match self.store.write(ops).await {
            Ok(()) => Ok(Some(code.to_string())),
            Err(StoreError::Erased { .. }) => {
                self.store
                    .write(vec![audit(
                        Outcome::Denied,
                        Some("the address is an erased person's: nothing was recorded or sent"),
                    )])
                    .await?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Confirms a double opt-in with its one-time code (no staff login):
    /// a public grant (the contact is found or created, the consent
    /// recorded) or a pending grant recorded by staff.
    pub async fn confirm_consent(&self, token: &str, client: Option<String>) -> ServiceResult<()> {
        self.public.check(client.as_deref())?;
        let token = token.trim();
        if token.is_empty() || token.len() > 128 {
            return Err(ServiceError::NotFound("confirmation"));
        }
        let public_hash = self.crypto.labelled_hash(CODE_LABEL, token.as_bytes());
        if let Some(pending) = self.store.get_pending_consent(&public_hash).await? {
            return self.confirm_public(pending, client).await;
        }
        self.confirm_staff_grant(token, client).await
    }

    async fn confirm_public(&self, pending: PendingConsentRow, client: Option<String>) -> ServiceResult<()> {
        let invalid = || ServiceError::NotFound("confirmation");
        let now = Utc::now();
        if pending.used_at.is_some() || pending.expires_at <= now {
            return Err(invalid());
        }
        let plain = self
            .crypto
            .open_note(pending.id.as_bytes(), NOTE_FIELD, &pending.sealed)
            .map_err(|_| ServiceError::Internal(format!("pending consent {} could not be decrypted", pending.id)))?;
        let request: PendingRequest =
            serde_json::from_str(&plain).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let mut ops = vec![WriteOp::UsePendingConsent {
            token_hash: pending.token_hash.clone(),
            at: now,
        }];
        let existing = self
            .contact_by_email(&request.email)
            .await?
            .filter(|r| self.key_of(r).is_ok());
        let created = existing.is_none();
        let row = match existing {
            Some(row) if request.purpose != SALE_SHARING && !row.purposes.contains(&request.purpose) => {
                // The person consented to a purpose their data was not yet
                // collected for: it becomes one.
                let key = self.key_of(&row)?;
                let fields = self.open_all_fields(&row, &key)?;
                let mut purposes = row.purposes.clone();
                purposes.push(request.purpose.clone());
                let updated = ContactRow {
                    purposes,
                    updated_at: now.max(row.updated_at),
                    version: row.version + 1,
                    ..row.clone()
                };
                ops.push(WriteOp::UpdateContact {
                    row: ContactRow {
                        key: None,
                        ..updated.clone()
                    },
                    expected_version: row.version,
                    terms: self.index_terms(&fields),
                });
                updated
            }
            Some(row) => row,
            None if request.purpose == SALE_SHARING => {
                // Nobody to record it for; the code is used up all the same.
                let mut audit = AuditRecord::new(now, Actor::anonymous(), "consent.confirm", Outcome::Ok);
                audit.record_ids = vec![pending.id];
                audit.purpose = Some(request.purpose.clone());
                audit.client = self.audit_client(client.as_deref(), audit.at);
                audit.reason = Some("no contact holds the address; nothing recorded".into());
                ops.push(WriteOp::AppendAudit(Box::new(audit)));
                return self.finish_confirmation(ops).await;
            }
            None => {
                let mut fields = std::collections::BTreeMap::new();
                fields.insert("email".to_string(), request.email.clone());
                let purposes = vec![request.purpose.clone()];
                let errors = self.check_minimal(CONTACT, fields.keys(), &purposes);
                if !errors.is_empty() {
                    return Err(ServiceError::Invalid(errors));
                }
                let (row, stored_key, create) = self.new_contact_ops(purposes, &fields)?;
                ops.extend(self.erasure_guards(fields.iter()));
                ops.extend(create);
                let mut audit = AuditRecord::new(now, Actor::anonymous(), "contact.create", Outcome::Ok);
                audit.subject_id = Some(*row.subject_id.as_uuid());
                audit.record_ids = vec![*row.subject_id.as_uuid()];
                audit.fields = vec!["email".into()];
                audit.purpose = Some(request.purpose.clone());
                audit.reason = Some("created when the data subject confirmed their consent (double opt-in)".into());
                ops.push(WriteOp::AppendAudit(Box::new(audit)));
                ContactRow { key: stored_key, ..row }
            }
        };
        let note = format!(
            "double opt-in: requested through the public endpoint at {}; confirmed at {} from {} with the \
             one-time code e-mailed to the address",
            request.requested_at.to_rfc3339(),
            now.to_rfc3339(),
            client.as_deref().unwrap_or("an unknown address"),
        );
        let grant = ConsentInput {
            purpose: request.purpose.clone(),
            granted: true,
            source: Some("web form (double opt-in)".into()),
            notice_version: request.notice_version.clone(),
            evidence: Some(note),
            ip: request.ip.clone(),
            user_agent: request.user_agent.clone(),
            double_opt_in: false,
        };
        let (mut record, _) = self.consent_row(&row, &grant, None, 1).await?;
        record.confirmed_at = Some(now);
        let mut records = vec![record];
        // For a known contact the GPC opt-out was recorded with the request.
        if request.gpc && created {
            let opt_out = ConsentInput {
                purpose: SALE_SHARING.into(),
                granted: false,
                source: Some("global privacy control".into()),
                evidence: None,
                ..grant.clone()
            };
            records.push(self.consent_row(&row, &opt_out, None, 1).await?.0);
        }
        let mut ids = vec![pending.id];
        ids.extend(records.iter().map(|r| r.id));
        ops.extend(self.consent_write_ops(&row, records).await?);
        let mut audit = AuditRecord::new(now, Actor::anonymous(), "consent.confirm", Outcome::Ok);
        audit.subject_id = Some(*row.subject_id.as_uuid());
        audit.record_ids = ids;
        audit.purpose = Some(request.purpose.clone());
        audit.client = self.audit_client(client.as_deref(), audit.at);
        ops.push(WriteOp::AppendAudit(Box::new(audit)));
        self.finish_confirmation(ops).await
    }

    async fn finish_confirmation(&self, ops: Vec<WriteOp>) -> ServiceResult<()> {
        match self.store.write(ops).await {
            Ok(()) => Ok(()),
            // Used or expired meanwhile (two confirmations raced).
            Err(StoreError::NotFound) => Err(ServiceError::NotFound("confirmation")),
            Err(StoreError::Duplicate | StoreError::VersionConflict) => Err(ServiceError::Conflict(
                "the contact changed while the consent was confirmed; use the code again".into(),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Confirms a pending grant recorded by staff with double opt-in.
    async fn confirm_staff_grant(&self, token: &str, client: Option<String>) -> ServiceResult<()> {
        let hash = self.crypto.labelled_hash("consent-confirmation", token.as_bytes());
        let invalid = || ServiceError::NotFound("confirmation");
        let pending = self
            .store
            .find_consent_by_confirmation(&hash)
            .await?
            .ok_or_else(invalid)?;
        let now = Utc::now();
        if pending.confirmation_expires_at.is_some_and(|e| e <= now) {
            return Err(invalid());
        }
        let row = self
            .store
            .get_contact(pending.subject_id)
            .await?
            .filter(|r| self.key_of(r).is_ok())
            .ok_or_else(invalid)?;
        let grant = ConsentInput {
            purpose: pending.purpose.clone(),
            granted: true,
            source: Some("double opt-in confirmation".into()),
            notice_version: pending.notice_version.clone(),
            evidence: Some(format!("confirms pending consent {}", pending.id)),
            ip: client.clone(),
            user_agent: None,
            double_opt_in: false,
        };
        let (mut granted, _) = self.consent_row(&row, &grant, None, 1).await?;
        granted.confirmed_at = Some(now);
        let ids = vec![pending.id, granted.id];
        let mut ops = vec![WriteOp::UseConsentConfirmation { hash, at: now }];
        ops.extend(self.consent_write_ops(&row, vec![granted]).await?);
        let mut audit = AuditRecord::new(now, Actor::anonymous(), "consent.confirm", Outcome::Ok);
        audit.subject_id = Some(*row.subject_id.as_uuid());
        audit.record_ids = ids;
        audit.purpose = Some(pending.purpose.clone());
        audit.client = self.audit_client(client.as_deref(), audit.at);
        ops.push(WriteOp::AppendAudit(Box::new(audit)));
        self.finish_confirmation(ops).await
    }
}
