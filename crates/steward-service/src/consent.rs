//! Consent: append-only consent records per subject and purpose (granted,
//! withdrawn, or pending a double opt-in confirmation), their evidence
//! (notice version and text hash; IP address and user agent when given,
//! sealed under the subject's key), expiry from the inventory, the current
//! state per purpose (which the purpose check of every request reads), and
//! privacy-notice versions with the renewals a material change requires.
//!
//! The public side — a consent endpoint for web forms honouring Global
//! Privacy Control, and double opt-in confirmation — needs no staff login.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration as StdDuration, Instant};

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use steward_audit::{Actor, AuditRecord, Outcome};
use steward_crypto::FieldAad;
use steward_domain::inventory::{LawfulBasis, CONTACT};
use steward_domain::{SubjectId, Verb};
pub use steward_store::NoticeRow;
use steward_store::{ConsentRow, ContactRow, StoreError, WriteOp};
use zeroize::Zeroizing;

use crate::auth::Principal;
use crate::context::RequestContext;
use crate::error::{ServiceError, ServiceResult};
use crate::Service;

/// The pseudo-purpose of the CCPA/CPRA right to opt out of the sale or
/// sharing of personal information (and of Global Privacy Control).
pub const SALE_SHARING: &str = "sale_sharing";
const CONSENT_RECORD: &str = "consent";
/// Public endpoint: requests per address per minute.
const PUBLIC_LIMIT: usize = 20;

#[derive(Debug, Clone, Default)]
pub struct ConsentInput {
    pub purpose: String,
    pub granted: bool,
    pub source: Option<String>,
    pub notice_version: Option<String>,
    /// Free-text evidence (e.g. "ticked box on form v3").
    pub evidence: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// Grant only after the subject confirms with a one-time token.
    pub double_opt_in: bool,
}

/// A consent record as shown to staff.
#[derive(Debug, Clone)]
pub struct ConsentView {
    pub id: uuid::Uuid,
    pub subject_id: SubjectId,
    pub purpose: String,
    pub status: String,
    pub recorded_at: DateTime<Utc>,
    pub source: String,
    pub notice_version: Option<String>,
    pub notice_hash: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub recorded_by: Option<String>,
    pub confirmed_at: Option<DateTime<Utc>>,
    /// Only for the compliance purpose.
    pub evidence: Option<Value>,
}

/// The current state of one purpose for one subject.
#[derive(Debug, Clone)]
pub struct ConsentState {
    pub purpose: String,
    /// `granted`, `withdrawn`, `pending`, `expired` or `none`.
    pub status: &'static str,
    pub since: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Given under a notice older than the latest material version: the
    /// grant ends on this date unless it is renewed under the new notice.
    pub renew_by: Option<DateTime<Utc>>,
}

/// The re-consent campaign a material privacy-notice version starts:
/// grants given under an older version end `reconsent_grace_days` after it
/// was published, unless renewed under it (or a later version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    /// The material version.
    pub version: String,
    /// It and the versions published after it: grants under these stand.
    pub current: Vec<String>,
    pub published_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
}

impl Renewal {
    /// The campaign of the latest material notice, if any.
    #[must_use]
    pub fn from_notices(notices: &[NoticeRow], grace_days: i64) -> Option<Self> {
        let material = notices.iter().filter(|n| n.material).max_by_key(|n| n.published_at)?;
        Some(Self {
            version: material.version.clone(),
            current: notices
                .iter()
                .filter(|n| n.published_at >= material.published_at)
                .map(|n| n.version.clone())
                .collect(),
            published_at: material.published_at,
            deadline: material.published_at + Duration::days(grace_days),
        })
    }

    /// Whether a grant recorded under `version` must be renewed.
    #[must_use]
    pub fn applies_to(&self, version: Option<&str>) -> bool {
        !version.is_some_and(|v| self.current.iter().any(|c| c == v))
    }
}

#[derive(Default)]
pub(crate) struct PublicLimiter(Mutex<HashMap<String, VecDeque<Instant>>>);

impl PublicLimiter {
    /// Refuses (429) a caller over the limit.
    pub(crate) fn check(&self, client: Option<&str>) -> ServiceResult<()> {
        if self.allow(client) {
            Ok(())
        } else {
            Err(ServiceError::TooManyRequests(
                "too many requests; try again in a minute".into(),
            ))
        }
    }

    fn allow(&self, client: Option<&str>) -> bool {
        let (Some(client), Ok(mut map)) = (client, self.0.lock()) else {
            return true;
        };
        if map.len() > 100_000 {
            map.clear();
        }
        let now = Instant::now();
        let q = map.entry(client.to_string()).or_default();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) > StdDuration::from_secs(60))
        {
            q.pop_front();
        }
        if q.len() >= PUBLIC_LIMIT {
            return false;
        }
        q.push_back(now);
        true
    }
}

/// A new one-time code: 32 random bytes, base64url.
pub(crate) fn one_time_code() -> Zeroizing<String> {
    let mut secret = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(secret.as_mut());
    Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret.as_ref()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The current state per purpose from a subject's records (oldest first):
/// the latest granted/withdrawn record decides; pending records do not
/// count until confirmed; a grant past its expiry is expired.
#[must_use]
pub fn current_state(records: &[ConsentRow], now: DateTime<Utc>, renewal: Option<&Renewal>) -> Vec<ConsentState> {
    let mut latest: BTreeMap<&str, &ConsentRow> = BTreeMap::new();
    let mut pending: BTreeMap<&str, &ConsentRow> = BTreeMap::new();
    for r in records {
        if r.status == "pending" {
            if r.confirmed_at.is_none() {
                pending.insert(&r.purpose, r);
            }
        } else {
            latest.insert(&r.purpose, r);
            pending.remove(r.purpose.as_str());
        }
    }
    let mut out: Vec<ConsentState> = latest
        .values()
        .map(|r| {
            let renew_by = renewal
                .filter(|c| r.status == "granted" && c.applies_to(r.notice_version.as_deref()))
                .map(|c| c.deadline);
            let expires_at = match (r.expires_at, renew_by) {
                (Some(e), Some(d)) => Some(e.min(d)),
                (e, d) => e.or(d),
            };
            let status = match r.status.as_str() {
                "granted" if expires_at.is_some_and(|e| e <= now) => "expired",
                "granted" => "granted",
                _ => "withdrawn",
            };
            ConsentState {
                purpose: r.purpose.clone(),
                status,
                since: Some(r.recorded_at),
                expires_at,
                renew_by,
            }
        })
        .collect();
    for (p, r) in pending {
        if !latest.contains_key(p) {
            out.push(ConsentState {
                purpose: p.to_string(),
                status: "pending",
                since: Some(r.recorded_at),
                expires_at: None,
                renew_by: None,
            });
        }
    }
    out
}

/// The denormalised state kept on the contact: purposes with a grant.
pub(crate) fn consented(
    records: &[ConsentRow],
    now: DateTime<Utc>,
    renewal: Option<&Renewal>,
) -> Vec<(String, Option<DateTime<Utc>>)> {
    current_state(records, now, renewal)
        .into_iter()
        .filter(|s| s.status == "granted")
        .map(|s| (s.purpose, s.expires_at))
        .collect()
}

impl Service {
    fn validate_consent(&self, row: &ContactRow, input: &ConsentInput) -> ServiceResult<()> {
        if input.purpose == SALE_SHARING {
            return Ok(());
        }
        let purpose = self.inventory.purpose(&input.purpose).ok_or_else(|| {
            ServiceError::invalid("purpose", "is not a purpose in the data inventory (or sale_sharing)")
        })?;
        if purpose.lawful_basis != LawfulBasis::Consent {
            return Err(ServiceError::invalid(
                "purpose",
                format!("is based on {}, not on consent", purpose.lawful_basis.as_str()),
            ));
        }
        if input.granted && !row.purposes.iter().any(|p| p == &input.purpose) {
            return Err(ServiceError::invalid(
                "purpose",
                "is not among the purposes the contact's data is collected for; add it to the contact first",
            ));
        }
        Ok(())
    }

    pub(crate) async fn notice_of(&self, version: Option<&str>) -> ServiceResult<Option<NoticeRow>> {
        let Some(v) = version else { return Ok(None) };
        let notice = self.store.list_notices().await?.into_iter().find(|n| n.version == v);
        notice
            .map(Some)
            .ok_or_else(|| ServiceError::invalid("notice_version", "is not a published privacy-notice version"))
    }

    /// Builds a consent record for `row`, sealing its evidence. A grant
    /// with double opt-in is pending, with the hash of the returned
    /// one-time token, for `confirmation_days`.
    pub(crate) async fn consent_row(
        &self,
        row: &ContactRow,
        input: &ConsentInput,
        recorded_by: Option<&Principal>,
        confirmation_days: i64,
    ) -> ServiceResult<(ConsentRow, Option<Zeroizing<String>>)> {
        self.validate_consent(row, input)?;
        let source = input.source.as_deref().unwrap_or("api").trim().to_string();
        if source.is_empty() || source.chars().count() > 100 || source.chars().any(char::is_control) {
            return Err(ServiceError::invalid("source", "must be 1 to 100 printable characters"));
        }
        if input.evidence.as_ref().is_some_and(|e| e.chars().count() > 2000) {
            return Err(ServiceError::invalid("evidence", "must be at most 2000 characters"));
        }
        let notice = self.notice_of(input.notice_version.as_deref()).await?;
        let now = Utc::now();
        let id = uuid::Uuid::now_v7();
        let key = self.key_of(row)?;
        let evidence = json!({"ip": input.ip, "user_agent": input.user_agent, "note": input.evidence});
        let aad = FieldAad {
            record_type: CONSENT_RECORD,
            record_id: id.as_bytes(),
            field: "evidence",
            subject_id: row.subject_id.as_bytes(),
        };
        let sealed = self
            .crypto
            .seal(&key, &aad, &evidence.to_string())
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        let valid_days = self
            .inventory
            .purpose(&input.purpose)
            .and_then(|p| p.consent_valid_days);
        let mut token = None;
        let (status, confirmation_hash, confirmation_expires_at) = if input.granted && input.double_opt_in {
            let t = one_time_code();
            let hash = self.crypto.labelled_hash("consent-confirmation", t.as_bytes());
            token = Some(t);
            ("pending", Some(hash), Some(now + Duration::days(confirmation_days)))
        } else if input.granted {
            ("granted", None, None)
        } else {
            ("withdrawn", None, None)
        };
        let record = ConsentRow {
            id,
            subject_id: row.subject_id,
            purpose: input.purpose.clone(),
            status: status.into(),
            recorded_at: now,
            source,
            notice_version: notice.as_ref().map(|n| n.version.clone()),
            notice_hash: notice.as_ref().map(|n| n.text_hash.clone()),
            evidence: Some(sealed),
            recorded_by: recorded_by.map(|p| p.user_id),
            expires_at: (status == "granted")
                .then(|| valid_days.map(|d| now + Duration::days(i64::from(d))))
                .flatten(),
            confirmation_hash,
            confirmation_expires_at,
            confirmed_at: None,
        };
        Ok((record, token))
    }

    /// The ops that store `records` of `row`'s subject with the consent
    /// state recomputed over its whole history.
    pub(crate) async fn consent_write_ops(
        &self,
        row: &ContactRow,
        records: Vec<ConsentRow>,
    ) -> ServiceResult<Vec<WriteOp>> {
        let mut history = self.store.list_consents(row.subject_id).await?;
        history.extend(records.iter().cloned());
        let mut ops: Vec<WriteOp> = records
            .into_iter()
            .map(|r| WriteOp::InsertConsent(Box::new(r)))
            .collect();
        ops.push(WriteOp::SetConsentState {
            subject_id: row.subject_id,
            consented: self.consent_state_of(row, &history).await?,
        });
        Ok(ops)
    }

    fn consent_view(&self, r: &ConsentRow, row: &ContactRow, with_evidence: bool) -> ServiceResult<ConsentView> {
        let evidence = match (&r.evidence, with_evidence) {
            (Some(sealed), true) => {
                let key = self.key_of(row)?;
                let aad = FieldAad {
                    record_type: CONSENT_RECORD,
                    record_id: r.id.as_bytes(),
                    field: "evidence",
                    subject_id: row.subject_id.as_bytes(),
                };
                let text = self.crypto.open(&key, &aad, sealed).map_err(|_| {
                    tracing::error!(consent_id = %r.id, subject_id = %row.subject_id, "consent evidence could not be decrypted");
                    ServiceError::Internal(format!("the evidence of consent {} could not be decrypted", r.id))
                })?;
                serde_json::from_str(&text).ok()
            }
            _ => None,
        };
        Ok(ConsentView {
            id: r.id,
            subject_id: r.subject_id,
            purpose: r.purpose.clone(),
            status: r.status.clone(),
            recorded_at: r.recorded_at,
            source: r.source.clone(),
            notice_version: r.notice_version.clone(),
            notice_hash: r.notice_hash.as_deref().map(hex),
            expires_at: r.expires_at,
            recorded_by: r.recorded_by.map(|u| u.to_string()),
            confirmed_at: r.confirmed_at,
            evidence,
        })
    }

    async fn consent_subject(&self, ctx: &RequestContext, id: SubjectId, verb: Verb) -> ServiceResult<ContactRow> {
        self.require_action(ctx, CONTACT, verb)?;
        self.require_purpose(ctx)?;
        let row = self
            .store
            .get_contact(id)
            .await?
            .ok_or(ServiceError::NotFound("contact"))?;
        self.key_of(&row)?;
        Ok(row)
    }

    /// Records a consent (granted or withdrawn) given to staff. Withdrawal
    /// takes effect on the next request. With double opt-in the grant is
    /// pending: a one-time code is e-mailed (through the sealed outbox) to
    /// the contact's address, and the grant counts once the subject
    /// confirms it. The code is returned only with development tokens on.
    pub async fn record_consent(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        input: ConsentInput,
    ) -> ServiceResult<(ConsentView, Option<String>)> {
        self.guard(ctx, "consent.record", Some(subject), async {
            let row = self.consent_subject(ctx, subject, Verb::Write).await?;
            let days = self.settings().await?.consent_confirmation_days;
            let (record, token) = self.consent_row(&row, &input, Some(&ctx.principal), days).await?;
            let mail = match &token {
                Some(code) => {
                    let key = self.key_of(&row)?;
                    let email = self.open_fields_pub(&row, &key, "email")?.ok_or_else(|| {
                        ServiceError::invalid(
                            "double_opt_in",
                            "the contact has no e-mail address to send the confirmation to",
                        )
                    })?;
                    Some(self.queue_mail(
                        "consent.confirmation",
                        &crate::optin::confirmation_message(&self.inventory, email, &input.purpose, code, days),
                    )?)
                }
                None => None,
            };
            let action = if input.granted {
                "consent.grant"
            } else {
                "consent.withdraw"
            };
            let mut ops = self.consent_write_ops(&row, vec![record.clone()]).await?;
            ops.extend(mail);
            ops.push(self.audit_ok(ctx, action, Some(subject), &[record.id], vec![input.purpose.clone()]));
            self.store.write(ops).await?;
            let token = token.filter(|_| self.development_tokens()).map(|t| t.to_string());
            Ok((self.consent_view(&record, &row, false)?, token))
        })
        .await
    }

    /// A subject's consent history (oldest first) and current state per purpose.
    pub async fn list_consents(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
    ) -> ServiceResult<(Vec<ConsentView>, Vec<ConsentState>)> {
        self.guard(ctx, "consent.read", Some(subject), async {
            let row = self.consent_subject(ctx, subject, Verb::Read).await?;
            let with_evidence = ctx.purpose.as_deref() == Some(steward_domain::inventory::COMPLIANCE);
            let records = self.store.list_consents(subject).await?;
            let views = records
                .iter()
                .map(|r| self.consent_view(r, &row, with_evidence))
                .collect::<ServiceResult<Vec<_>>>()?;
            let renewal = self.renewal().await?;
            let state = current_state(&records, Utc::now(), renewal.as_ref());
            let audit = self.ok_record(ctx, "consent.read", Some(subject), &[*subject.as_uuid()], vec![]);
            self.audit_reads(vec![audit]).await?;
            Ok((views, state))
        })
        .await
    }

    /// One consent record of a subject.
    pub async fn consent_record(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        id: uuid::Uuid,
    ) -> ServiceResult<(ContactRow, ConsentRow)> {
        let row = self.consent_subject(ctx, subject, Verb::Read).await?;
        let record = self
            .store
            .list_consents(subject)
            .await?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or(ServiceError::NotFound("consent record"))?;
        Ok((row, record))
    }

    /// The signed Kantara Consent Receipt (v1.1) of one consent record:
    /// the receipt JSON, its compact JWS (EdDSA) and the public key (JWK).
    pub async fn consent_receipt(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        id: uuid::Uuid,
    ) -> ServiceResult<(Value, String, Value)> {
        self.guard(ctx, "consent.receipt", Some(subject), async {
            let (_, record) = self.consent_record(ctx, subject, id).await?;
            let receipt = self.build_receipt(&record);
            let jws = self.crypto.receipt_key().sign(receipt.to_string().as_bytes(), "JWT");
            let audit = self.ok_record(
                ctx,
                "consent.receipt",
                Some(subject),
                &[record.id],
                vec![record.purpose.clone()],
            );
            self.audit_reads(vec![audit]).await?;
            Ok((receipt, jws, self.crypto.receipt_key().jwk()))
        })
        .await
    }

    /// The public key that verifies consent receipts (a JWK).
    #[must_use]
    pub fn receipt_public_jwk(&self) -> Value {
        self.crypto.receipt_key().jwk()
    }

    fn build_receipt(&self, r: &ConsentRow) -> Value {
        use steward_domain::receipt::{build_receipt, Controller, ReceiptInput, ReceiptPurpose};
        let inv = &self.inventory;
        let c = &inv.controller;
        let purpose = inv.purpose(&r.purpose);
        let mut categories: Vec<String> = Vec::new();
        let mut special: Vec<String> = Vec::new();
        if let Some(p) = purpose {
            for (rt, fields) in &p.needs {
                for f in fields {
                    let Some(spec) = inv.field(rt, f).filter(|s| s.personal) else {
                        continue;
                    };
                    if !categories.contains(&spec.category) {
                        categories.push(spec.category.clone());
                        if inv.categories.get(&spec.category).is_some_and(|c| c.special) {
                            special.push(spec.category.clone());
                        }
                    }
                }
            }
        }
        let third_parties: Vec<String> = purpose
            .map(|p| p.recipients.iter().filter(|r| !r.contains("staff")).cloned().collect())
            .unwrap_or_default();
        let termination = match (r.status.as_str(), r.expires_at) {
            ("withdrawn", _) => "withdrawn".to_string(),
            (_, Some(e)) => format!("on withdrawal, or at {}", e.to_rfc3339()),
            _ => "on withdrawal".to_string(),
        };
        let input = ReceiptInput {
            receipt_id: r.id.to_string(),
            jurisdiction: c.jurisdiction.clone(),
            consent_timestamp: r.recorded_at.timestamp(),
            collection_method: r.source.clone(),
            language: "en".into(),
            principal_id: r.subject_id.to_string(),
            controller: Controller {
                name: c.name.clone(),
                contact: c.contact.clone(),
                street_address: c.street_address.clone(),
                country: c.country.clone(),
                email: c.email.clone(),
                phone: c.phone.clone(),
                url: c.url.clone(),
            },
            policy_url: c.policy_url.clone(),
            service: "Steward CRM".into(),
            purposes: vec![ReceiptPurpose {
                purpose: purpose.map_or_else(
                    || "Sale or sharing of personal information".to_string(),
                    |p| p.description.clone(),
                ),
                purpose_category: vec![r.purpose.clone()],
                consent_type: if r.status == "withdrawn" {
                    "WITHDRAWN".into()
                } else {
                    "EXPLICIT".into()
                },
                pii_category: categories,
                primary_purpose: true,
                termination,
                third_party_names: third_parties,
            }],
            sensitive: !special.is_empty(),
            spi_categories: special,
            public_key: Some(self.crypto.receipt_key().jwk_thumbprint()),
        };
        build_receipt(&input)
    }

    pub(crate) async fn contact_by_email(&self, normal: &str) -> ServiceResult<Option<ContactRow>> {
        let spec = self
            .inventory
            .field(CONTACT, "email")
            .ok_or(ServiceError::NotFound("email field"))?;
        let term = self
            .crypto
            .blind()
            .term(CONTACT, "email", &crate::contacts::exact_key(spec.kind, normal));
        Ok(self
            .store
            .find_contacts_by_term(&term, None, 1)
            .await?
            .into_iter()
            .next())
    }

    /// The Art. 30 record of processing activities, from the inventory
    /// (dpo, auditor, admin).
    pub fn record_of_processing(&self, p: &Principal) -> ServiceResult<steward_domain::ropa::RecordOfProcessing> {
        let ok = self
            .inventory
            .role(&p.role)
            .is_some_and(|r| r.actions.iter().any(|a| a == "audit.read" || a == "users.manage"));
        if !ok || p.mfa_pending {
            return Err(ServiceError::Forbidden(format!(
                "role '{}' may not read compliance reports",
                p.role
            )));
        }
        Ok(steward_domain::ropa::record_of_processing(&self.inventory, Utc::now()))
    }

    /// Publishes a privacy-notice version (dpo or admin).
    pub async fn publish_notice(
        &self,
        p: &Principal,
        version: &str,
        text: &str,
        material: bool,
        language: Option<&str>,
    ) -> ServiceResult<NoticeRow> {
        let allowed = self.inventory.role(&p.role).is_some_and(|r| {
            r.actions.iter().any(|a| a == "users.manage" || a == "audit.read") && (p.role != "auditor")
        });
        if !allowed || p.mfa_pending {
            return Err(ServiceError::Forbidden(format!(
                "role '{}' may not publish privacy notices",
                p.role
            )));
        }
        let version = version.trim();
        if version.is_empty()
            || version.len() > 64
            || !version.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(ServiceError::invalid(
                "version",
                "must be 1 to 64 letters, digits, '.', '_' or '-'",
            ));
        }
        if text.trim().is_empty() || text.chars().count() > 200_000 {
            return Err(ServiceError::invalid("text", "must be between 1 and 200000 characters"));
        }
        let notice = NoticeRow {
            id: uuid::Uuid::now_v7(),
            version: version.into(),
            language: language.unwrap_or("en").chars().take(16).collect(),
            text: text.to_string(),
            text_hash: Sha256::digest(text.as_bytes()).to_vec(),
            material,
            published_at: Utc::now(),
        };
        let audit = self.principal_entry(p, "notice.publish", &[notice.id]);
        match self
            .store
            .write(vec![WriteOp::InsertNotice(notice.clone()), audit])
            .await
        {
            Err(StoreError::Duplicate) => Err(ServiceError::Conflict(
                "this notice version is already published".into(),
            )),
            other => other.map_err(ServiceError::from),
        }?;
        if material {
            // The campaign starts now: grants under older versions end at
            // its deadline (re-applied by every retention run).
            self.apply_renewals().await?;
        }
        Ok(notice)
    }

    pub async fn list_notices(&self) -> ServiceResult<Vec<NoticeRow>> {
        Ok(self.store.list_notices().await?)
    }

    /// Current consents given under a notice version older than the latest
    /// material one: (subject, purpose, the version it was given under).
    pub async fn consents_needing_renewal(
        &self,
        p: &Principal,
    ) -> ServiceResult<Vec<(SubjectId, String, Option<String>)>> {
        Self::may_read_consent_reports(&self.inventory, p)?;
        let Some(renewal) = self.renewal().await? else {
            return Ok(vec![]);
        };
        self.renewal_candidates(&renewal).await
    }

    fn may_read_consent_reports(inv: &steward_domain::Inventory, p: &Principal) -> ServiceResult<()> {
        if !inv
            .role(&p.role)
            .is_some_and(|r| r.actions.iter().any(|a| a == "audit.read" || a == "users.manage"))
            || p.mfa_pending
        {
            return Err(ServiceError::Forbidden(format!(
                "role '{}' may not read consent reports",
                p.role
            )));
        }
        Ok(())
    }

    /// The campaign in force: the latest material notice and its deadline.
    pub async fn renewal(&self) -> ServiceResult<Option<Renewal>> {
        let notices = self.store.list_notices().await?;
        if !notices.iter().any(|n| n.material) {
            return Ok(None);
        }
        let grace = self.settings().await?.reconsent_grace_days;
        Ok(Renewal::from_notices(&notices, grace))
    }

    async fn renewal_candidates(&self, renewal: &Renewal) -> ServiceResult<Vec<(SubjectId, String, Option<String>)>> {
        let mut latest: BTreeMap<(SubjectId, String), (String, Option<String>)> = BTreeMap::new();
        for s in self.store.consent_summaries().await? {
            if s.status != "pending" {
                latest.insert((s.subject_id, s.purpose), (s.status, s.notice_version));
            }
        }
        Ok(latest
            .into_iter()
            .filter(|(_, (status, version))| status == "granted" && renewal.applies_to(version.as_deref()))
            .map(|((subject, purpose), (_, version))| (subject, purpose, version))
            .collect())
    }

    /// The consent state kept on `row` for its `history`: the purposes
    /// granted (ending at a renewal deadline where one applies), and the
    /// objections recorded, which no consent changes.
    pub(crate) async fn consent_state_of(
        &self,
        row: &ContactRow,
        history: &[ConsentRow],
    ) -> ServiceResult<Vec<(String, Option<DateTime<Utc>>)>> {
        let renewal = self.renewal().await?;
        let mut state = consented(history, Utc::now(), renewal.as_ref());
        state.extend(
            row.consented
                .iter()
                .filter(|(p, _)| p.starts_with(crate::dsr::OBJECTED))
                .cloned(),
        );
        Ok(state)
    }

    /// Brings the consent state of every contact the campaign concerns up
    /// to date (its grants end at the deadline), so the purpose check of
    /// every read stops them then; idempotent. Returns how many contacts
    /// changed.
    pub async fn apply_renewals(&self) -> ServiceResult<u64> {
        let Some(renewal) = self.renewal().await? else {
            return Ok(0);
        };
        let mut subjects: Vec<SubjectId> = self
            .renewal_candidates(&renewal)
            .await?
            .into_iter()
            .map(|(s, _, _)| s)
            .collect();
        subjects.dedup();
        let mut changed = 0;
        for subject in subjects {
            let Some(row) = self.store.get_contact(subject).await? else {
                continue;
            };
            let history = self.store.list_consents(subject).await?;
            let state = self.consent_state_of(&row, &history).await?;
            if state == row.consented {
                continue;
            }
            let mut audit = AuditRecord::new(Utc::now(), Actor::system(), "consent.renewal_required", Outcome::Ok);
            audit.subject_id = Some(*subject.as_uuid());
            audit.record_ids = vec![*subject.as_uuid()];
            audit.reason = Some(format!(
                "privacy notice {} is material: grants under older versions end on {}",
                renewal.version,
                renewal.deadline.format("%Y-%m-%d")
            ));
            self.store
                .write(vec![
                    WriteOp::SetConsentState {
                        subject_id: subject,
                        consented: state,
                    },
                    WriteOp::AppendAudit(Box::new(audit)),
                ])
                .await?;
            changed += 1;
        }
        Ok(changed)
    }

    /// Queues a renewal e-mail to every contact (with an address) whose
    /// consent needs renewal under the campaign in force: what changed, the
    /// deadline, and where to renew. Returns how many were queued.
    pub async fn queue_renewal_mail(&self, p: &Principal) -> ServiceResult<u64> {
        let allowed = self.inventory.role(&p.role).is_some_and(|r| {
            r.actions.iter().any(|a| a == "users.manage" || a == "audit.read") && (p.role != "auditor")
        });
        if !allowed || p.mfa_pending {
            return Err(ServiceError::Forbidden(format!(
                "role '{}' may not e-mail data subjects about notice changes",
                p.role
            )));
        }
        let Some(renewal) = self.renewal().await? else {
            return Ok(0);
        };
        let portal = format!("our privacy page ({})", self.inventory.controller.policy_url);
        let mut by_subject: BTreeMap<SubjectId, Vec<String>> = BTreeMap::new();
        for (s, purpose, _) in self.renewal_candidates(&renewal).await? {
            by_subject.entry(s).or_default().push(purpose);
        }
        let mut queued = 0;
        for (subject, purposes) in by_subject {
            let Some(row) = self.store.get_contact(subject).await? else {
                continue;
            };
            let key = self.key_of(&row)?;
            let Some(email) = self.open_fields_pub(&row, &key, "email")? else {
                continue;
            };
            let described: Vec<String> = purposes
                .iter()
                .map(|p| {
                    self.inventory
                        .purpose(p)
                        .map_or_else(|| p.clone(), |d| format!("{} ({p})", d.description))
                })
                .collect();
            let message = crate::outbox::Message {
                to: email,
                subject: format!("{}: our privacy notice has changed", self.inventory.controller.name),
                body: format!(
                    "Our privacy notice changed materially (version {}, published {}).\n\n\
                     You agreed to the following under an earlier version:\n  - {}\n\n\
                     We will stop this processing on {} unless you agree again under the new notice. \
                     You can read it and renew or withdraw your consent on {portal}.\n",
                    renewal.version,
                    renewal.published_at.format("%Y-%m-%d"),
                    described.join("\n  - "),
                    renewal.deadline.format("%Y-%m-%d"),
                ),
            };
            let mut audit = self.principal_entry(p, "consent.renewal_mail", &[*subject.as_uuid()]);
            if let WriteOp::AppendAudit(a) = &mut audit {
                a.subject_id = Some(*subject.as_uuid());
                a.fields = purposes.clone();
            }
            self.store
                .write(vec![self.queue_mail("consent.renewal", &message)?, audit])
                .await?;
            queued += 1;
        }
        Ok(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn rec(purpose: &str, status: &str, secs: i64, expires: Option<i64>) -> ConsentRow {
        let t = |s: i64| Utc.timestamp_opt(1_700_000_000 + s, 0).single().unwrap();
        ConsentRow {
            id: uuid::Uuid::now_v7(),
            subject_id: SubjectId::new(),
            purpose: purpose.into(),
            status: status.into(),
            recorded_at: t(secs),
            source: "api".into(),
            notice_version: None,
            notice_hash: None,
            evidence: None,
            recorded_by: None,
            expires_at: expires.map(t),
            confirmation_hash: None,
            confirmation_expires_at: None,
            confirmed_at: None,
        }
    }

    #[test]
    fn latest_record_decides() {
        let now = Utc.timestamp_opt(1_700_000_100, 0).single().unwrap();
        let grant_withdraw_grant = [
            rec("m", "granted", 1, None),
            rec("m", "withdrawn", 2, None),
            rec("m", "granted", 3, None),
        ];
        assert_eq!(current_state(&grant_withdraw_grant, now, None)[0].status, "granted");
        assert_eq!(
            current_state(&grant_withdraw_grant[..2], now, None)[0].status,
            "withdrawn"
        );
        assert_eq!(
            current_state(&[rec("m", "granted", 1, Some(50))], now, None)[0].status,
            "expired"
        );
        assert_eq!(
            current_state(&[rec("m", "pending", 1, None)], now, None)[0].status,
            "pending"
        );
        assert_eq!(consented(&grant_withdraw_grant, now, None).len(), 1);
        assert!(consented(&grant_withdraw_grant[..2], now, None).is_empty());
    }
}
