//! Breach management: the incident register (GDPR Art. 33(5)), scoping a
//! breach from the tamper-evident audit log, the risk assessment, the legal
//! clocks, the notifications to the authority (Art. 33(3)) and to the
//! people affected (Art. 34), and containment.
//!
//! An incident's text (title, description, notes, evidence, the scope) is
//! sealed at rest under an instance key, like a request's notes; only the
//! privacy officer (the compliance purpose) changes it, and roles that may
//! read the audit log (dpo, auditor) read it. Every step is audited with
//! the incident's id, never its text.
//!
//! **Scoping.** Given a compromised user, API token or session, a client
//! address and a time window, the scope is computed from the audit log up
//! to a freshly signed tree head: exactly which people were read, written,
//! exported or deleted, which fields, for which purposes, with counts per
//! field and data category. It is stored with the head and a digest, so
//! that anyone can later recompute it from the same log prefix and compare
//! (`verify_scope`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use steward_audit::{Outcome, SignedTreeHead};
use steward_domain::incident::{
    likely_consequences, notification_due, propose_risk, regulator_notification_required,
    subject_notification_required, BreachCategory, BreachNature, BreachRegime, BreachSource, CategoryCount, ClockState,
    IncidentStatus, RegulatorNotification, RiskFactors, RiskLevel, RiskProposal, MAX_NOTIFICATION_DAYS,
};
use steward_domain::inventory::COMPLIANCE;
use steward_domain::{SubjectId, UserId};
use steward_store::{AuditFilter, IncidentEntryRow, IncidentRow, StoreError, WriteOp};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::audit::verify_head;
use crate::context::RequestContext;
use crate::error::{ServiceError, ServiceResult};
use crate::outbox::Message;
use crate::Service;

/// The sealed note's field names (bind each ciphertext to its use).
const DOC_FIELD: &str = "incident";
const ENTRY_FIELD: &str = "incident_entry";
/// The longest scope window.
const MAX_WINDOW_DAYS: i64 = 366;
/// How far in the future a timestamp may be (clock skew).
const SKEW_MINUTES: i64 = 5;
/// The largest evidence file, decoded.
pub const MAX_EVIDENCE_BYTES: usize = 512 * 1024;
/// Outbox messages and audit entries written per batch when notifying.
const NOTICE_BATCH: usize = 200;

/// The incident as sealed in its row.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct IncidentDoc {
    title: String,
    description: String,
    category: BreachCategory,
    source: BreachSource,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    regime: BreachRegime,
    notification_days: Option<u32>,
    owner: String,
    created_by: String,
    measures: Option<String>,
    consequences: Option<String>,
    risk: Option<RiskAssessment>,
    regulator: Option<RegulatorRecord>,
    subjects_notified: u64,
    subjects_notified_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
}

/// The risk assessment as confirmed or overridden by the privacy officer.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RiskAssessment {
    pub level: RiskLevel,
    pub proposed: RiskLevel,
    pub likelihood: String,
    pub severity: String,
    pub reasons: Vec<String>,
    pub overridden: bool,
    pub override_reason: Option<String>,
    pub keys_exposed: bool,
    pub subjects: u64,
    pub assessed_at: DateTime<Utc>,
    pub assessed_by: String,
}

/// That (and when) the supervisory authority was notified.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RegulatorRecord {
    pub notified_at: DateTime<Utc>,
    pub reference: Option<String>,
    pub delay_reason: Option<String>,
    pub by: String,
}

/// One legal clock of an incident.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Clock {
    /// `regulator` or `subjects`.
    #[schemars(extend("enum" = ["regulator", "subjects"]))]
    pub audience: &'static str,
    pub law: &'static str,
    /// `None` for "without undue delay".
    pub due_at: Option<DateTime<Utc>>,
    pub remaining_seconds: Option<i64>,
    /// on_time, due_soon, overdue, met, late, not_required, without_undue_delay
    #[schemars(extend("enum" = ["on_time", "due_soon", "overdue", "met", "late", "not_required", "without_undue_delay"]))]
    pub state: &'static str,
    /// Whether the risk level requires it; `None` before the assessment.
    pub required: Option<bool>,
    pub done_at: Option<DateTime<Utc>>,
}

/// An incident as the API shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[schemars(rename = "Incident")]
pub struct IncidentView {
    pub id: Uuid,
    pub status: IncidentStatus,
    pub title: String,
    pub description: String,
    pub category: BreachCategory,
    pub source: BreachSource,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub aware_at: DateTime<Utc>,
    pub regime: BreachRegime,
    pub notification_days: Option<u32>,
    pub owner: String,
    pub created_by: String,
    pub measures: Option<String>,
    pub consequences: Option<String>,
    pub risk: Option<RiskAssessment>,
    pub regulator_notification: Option<RegulatorRecord>,
    pub subjects_notified: u64,
    pub subjects_notified_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    pub overdue: bool,
    pub clocks: Vec<Clock>,
}

/// What opens an incident.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentInput {
    #[schemars(length(min = 1, max = 200))]
    #[schemars(extend("pattern" = steward_domain::values::PROSE_PATTERN, "maxLength" = 200))]
    pub title: String,
    #[schemars(length(min = 1, max = 20000))]
    #[schemars(extend("pattern" = steward_domain::values::PROSE_PATTERN, "maxLength" = 20000))]
    pub description: String,
    #[schemars(extend("enum" = ["confidentiality", "integrity", "availability"]))]
    pub category: String,
    #[schemars(extend("enum" = ["lost_device", "compromised_account", "misdirected_email", "vendor", "malware", "insider", "unauthorised_access", "other"]))]
    pub source: String,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    pub aware_at: DateTime<Utc>,
    #[serde(default)]
    #[schemars(extend("enum" = ["gdpr", "us_state", null]))]
    pub regime: Option<String>,
    #[serde(default)]
    #[schemars(range(min = 1, max = 365))]
    pub notification_days: Option<u32>,
    #[serde(default)]
    pub owner: Option<String>,
    #[serde(default)]
    #[schemars(extend("pattern" = steward_domain::values::PROSE_OR_BLANK_PATTERN, "maxLength" = 20000))]
    pub measures: Option<String>,
}

/// A change to an incident (absent fields stay).
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentChange {
    #[schemars(extend("pattern" = steward_domain::values::PROSE_PATTERN, "maxLength" = 200))]
    pub title: Option<String>,
    #[schemars(extend("pattern" = steward_domain::values::PROSE_PATTERN, "maxLength" = 20000))]
    pub description: Option<String>,
    pub category: Option<String>,
    pub source: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub aware_at: Option<DateTime<Utc>>,
    pub regime: Option<String>,
    pub notification_days: Option<u32>,
    pub owner: Option<String>,
    #[schemars(extend("pattern" = steward_domain::values::PROSE_OR_BLANK_PATTERN, "maxLength" = 20000))]
    pub measures: Option<String>,
    #[schemars(extend("pattern" = steward_domain::values::PROSE_OR_BLANK_PATTERN, "maxLength" = 20000))]
    pub consequences: Option<String>,
    #[schemars(extend("enum" = ["open", "assessed", "contained", "notified", "closed", null]))]
    pub status: Option<String>,
}

/// Whose activity to scope. At least one of user, token, session or client.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeCriteria {
    /// A username or user id.
    #[serde(default)]
    pub user: Option<String>,
    /// An API token's id.
    #[serde(default)]
    pub token: Option<Uuid>,
    /// A session's id (sessions are tokens of kind session).
    #[serde(default)]
    pub session: Option<Uuid>,
    /// A client IP address as the log records it.
    #[serde(default)]
    pub client: Option<String>,
    /// Default: the incident's start.
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    /// Default: the incident's end, else now.
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
}

/// The criteria as applied (ids resolved, window fixed).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct AppliedCriteria {
    pub user_id: Option<Uuid>,
    pub username: Option<String>,
    pub token_id: Option<Uuid>,
    pub client: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// What the scope found about one person.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct SubjectScope {
    pub subject_id: Uuid,
    /// read, written, exported, deleted
    pub actions: Vec<String>,
    pub fields: Vec<String>,
    pub categories: Vec<String>,
    pub purposes: Vec<String>,
    pub entries: u64,
}

/// Counts over the scope.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct ScopeTotals {
    pub subjects: u64,
    pub records: u64,
    /// Entries that matched (all outcomes).
    pub entries: u64,
    /// Attempts that were denied or failed (nothing disclosed).
    pub denied: u64,
    /// People per kind of access.
    pub by_action: BTreeMap<String, u64>,
    /// People per field.
    pub by_field: BTreeMap<String, u64>,
    /// People per data category of the inventory.
    pub by_category: BTreeMap<String, u64>,
    /// People per purpose the requests stated.
    pub by_purpose: BTreeMap<String, u64>,
    /// Special categories (Art. 9) among them.
    pub special_categories: Vec<String>,
}

/// The part of a scope its digest covers: all of it but who computed it
/// and when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct ScopeResult {
    pub criteria: AppliedCriteria,
    pub tree_size: u64,
    pub totals: ScopeTotals,
    pub subjects: Vec<SubjectScope>,
}

/// A scope as stored with the incident.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScopeSnapshot {
    pub id: Uuid,
    pub computed_at: DateTime<Utc>,
    pub computed_by: String,
    #[schemars(schema_with = "crate::compliance::signed_tree_head_schema")]
    pub tree_head: SignedTreeHead,
    /// Hex of the audit signing key's public half.
    pub public_key: String,
    /// SHA-256 (hex) of the canonical JSON of `result`.
    pub digest: String,
    pub result: ScopeResult,
}

/// The outcome of re-verifying a stored scope.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ScopeVerification {
    pub scope_id: Uuid,
    pub tree_size: u64,
    pub digest: String,
    pub recomputed_digest: String,
    pub digest_matches: bool,
    pub signature_valid: bool,
    pub log_consistent: bool,
    pub verified: bool,
}

/// One entry of the timeline, opened.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TimelineItem {
    pub id: Uuid,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub text: String,
    /// Details (evidence metadata, containment target, scope totals...).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
}

/// An entry as sealed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct EntryBody {
    actor: String,
    text: String,
    #[serde(default)]
    data: Value,
}

/// What the privacy officer records as the risk assessment.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskInput {
    /// Absent: confirm the proposal.
    #[serde(default)]
    pub level: Option<String>,
    /// Required when `level` differs from the proposal.
    #[serde(default)]
    #[schemars(extend("pattern" = steward_domain::values::PROSE_OR_BLANK_PATTERN, "maxLength" = 5000))]
    pub reason: Option<String>,
    /// Whether the keys that protect the data were exposed too (default
    /// true: data read through the API was served decrypted).
    #[serde(default)]
    pub keys_exposed: Option<bool>,
    /// Without a scope: the estimated number of people.
    #[serde(default)]
    pub approximate_subjects: Option<u64>,
    /// Without a scope: the data categories affected.
    #[serde(default)]
    pub categories: Option<Vec<String>>,
    #[serde(default)]
    #[schemars(extend("pattern" = steward_domain::values::PROSE_OR_BLANK_PATTERN, "maxLength" = 20000))]
    pub consequences: Option<String>,
}

/// The proposal and what was recorded.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RiskOutcome {
    pub proposal: RiskProposal,
    pub assessment: RiskAssessment,
    pub regulator_notification_required: bool,
    pub subject_notification_required: bool,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegulatorInput {
    /// The authority's case reference.
    #[serde(default)]
    #[schemars(extend("pattern" = steward_domain::values::PROSE_OR_BLANK_PATTERN, "maxLength" = 200))]
    pub reference: Option<String>,
    /// Default: now.
    #[serde(default)]
    pub notified_at: Option<DateTime<Utc>>,
    /// Required when later than the deadline (Art. 33(1)).
    #[serde(default)]
    #[schemars(extend("pattern" = steward_domain::values::PROSE_OR_BLANK_PATTERN, "maxLength" = 10000))]
    pub delay_reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubjectNoticeInput {
    /// What happened, in clear language for the people affected.
    #[schemars(extend("pattern" = steward_domain::values::PROSE_PATTERN, "maxLength" = 5000))]
    pub what_happened: String,
    /// What they can do to protect themselves (default: advice per category).
    #[serde(default)]
    #[schemars(extend("pattern" = steward_domain::values::PROSE_OR_BLANK_PATTERN, "maxLength" = 5000))]
    pub what_to_do: Option<String>,
}

/// What notifying the people did.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SubjectNoticeOutcome {
    /// Notices queued in the sealed outbox now.
    pub queued: u64,
    /// People notified for this incident before.
    pub already_notified: u64,
    /// Affected people erased (or deleted) since: nothing is sent.
    pub no_longer_held: u64,
    /// Held, but without an e-mail address: tell them another way.
    pub without_email: u64,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainmentInput {
    /// revoke_token, revoke_sessions, disable_user, reset_password, reset_mfa
    #[schemars(extend("enum" = ["revoke_token", "revoke_sessions", "disable_user", "reset_password", "reset_mfa"]))]
    pub action: String,
    #[serde(default)]
    pub token: Option<Uuid>,
    /// A username or user id.
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    #[schemars(extend("pattern" = steward_domain::values::PROSE_OR_BLANK_PATTERN, "maxLength" = 2000))]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceInput {
    #[schemars(extend("pattern" = steward_domain::values::PROSE_PATTERN, "maxLength" = 200))]
    pub name: String,
    #[serde(default)]
    #[schemars(extend("pattern" = steward_domain::values::PROSE_OR_BLANK_PATTERN, "maxLength" = 100))]
    pub media_type: Option<String>,
    /// The file, base64 (standard alphabet, padded).
    #[schemars(extend("pattern" = r"^\s*(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\s*$"))]
    pub content_base64: String,
    #[serde(default)]
    #[schemars(extend("pattern" = steward_domain::values::PROSE_OR_BLANK_PATTERN, "maxLength" = 2000))]
    pub description: Option<String>,
}

/// Stored evidence as listed: [`Evidence`] without its content.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct EvidenceMeta {
    pub id: Uuid,
    pub name: String,
    pub media_type: String,
    pub sha256: String,
    pub size: u64,
}

impl From<Evidence> for EvidenceMeta {
    fn from(e: Evidence) -> Self {
        Self {
            id: e.id,
            name: e.name,
            media_type: e.media_type,
            sha256: e.sha256,
            size: e.size,
        }
    }
}

/// Stored evidence with its content.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Evidence {
    pub id: Uuid,
    pub name: String,
    pub media_type: String,
    pub sha256: String,
    pub size: u64,
    pub content_base64: String,
}

/// Standard base64 with padding; the unused bits of the last character
/// need not be zero (what the API description's pattern admits).
const EVIDENCE_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn text_field(field: &str, value: &str, max: usize, required: bool) -> ServiceResult<String> {
    let v = value.trim();
    if required && v.is_empty() {
        return Err(ServiceError::invalid(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(ServiceError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        return Err(ServiceError::invalid(field, "must not contain control characters"));
    }
    Ok(v.to_string())
}

fn opt_text(field: &str, value: Option<&str>, max: usize) -> ServiceResult<Option<String>> {
    value
        .map(|v| text_field(field, v, max, false))
        .transpose()
        .map(|v| v.filter(|s| !s.is_empty()))
}

fn parse_enum<T>(field: &str, value: &str, parse: fn(&str) -> Option<T>, choices: String) -> ServiceResult<T> {
    parse(value).ok_or_else(|| ServiceError::invalid(field, format!("must be one of {choices}")))
}

fn not_future(field: &str, t: DateTime<Utc>) -> ServiceResult<()> {
    if t > now() + Duration::minutes(SKEW_MINUTES) {
        return Err(ServiceError::invalid(field, "must not be in the future"));
    }
    Ok(())
}

fn check_days(regime: BreachRegime, days: Option<u32>) -> ServiceResult<Option<u32>> {
    match (regime, days) {
        (BreachRegime::Gdpr, Some(_)) => Err(ServiceError::invalid(
            "notification_days",
            "applies only to the us_state regime (GDPR's deadline is 72 hours)",
        )),
        (BreachRegime::Gdpr, None) => Ok(None),
        (BreachRegime::UsState, None) => Err(ServiceError::invalid(
            "notification_days",
            "is required for the us_state regime (e.g. 30, 45 or 60)",
        )),
        (BreachRegime::UsState, Some(d)) if d == 0 || d > MAX_NOTIFICATION_DAYS => Err(ServiceError::invalid(
            "notification_days",
            format!("must be between 1 and {MAX_NOTIFICATION_DAYS}"),
        )),
        (BreachRegime::UsState, Some(d)) => Ok(Some(d)),
    }
}

fn check_window(started: Option<DateTime<Utc>>, ended: Option<DateTime<Utc>>) -> ServiceResult<()> {
    if let (Some(s), Some(e)) = (started, ended) {
        if e < s {
            return Err(ServiceError::invalid("ended_at", "must not be before started_at"));
        }
    }
    for (f, t) in [("started_at", started), ("ended_at", ended)] {
        if let Some(t) = t {
            not_future(f, t)?;
        }
    }
    Ok(())
}

/// What kind of access an audit action is.
fn access_class(action: &str) -> &'static str {
    let verb = action.rsplit('.').next().unwrap_or(action);
    match verb {
        "export" => "exported",
        "read" | "list" | "search" | "receipt" | "requester" | "notice" => "read",
        "delete" | "fulfill" => "deleted",
        _ => "written",
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn digest_of(result: &ScopeResult) -> ServiceResult<String> {
    let bytes = serde_json::to_vec(result).map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(hex(&Sha256::digest(bytes)))
}

/// A field name for people: `given_name` → "given name".
fn human(field: &str) -> String {
    match field {
        "email" => "e-mail address".into(),
        "phone" => "telephone number".into(),
        "birth_date" => "date of birth".into(),
        "organization_id" => "employer".into(),
        "notes" | "summary" => "notes about you".into(),
        other => other.replace('_', " "),
    }
}

impl Service {
    fn incident_reader(&self, ctx: &RequestContext) -> ServiceResult<()> {
        if ctx.principal.mfa_pending {
            return Err(ServiceError::Forbidden(
                "a second factor is required first: POST /api/v1/auth/totp/enroll".into(),
            ));
        }
        if self.may_read_audit(ctx) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "role '{}' may not see the breach register",
                ctx.principal.role
            )))
        }
    }

    fn incident_manager(&self, ctx: &RequestContext) -> ServiceResult<()> {
        self.require_privacy_officer(ctx, "breaches")
    }

    /// The privacy officer acting for the compliance purpose (`what` names
    /// the work in the refusal).
    pub(crate) fn require_privacy_officer(&self, ctx: &RequestContext, what: &str) -> ServiceResult<()> {
        if ctx.principal.mfa_pending {
            return Err(ServiceError::Forbidden(
                "a second factor is required first: POST /api/v1/auth/totp/enroll".into(),
            ));
        }
        if !self.may_read_audit(ctx) {
            return Err(ServiceError::Forbidden(format!(
                "role '{}' may not manage {what}",
                ctx.principal.role
            )));
        }
        if let Some(block) = &ctx.personal_data_block {
            return Err(ServiceError::Forbidden(block.clone()));
        }
        if ctx.purpose.as_deref() != Some(COMPLIANCE) {
            return Err(ServiceError::Forbidden(format!(
                "{what} are managed for the compliance purpose (dpo)"
            )));
        }
        Ok(())
    }

    fn seal_incident<T: Serialize>(&self, id: &Uuid, field: &str, value: &T) -> ServiceResult<Vec<u8>> {
        let plain = Zeroizing::new(serde_json::to_vec(value).map_err(|e| ServiceError::Internal(e.to_string()))?);
        self.crypto
            .seal_record(id.as_bytes(), field, &plain)
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    fn open_incident_record<T: for<'de> Deserialize<'de>>(
        &self,
        id: &Uuid,
        field: &str,
        sealed: &[u8],
    ) -> ServiceResult<T> {
        let plain = Zeroizing::new(
            self.crypto
                .open_record(id.as_bytes(), field, sealed)
                .map_err(|e| ServiceError::Internal(format!("an incident record does not open: {e}")))?,
        );
        serde_json::from_slice(&plain)
            .map_err(|e| ServiceError::Internal(format!("an incident record is corrupt: {e}")))
    }

    async fn load_incident(&self, id: Uuid) -> ServiceResult<(IncidentRow, IncidentDoc)> {
        let row = self
            .store
            .get_incident(id)
            .await?
            .ok_or(ServiceError::NotFound("incident"))?;
        let doc = self.open_incident_record(&row.id, DOC_FIELD, &row.sealed)?;
        Ok((row, doc))
    }

    fn clocks(row: &IncidentRow, doc: &IncidentDoc, at: DateTime<Utc>) -> Vec<Clock> {
        let level = doc.risk.as_ref().map(|r| r.level);
        let clock = |audience, law, due: Option<DateTime<Utc>>, required: Option<bool>, done: Option<DateTime<Utc>>| {
            let state = match (due, required) {
                (_, Some(false)) if done.is_none() => "not_required",
                (Some(due), _) => ClockState::at(due, done, at).as_str(),
                (None, _) if done.is_some() => "met",
                (None, _) => "without_undue_delay",
            };
            Clock {
                audience,
                law,
                due_at: due,
                remaining_seconds: due.filter(|_| done.is_none()).map(|d| (d - at).num_seconds()),
                state,
                required,
                done_at: done,
            }
        };
        let due = notification_due(doc.regime, row.aware_at, doc.notification_days);
        match doc.regime {
            BreachRegime::Gdpr => vec![
                clock(
                    "regulator",
                    "GDPR Art. 33(1): within 72 hours of awareness",
                    Some(due),
                    level.map(regulator_notification_required),
                    doc.regulator.as_ref().map(|r| r.notified_at),
                ),
                clock(
                    "subjects",
                    "GDPR Art. 34(1): without undue delay when the risk is high",
                    None,
                    level.map(subject_notification_required),
                    doc.subjects_notified_at,
                ),
            ],
            BreachRegime::UsState => vec![clock(
                "subjects",
                "US state breach law: individuals within the configured number of days",
                Some(due),
                level.map(|l| l != RiskLevel::Low),
                doc.subjects_notified_at,
            )],
        }
    }

    /// The earliest open legal deadline among `clocks` (for the overdue list).
    fn open_deadline(clocks: &[Clock], status: IncidentStatus) -> Option<DateTime<Utc>> {
        if status == IncidentStatus::Closed {
            return None;
        }
        clocks
            .iter()
            .filter(|c| c.done_at.is_none() && c.required != Some(false))
            .filter_map(|c| c.due_at)
            .min()
    }

    fn incident_view(row: &IncidentRow, doc: IncidentDoc) -> IncidentView {
        let at = now();
        let status = IncidentStatus::parse(&row.status).unwrap_or(IncidentStatus::Open);
        let clocks = Self::clocks(row, &doc, at);
        let due_at = Self::open_deadline(&clocks, status);
        IncidentView {
            id: row.id,
            status,
            title: doc.title,
            description: doc.description,
            category: doc.category,
            source: doc.source,
            started_at: doc.started_at,
            ended_at: doc.ended_at,
            aware_at: row.aware_at,
            regime: doc.regime,
            notification_days: doc.notification_days,
            owner: doc.owner,
            created_by: doc.created_by,
            measures: doc.measures,
            consequences: doc.consequences,
            risk: doc.risk,
            regulator_notification: doc.regulator,
            subjects_notified: doc.subjects_notified,
            subjects_notified_at: doc.subjects_notified_at,
            closed_at: doc.closed_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            due_at,
            overdue: due_at.is_some_and(|d| d < at),
            clocks,
        }
    }

    /// `row` as it stores `doc`, with its listing columns.
    fn incident_row(&self, row: &IncidentRow, status: IncidentStatus, doc: &IncidentDoc) -> ServiceResult<IncidentRow> {
        let mut next = row.clone();
        next.status = status.as_str().into();
        next.updated_at = now();
        next.due_at = Self::open_deadline(&Self::clocks(&next, doc, next.updated_at), status);
        next.sealed = self.seal_incident(&next.id, DOC_FIELD, doc)?;
        Ok(next)
    }

    /// The op that stores `doc` (see [`Self::incident_row`]).
    fn put_incident(&self, row: &IncidentRow, status: IncidentStatus, doc: &IncidentDoc) -> ServiceResult<WriteOp> {
        Ok(WriteOp::PutIncident(Box::new(self.incident_row(row, status, doc)?)))
    }

    /// A new timeline entry, sealed.
    fn entry_row(
        &self,
        incident: Uuid,
        kind: &str,
        actor: &str,
        text: String,
        data: Value,
    ) -> ServiceResult<IncidentEntryRow> {
        let id = Uuid::now_v7();
        let body = EntryBody {
            actor: actor.to_string(),
            text,
            data,
        };
        Ok(IncidentEntryRow {
            id,
            incident_id: incident,
            kind: kind.into(),
            at: now(),
            sealed: self.seal_incident(&id, ENTRY_FIELD, &body)?,
        })
    }

    fn entry_op(&self, incident: Uuid, kind: &str, actor: &str, text: String, data: Value) -> ServiceResult<WriteOp> {
        Ok(WriteOp::AppendIncidentEntry(Box::new(
            self.entry_row(incident, kind, actor, text, data)?,
        )))
    }

    async fn entries(&self, incident: Uuid) -> ServiceResult<Vec<(IncidentEntryRow, EntryBody)>> {
        self.store
            .incident_entries(incident)
            .await?
            .into_iter()
            .map(|row| {
                let body = self.open_incident_record(&row.id, ENTRY_FIELD, &row.sealed)?;
                Ok((row, body))
            })
            .collect()
    }

    async fn write_incident(&self, ops: Vec<WriteOp>) -> ServiceResult<()> {
        match self.store.write(ops).await {
            Err(StoreError::MissingReference) => Err(ServiceError::NotFound("incident")),
            other => Ok(other?),
        }
    }

    async fn user_named(&self, field: &str, name: &str) -> ServiceResult<steward_store::UserRow> {
        let found = match name.parse::<Uuid>() {
            Ok(id) => self.store.get_user(UserId::from_uuid(id)).await?,
            Err(_) => self.store.get_user_by_username(name).await?,
        };
        found.ok_or_else(|| ServiceError::invalid(field, "no such user"))
    }

    /// Opens an incident in the register.
    pub async fn open_incident(&self, ctx: &RequestContext, input: IncidentInput) -> ServiceResult<IncidentView> {
        self.guard(ctx, "incident.open", None, async {
            self.incident_manager(ctx)?;
            let title = text_field("title", &input.title, 200, true)?;
            let description = text_field("description", &input.description, 20_000, true)?;
            let category = parse_enum(
                "category",
                &input.category,
                BreachCategory::parse,
                BreachCategory::choices(),
            )?;
            let source = parse_enum("source", &input.source, BreachSource::parse, BreachSource::choices())?;
            let regime = match input.regime.as_deref() {
                None => BreachRegime::Gdpr,
                Some(r) => parse_enum("regime", r, BreachRegime::parse, BreachRegime::choices())?,
            };
            let notification_days = check_days(regime, input.notification_days)?;
            check_window(input.started_at, input.ended_at)?;
            not_future("aware_at", input.aware_at)?;
            if let Some(s) = input.started_at {
                if input.aware_at < s {
                    return Err(ServiceError::invalid("aware_at", "must not be before started_at"));
                }
            }
            let owner = match input.owner.as_deref() {
                None => ctx.principal.username.clone(),
                Some(o) => self.user_named("owner", o).await?.username,
            };
            let doc = IncidentDoc {
                title,
                description,
                category,
                source,
                started_at: input.started_at,
                ended_at: input.ended_at,
                regime,
                notification_days,
                owner,
                created_by: ctx.principal.username.clone(),
                measures: opt_text("measures", input.measures.as_deref(), 20_000)?,
                consequences: None,
                risk: None,
                regulator: None,
                subjects_notified: 0,
                subjects_notified_at: None,
                closed_at: None,
            };
            let t = now();
            let id = Uuid::now_v7();
            let row = IncidentRow {
                id,
                status: IncidentStatus::Open.as_str().into(),
                aware_at: input.aware_at,
                due_at: None,
                created_at: t,
                updated_at: t,
                sealed: Vec::new(),
            };
            let stored = self.incident_row(&row, IncidentStatus::Open, &doc)?;
            let ops = vec![
                WriteOp::PutIncident(Box::new(stored.clone())),
                self.entry_op(
                    id,
                    "opened",
                    &ctx.principal.username,
                    "incident opened".into(),
                    Value::Null,
                )?,
                self.audit_ok(ctx, "incident.open", None, &[id], vec![]),
            ];
            self.write_incident(ops).await?;
            Ok(Self::incident_view(&stored, doc))
        })
        .await
    }

    /// The register, newest first; `overdue` keeps only incidents past an
    /// open legal deadline.
    pub async fn list_incidents(&self, ctx: &RequestContext, overdue: bool) -> ServiceResult<Vec<IncidentView>> {
        self.guard(ctx, "incident.list", None, async {
            self.incident_reader(ctx)?;
            let items = self.incident_register(overdue).await?;
            let ids: Vec<Uuid> = items.iter().map(|i| i.id).collect();
            self.store
                .write(vec![self.audit_ok(ctx, "incident.list", None, &ids, vec![])])
                .await?;
            Ok(items)
        })
        .await
    }

    /// The register for the operator's CLI (trusted through the data dir).
    pub async fn incident_register(&self, overdue: bool) -> ServiceResult<Vec<IncidentView>> {
        let mut out = Vec::new();
        for row in self.store.list_incidents().await? {
            let doc = self.open_incident_record(&row.id, DOC_FIELD, &row.sealed)?;
            let view = Self::incident_view(&row, doc);
            if !overdue || view.overdue {
                out.push(view);
            }
        }
        Ok(out)
    }

    pub async fn get_incident(&self, ctx: &RequestContext, id: Uuid) -> ServiceResult<IncidentView> {
        self.guard(ctx, "incident.read", None, async {
            self.incident_reader(ctx)?;
            let (row, doc) = self.load_incident(id).await?;
            self.store
                .write(vec![self.audit_ok(ctx, "incident.read", None, &[id], vec![])])
                .await?;
            Ok(Self::incident_view(&row, doc))
        })
        .await
    }

    /// Changes an incident's description or moves its status forward.
    pub async fn update_incident(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        change: IncidentChange,
    ) -> ServiceResult<IncidentView> {
        self.guard(ctx, "incident.update", None, async {
            self.incident_manager(ctx)?;
            let (mut row, mut doc) = self.load_incident(id).await?;
            let current = IncidentStatus::parse(&row.status).unwrap_or(IncidentStatus::Open);
            if current == IncidentStatus::Closed {
                return Err(ServiceError::Conflict("the incident is closed".into()));
            }
            let mut changed = Vec::new();
            if let Some(v) = &change.title {
                doc.title = text_field("title", v, 200, true)?;
                changed.push("title");
            }
            if let Some(v) = &change.description {
                doc.description = text_field("description", v, 20_000, true)?;
                changed.push("description");
            }
            if let Some(v) = &change.category {
                doc.category = parse_enum("category", v, BreachCategory::parse, BreachCategory::choices())?;
                changed.push("category");
            }
            if let Some(v) = &change.source {
                doc.source = parse_enum("source", v, BreachSource::parse, BreachSource::choices())?;
                changed.push("source");
            }
            if let Some(v) = change.started_at {
                doc.started_at = Some(v);
                changed.push("started_at");
            }
            if let Some(v) = change.ended_at {
                doc.ended_at = Some(v);
                changed.push("ended_at");
            }
            check_window(doc.started_at, doc.ended_at)?;
            if let Some(v) = change.aware_at {
                not_future("aware_at", v)?;
                row.aware_at = v;
                changed.push("aware_at");
            }
            if let Some(s) = doc.started_at {
                if row.aware_at < s {
                    return Err(ServiceError::invalid("aware_at", "must not be before started_at"));
                }
            }
            if let Some(v) = &change.regime {
                doc.regime = parse_enum("regime", v, BreachRegime::parse, BreachRegime::choices())?;
                changed.push("regime");
            }
            if change.regime.is_some() || change.notification_days.is_some() {
                let days = change
                    .notification_days
                    .or(doc.notification_days.filter(|_| doc.regime == BreachRegime::UsState));
                doc.notification_days = check_days(doc.regime, days)?;
                if change.notification_days.is_some() {
                    changed.push("notification_days");
                }
            }
            if let Some(v) = &change.owner {
                doc.owner = self.user_named("owner", v).await?.username;
                changed.push("owner");
            }
            if let Some(v) = &change.measures {
                doc.measures = opt_text("measures", Some(v), 20_000)?;
                changed.push("measures");
            }
            if let Some(v) = &change.consequences {
                doc.consequences = opt_text("consequences", Some(v), 20_000)?;
                changed.push("consequences");
            }
            let mut status = current;
            if let Some(v) = &change.status {
                let next = parse_enum("status", v, IncidentStatus::parse, IncidentStatus::choices())?;
                if next != current {
                    if !current.can_move_to(next) {
                        return Err(ServiceError::invalid(
                            "status",
                            format!("an incident moves forward only; it is {}", current.as_str()),
                        ));
                    }
                    if next == IncidentStatus::Notified && doc.regulator.is_none() && doc.subjects_notified_at.is_none()
                    {
                        return Err(ServiceError::invalid(
                            "status",
                            "record a notification first (POST …/notify-regulator or …/notify-subjects)",
                        ));
                    }
                    if next == IncidentStatus::Closed {
                        doc.closed_at = Some(now());
                    }
                    status = next;
                    changed.push("status");
                }
            }
            if changed.is_empty() {
                // Nothing to change (the status it already has, or only
                // nulls): the incident as it is, nothing written.
                return Ok(Self::incident_view(&row, doc));
            }
            let text = if status == current {
                format!("changed {}", changed.join(", "))
            } else {
                format!(
                    "status {} → {}; changed {}",
                    current.as_str(),
                    status.as_str(),
                    changed.join(", ")
                )
            };
            let fields = changed.iter().map(|s| (*s).to_string()).collect();
            let put = self.put_incident(&row, status, &doc)?;
            let ops = vec![
                put,
                self.entry_op(id, "updated", &ctx.principal.username, text, Value::Null)?,
                self.audit_ok(ctx, "incident.update", None, &[id], fields),
            ];
            self.write_incident(ops).await?;
            let (row, doc) = self.load_incident(id).await?;
            Ok(Self::incident_view(&row, doc))
        })
        .await
    }

    /// The incident's timeline, oldest first.
    pub async fn incident_timeline(&self, ctx: &RequestContext, id: Uuid) -> ServiceResult<Vec<TimelineItem>> {
        self.guard(ctx, "incident.timeline", None, async {
            self.incident_reader(ctx)?;
            self.load_incident(id).await?;
            let items = self
                .entries(id)
                .await?
                .into_iter()
                .map(|(row, body)| {
                    let data = match row.kind.as_str() {
                        // Big or sensitive bodies are shown by their own endpoints.
                        "scope" => body
                            .data
                            .get("result")
                            .and_then(|r| r.get("totals"))
                            .cloned()
                            .unwrap_or(Value::Null),
                        "evidence" => {
                            let mut d = body.data.clone();
                            if let Some(o) = d.as_object_mut() {
                                o.remove("content_base64");
                            }
                            d
                        }
                        "subjects_notified" => body.data.get("counts").cloned().unwrap_or(Value::Null),
                        _ => body.data,
                    };
                    TimelineItem {
                        id: row.id,
                        kind: row.kind,
                        at: row.at,
                        actor: body.actor,
                        text: body.text,
                        data,
                    }
                })
                .collect();
            self.store
                .write(vec![self.audit_ok(ctx, "incident.timeline", None, &[id], vec![])])
                .await?;
            Ok(items)
        })
        .await
    }

    /// Adds a note to the timeline.
    pub async fn add_incident_note(&self, ctx: &RequestContext, id: Uuid, text: &str) -> ServiceResult<TimelineItem> {
        self.guard(ctx, "incident.note", None, async {
            self.incident_manager(ctx)?;
            let text = text_field("text", text, 10_000, true)?;
            self.load_incident(id).await?;
            let row = self.entry_row(id, "note", &ctx.principal.username, text.clone(), Value::Null)?;
            let (eid, at) = (row.id, row.at);
            let op = WriteOp::AppendIncidentEntry(Box::new(row));
            self.write_incident(vec![op, self.audit_ok(ctx, "incident.note", None, &[id, eid], vec![])])
                .await?;
            Ok(TimelineItem {
                id: eid,
                kind: "note".into(),
                at,
                actor: ctx.principal.username.clone(),
                text,
                data: Value::Null,
            })
        })
        .await
    }

    /// Attaches a file as evidence (sealed like the rest).
    pub async fn add_incident_evidence(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        input: EvidenceInput,
    ) -> ServiceResult<Evidence> {
        self.guard(ctx, "incident.evidence", None, async {
            self.incident_manager(ctx)?;
            let name = text_field("name", &input.name, 200, true)?;
            let media_type = opt_text("media_type", input.media_type.as_deref(), 100)?
                .unwrap_or_else(|| "application/octet-stream".into());
            let description = opt_text("description", input.description.as_deref(), 2_000)?;
            let content = base64::Engine::decode(&EVIDENCE_BASE64, input.content_base64.trim())
                .map_err(|_| ServiceError::invalid("content_base64", "is not base64"))?;
            if content.len() > MAX_EVIDENCE_BYTES {
                return Err(ServiceError::invalid(
                    "content_base64",
                    format!("the file must be at most {} KiB", MAX_EVIDENCE_BYTES / 1024),
                ));
            }
            self.load_incident(id).await?;
            let sha256 = hex(&Sha256::digest(&content));
            let data = serde_json::json!({
                "name": name, "media_type": media_type, "sha256": sha256, "size": content.len(),
                "description": description, "content_base64": input.content_base64.trim(),
            });
            let row = self.entry_row(
                id,
                "evidence",
                &ctx.principal.username,
                format!("evidence attached: {name}"),
                data,
            )?;
            let eid = row.id;
            self.write_incident(vec![
                WriteOp::AppendIncidentEntry(Box::new(row)),
                self.audit_ok(ctx, "incident.evidence", None, &[id, eid], vec![]),
            ])
            .await?;
            Ok(Evidence {
                id: eid,
                name,
                media_type,
                sha256,
                size: content.len() as u64,
                content_base64: input.content_base64.trim().to_string(),
            })
        })
        .await
    }

    pub async fn incident_evidence(&self, ctx: &RequestContext, id: Uuid, evidence: Uuid) -> ServiceResult<Evidence> {
        self.guard(ctx, "incident.evidence.read", None, async {
            self.incident_reader(ctx)?;
            self.load_incident(id).await?;
            let (row, body) = self
                .entries(id)
                .await?
                .into_iter()
                .find(|(r, _)| r.id == evidence && r.kind == "evidence")
                .ok_or(ServiceError::NotFound("evidence"))?;
            let d = &body.data;
            let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            self.store
                .write(vec![self.audit_ok(
                    ctx,
                    "incident.evidence.read",
                    None,
                    &[id, row.id],
                    vec![],
                )])
                .await?;
            Ok(Evidence {
                id: row.id,
                name: s("name"),
                media_type: s("media_type"),
                sha256: s("sha256"),
                size: d.get("size").and_then(Value::as_u64).unwrap_or(0),
                content_base64: s("content_base64"),
            })
        })
        .await
    }

    async fn apply_criteria(&self, doc: &IncidentDoc, c: &ScopeCriteria) -> ServiceResult<AppliedCriteria> {
        if c.user.is_none() && c.token.is_none() && c.session.is_none() && c.client.is_none() {
            return Err(ServiceError::invalid(
                "user",
                "name a compromised user, token, session or client address to scope",
            ));
        }
        let token_id = match (c.token, c.session) {
            (Some(t), Some(s)) if t != s => {
                return Err(ServiceError::invalid(
                    "session",
                    "give a token or a session, not two different ones",
                ))
            }
            (t, s) => t.or(s),
        };
        let (user_id, username) = match c.user.as_deref() {
            None => (None, None),
            Some(u) => {
                let row = self.user_named("user", u).await?;
                (Some(*row.id.as_uuid()), Some(row.username))
            }
        };
        let client = opt_text("client", c.client.as_deref(), 100)?;
        let from = c.from.or(doc.started_at).ok_or_else(|| {
            ServiceError::invalid("from", "give the start of the window (or the incident's started_at)")
        })?;
        let to = c.to.or(doc.ended_at).unwrap_or_else(now);
        if to <= from {
            return Err(ServiceError::invalid("to", "must be after from"));
        }
        not_future("from", from)?;
        if to - from > Duration::days(MAX_WINDOW_DAYS) {
            return Err(ServiceError::invalid(
                "to",
                format!("the window may be at most {MAX_WINDOW_DAYS} days"),
            ));
        }
        Ok(AppliedCriteria {
            user_id,
            username,
            token_id,
            client,
            from,
            to,
        })
    }

    /// Computes a scope from the audit log's first `tree_size` entries.
    async fn compute_scope(&self, criteria: &AppliedCriteria, tree_size: u64) -> ServiceResult<ScopeResult> {
        #[derive(Default)]
        struct Acc {
            actions: BTreeSet<&'static str>,
            fields: BTreeSet<String>,
            purposes: BTreeSet<String>,
            entries: u64,
        }
        let mut subjects: BTreeMap<Uuid, Acc> = BTreeMap::new();
        let mut records: BTreeSet<Uuid> = BTreeSet::new();
        let mut totals = ScopeTotals::default();
        let filter = AuditFilter {
            user: criteria.user_id,
            token: criteria.token_id,
            from: Some(criteria.from),
            to: Some(criteria.to),
            before: Some(tree_size),
            ..AuditFilter::default()
        };
        self.each_audit_record(filter, |r| {
            // Addresses are sealed per month (equal addresses of a month
            // match); older entries may hold them in the clear.
            if criteria.client.is_some()
                && r.client != criteria.client
                && r.client != self.audit_client(criteria.client.as_deref(), r.at)
            {
                return;
            }
            totals.entries += 1;
            if r.outcome != Outcome::Ok {
                totals.denied += 1;
                return;
            }
            let Some(subject) = r.subject_id else { return };
            let acc = subjects.entry(subject).or_default();
            acc.entries += 1;
            acc.actions.insert(access_class(&r.action));
            acc.fields.extend(r.fields);
            if let Some(p) = r.purpose {
                acc.purposes.insert(p);
            }
            records.extend(r.record_ids);
        })
        .await?;
        let category_of = |f: &str| {
            self.inventory
                .record_types
                .values()
                .find_map(|t| t.fields.get(f))
                .map_or_else(|| "other".to_string(), |s| s.category.clone())
        };
        let mut list = Vec::with_capacity(subjects.len());
        for (id, acc) in subjects {
            let categories: BTreeSet<String> = acc.fields.iter().map(|f| category_of(f)).collect();
            for a in &acc.actions {
                *totals.by_action.entry((*a).to_string()).or_default() += 1;
            }
            for f in &acc.fields {
                *totals.by_field.entry(f.clone()).or_default() += 1;
            }
            for c in &categories {
                *totals.by_category.entry(c.clone()).or_default() += 1;
            }
            for p in &acc.purposes {
                *totals.by_purpose.entry(p.clone()).or_default() += 1;
            }
            list.push(SubjectScope {
                subject_id: id,
                actions: acc.actions.iter().map(|a| (*a).to_string()).collect(),
                fields: acc.fields.into_iter().collect(),
                categories: categories.into_iter().collect(),
                purposes: acc.purposes.into_iter().collect(),
                entries: acc.entries,
            });
        }
        totals.subjects = list.len() as u64;
        totals.records = records.len() as u64;
        totals.special_categories = totals
            .by_category
            .keys()
            .filter(|c| self.inventory.categories.get(c.as_str()).is_some_and(|c| c.special))
            .cloned()
            .collect();
        Ok(ScopeResult {
            criteria: criteria.clone(),
            tree_size,
            totals,
            subjects: list,
        })
    }

    /// Scopes the incident from the audit log and stores the snapshot with
    /// the signed tree head it was computed against.
    pub async fn scope_incident(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        criteria: ScopeCriteria,
    ) -> ServiceResult<ScopeSnapshot> {
        self.guard(ctx, "incident.scope", None, async {
            self.incident_manager(ctx)?;
            let (_, doc) = self.load_incident(id).await?;
            let applied = self.apply_criteria(&doc, &criteria).await?;
            let head = self.sign_tree_head().await?;
            let result = self.compute_scope(&applied, head.tree_size).await?;
            let snapshot = ScopeSnapshot {
                id: Uuid::now_v7(),
                computed_at: now(),
                computed_by: ctx.principal.username.clone(),
                public_key: hex(&self.audit_public_key()),
                digest: digest_of(&result)?,
                tree_head: head,
                result,
            };
            let t = &snapshot.result.totals;
            let text = format!(
                "scope computed from the audit log ({} entries): {} people, {} records, {} denied attempts",
                snapshot.tree_head.tree_size, t.subjects, t.records, t.denied
            );
            let data = serde_json::to_value(&snapshot).map_err(|e| ServiceError::Internal(e.to_string()))?;
            let ops = vec![
                self.entry_op(id, "scope", &ctx.principal.username, text, data)?,
                self.audit_ok(ctx, "incident.scope", None, &[id], vec![]),
            ];
            self.write_incident(ops).await?;
            Ok(snapshot)
        })
        .await
    }

    async fn latest_scope(&self, id: Uuid) -> ServiceResult<Option<ScopeSnapshot>> {
        Self::latest_scope_in(&self.entries(id).await?)
    }

    /// The latest scope among opened entries.
    fn latest_scope_in(entries: &[(IncidentEntryRow, EntryBody)]) -> ServiceResult<Option<ScopeSnapshot>> {
        entries
            .iter()
            .rev()
            .find(|(r, _)| r.kind == "scope")
            .map(|(_, body)| {
                ScopeSnapshot::deserialize(&body.data)
                    .map_err(|e| ServiceError::Internal(format!("a stored scope is corrupt: {e}")))
            })
            .transpose()
    }

    /// The latest stored scope.
    pub async fn incident_scope(&self, ctx: &RequestContext, id: Uuid) -> ServiceResult<ScopeSnapshot> {
        self.guard(ctx, "incident.scope.read", None, async {
            self.incident_reader(ctx)?;
            self.load_incident(id).await?;
            let scope = self.latest_scope(id).await?.ok_or(ServiceError::NotFound("scope"))?;
            self.store
                .write(vec![self.audit_ok(
                    ctx,
                    "incident.scope.read",
                    None,
                    &[id, scope.id],
                    vec![],
                )])
                .await?;
            Ok(scope)
        })
        .await
    }

    /// Recomputes the latest scope from the same prefix of the log and
    /// checks it, the head's signature and the log against its heads.
    pub async fn verify_incident_scope(&self, ctx: &RequestContext, id: Uuid) -> ServiceResult<ScopeVerification> {
        self.guard(ctx, "incident.scope.verify", None, async {
            self.incident_reader(ctx)?;
            self.load_incident(id).await?;
            let scope = self.latest_scope(id).await?.ok_or(ServiceError::NotFound("scope"))?;
            let head = &scope.tree_head;
            let signature_valid =
                verify_head(head, &self.audit_public_key()) && hex(&self.audit_public_key()) == scope.public_key;
            let stored = self.store.tree_heads().await?;
            let log_consistent = stored
                .iter()
                .any(|h| h.tree_size == head.tree_size && h.root == head.root)
                && self.root_at_current().await.is_ok();
            let recomputed = self.compute_scope(&scope.result.criteria, head.tree_size).await?;
            let recomputed_digest = digest_of(&recomputed)?;
            let digest_matches = recomputed_digest == scope.digest && digest_of(&scope.result)? == scope.digest;
            self.store
                .write(vec![self.audit_ok(
                    ctx,
                    "incident.scope.verify",
                    None,
                    &[id, scope.id],
                    vec![],
                )])
                .await?;
            Ok(ScopeVerification {
                scope_id: scope.id,
                tree_size: head.tree_size,
                digest: scope.digest.clone(),
                recomputed_digest,
                digest_matches,
                signature_valid,
                log_consistent,
                verified: digest_matches && signature_valid && log_consistent,
            })
        })
        .await
    }

    fn risk_factors(&self, scope: Option<&ScopeSnapshot>, input: &RiskInput) -> ServiceResult<RiskFactors> {
        let special_categories = self
            .inventory
            .categories
            .iter()
            .filter(|(_, c)| c.special)
            .map(|(n, _)| n.clone())
            .collect();
        let unintelligible = !input.keys_exposed.unwrap_or(true);
        if let Some(s) = scope {
            return Ok(RiskFactors {
                subjects: s.result.totals.subjects,
                categories: s.result.totals.by_category.clone(),
                special_categories,
                unintelligible,
            });
        }
        let subjects = input.approximate_subjects.ok_or_else(|| {
            ServiceError::invalid(
                "approximate_subjects",
                "without a scope, estimate how many people are affected",
            )
        })?;
        let mut categories = BTreeMap::new();
        for c in input.categories.iter().flatten() {
            if !self.inventory.categories.contains_key(c) {
                return Err(ServiceError::invalid(
                    "categories",
                    "names a category the inventory does not declare",
                ));
            }
            categories.insert(c.clone(), subjects);
        }
        Ok(RiskFactors {
            subjects,
            categories,
            special_categories,
            unintelligible,
        })
    }

    /// Records the risk assessment: Steward's proposal, confirmed or
    /// overridden (with a reason) by the privacy officer.
    pub async fn assess_incident_risk(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        input: RiskInput,
    ) -> ServiceResult<RiskOutcome> {
        self.guard(ctx, "incident.risk", None, async {
            self.incident_manager(ctx)?;
            let (row, mut doc) = self.load_incident(id).await?;
            let status = IncidentStatus::parse(&row.status).unwrap_or(IncidentStatus::Open);
            if status == IncidentStatus::Closed {
                return Err(ServiceError::Conflict("the incident is closed".into()));
            }
            let scope = self.latest_scope(id).await?;
            let factors = self.risk_factors(scope.as_ref(), &input)?;
            let proposal = propose_risk(&factors);
            let level = match input.level.as_deref() {
                None => proposal.level,
                Some(l) => parse_enum("level", l, RiskLevel::parse, RiskLevel::choices())?,
            };
            let reason = opt_text("reason", input.reason.as_deref(), 5_000)?;
            let overridden = level != proposal.level;
            if overridden && reason.is_none() {
                return Err(ServiceError::invalid(
                    "reason",
                    format!(
                        "give the reason for overriding the proposed level {}",
                        proposal.level.as_str()
                    ),
                ));
            }
            if let Some(c) = opt_text("consequences", input.consequences.as_deref(), 20_000)? {
                doc.consequences = Some(c);
            }
            let assessment = RiskAssessment {
                level,
                proposed: proposal.level,
                likelihood: proposal.likelihood.into(),
                severity: proposal.severity.into(),
                reasons: proposal.reasons.clone(),
                overridden,
                override_reason: reason.filter(|_| overridden),
                keys_exposed: !factors.unintelligible,
                subjects: factors.subjects,
                assessed_at: now(),
                assessed_by: ctx.principal.username.clone(),
            };
            doc.risk = Some(assessment.clone());
            let next = if status == IncidentStatus::Open {
                IncidentStatus::Assessed
            } else {
                status
            };
            let text = if overridden {
                format!(
                    "risk assessed: {} (proposed {})",
                    level.as_str(),
                    proposal.level.as_str()
                )
            } else {
                format!("risk assessed: {}", level.as_str())
            };
            let data = serde_json::to_value(&assessment).map_err(|e| ServiceError::Internal(e.to_string()))?;
            let ops = vec![
                self.put_incident(&row, next, &doc)?,
                self.entry_op(id, "risk", &ctx.principal.username, text, data)?,
                self.audit_ok(ctx, "incident.risk", None, &[id], vec![]),
            ];
            self.write_incident(ops).await?;
            Ok(RiskOutcome {
                regulator_notification_required: regulator_notification_required(level),
                subject_notification_required: subject_notification_required(level),
                proposal,
                assessment,
            })
        })
        .await
    }

    fn measures_taken(entries: &[(IncidentEntryRow, EntryBody)]) -> Vec<String> {
        entries
            .iter()
            .filter(|(r, _)| r.kind == "containment")
            .map(|(r, b)| format!("{} ({})", b.text, r.at.format("%Y-%m-%d %H:%M UTC")))
            .collect()
    }

    async fn regulator_document(&self, id: Uuid) -> ServiceResult<RegulatorNotification> {
        let (row, doc) = self.load_incident(id).await?;
        let entries = self.entries(id).await?;
        let scope = Self::latest_scope_in(&entries)?;
        let data_categories: Vec<CategoryCount> = match &scope {
            Some(s) => s
                .result
                .totals
                .by_category
                .iter()
                .map(|(c, n)| {
                    let cat = self.inventory.categories.get(c.as_str());
                    CategoryCount {
                        category: c.clone(),
                        description: cat.map_or_else(|| c.clone(), |c| c.description.clone()),
                        subjects: *n,
                        special: cat.is_some_and(|c| c.special),
                    }
                })
                .collect(),
            None => Vec::new(),
        };
        let c = &self.inventory.controller;
        let consequences = match &doc.consequences {
            Some(text) => vec![text.clone()],
            None => likely_consequences(&data_categories),
        };
        Ok(RegulatorNotification {
            incident_id: id.to_string(),
            generated_at: now(),
            controller: c.clone(),
            dpo_contact: c
                .dpo_email
                .clone()
                .unwrap_or_else(|| format!("{} <{}>", c.contact, c.email)),
            nature: BreachNature {
                title: doc.title.clone(),
                description: doc.description.clone(),
                category: doc.category,
                source: doc.source,
                started_at: doc.started_at,
                ended_at: doc.ended_at,
                aware_at: row.aware_at,
            },
            subjects_affected: scope.as_ref().map_or_else(
                || doc.risk.as_ref().map_or(0, |r| r.subjects),
                |s| s.result.totals.subjects,
            ),
            records_affected: scope.as_ref().map_or(0, |s| s.result.totals.records),
            data_categories,
            risk_level: doc.risk.as_ref().map(|r| r.level),
            likely_consequences: consequences,
            measures_taken: Self::measures_taken(&entries),
            measures_proposed: doc.measures.clone(),
            deadline: notification_due(BreachRegime::Gdpr, row.aware_at, None),
            notified_at: doc.regulator.as_ref().map(|r| r.notified_at),
            delay_reason: doc.regulator.as_ref().and_then(|r| r.delay_reason.clone()),
            scope_digest: scope.as_ref().map(|s| s.digest.clone()),
            scope_tree_size: scope.as_ref().map(|s| s.tree_head.tree_size),
        })
    }

    /// The Art. 33(3) notification to the supervisory authority.
    pub async fn incident_notification(&self, ctx: &RequestContext, id: Uuid) -> ServiceResult<RegulatorNotification> {
        self.guard(ctx, "incident.notification", None, async {
            self.incident_reader(ctx)?;
            let n = self.regulator_document(id).await?;
            self.store
                .write(vec![self.audit_ok(ctx, "incident.notification", None, &[id], vec![])])
                .await?;
            Ok(n)
        })
        .await
    }

    /// The notification for the operator's CLI.
    pub async fn incident_notification_for_operator(&self, id: Uuid) -> ServiceResult<RegulatorNotification> {
        self.regulator_document(id).await
    }

    /// Records that the supervisory authority was notified (with the
    /// document as sent); a late notification needs the reasons for the delay.
    pub async fn notify_regulator(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        input: RegulatorInput,
    ) -> ServiceResult<IncidentView> {
        self.guard(ctx, "incident.notify_regulator", None, async {
            self.incident_manager(ctx)?;
            let (row, mut doc) = self.load_incident(id).await?;
            let status = IncidentStatus::parse(&row.status).unwrap_or(IncidentStatus::Open);
            if status == IncidentStatus::Closed {
                return Err(ServiceError::Conflict("the incident is closed".into()));
            }
            if doc.regime != BreachRegime::Gdpr {
                return Err(ServiceError::BadRequest(
                    "the regulator notification of GDPR Art. 33 applies to incidents under the gdpr regime".into(),
                ));
            }
            if doc.regulator.is_some() {
                return Err(ServiceError::Conflict(
                    "the supervisory authority was notified already".into(),
                ));
            }
            let notified_at = input.notified_at.unwrap_or_else(now);
            not_future("notified_at", notified_at)?;
            if notified_at < row.aware_at {
                return Err(ServiceError::invalid("notified_at", "must not be before aware_at"));
            }
            let due = notification_due(BreachRegime::Gdpr, row.aware_at, None);
            let delay_reason = opt_text("delay_reason", input.delay_reason.as_deref(), 10_000)?;
            if notified_at > due && delay_reason.is_none() {
                return Err(ServiceError::invalid(
                    "delay_reason",
                    "the notification is later than 72 hours after awareness: give the reasons for the delay \
                     (GDPR Art. 33(1))",
                ));
            }
            doc.regulator = Some(RegulatorRecord {
                notified_at,
                reference: opt_text("reference", input.reference.as_deref(), 200)?,
                delay_reason,
                by: ctx.principal.username.clone(),
            });
            let mut document = self.regulator_document(id).await?;
            document.notified_at = Some(notified_at);
            document.delay_reason = doc.regulator.as_ref().and_then(|r| r.delay_reason.clone());
            let next = if status.can_move_to(IncidentStatus::Notified) {
                IncidentStatus::Notified
            } else {
                status
            };
            let late = if notified_at > due { " (late)" } else { "" };
            let ops = vec![
                self.put_incident(&row, next, &doc)?,
                self.entry_op(
                    id,
                    "regulator_notified",
                    &ctx.principal.username,
                    format!("supervisory authority notified{late}"),
                    document.to_json(),
                )?,
                self.audit_ok(ctx, "incident.notify_regulator", None, &[id], vec![]),
            ];
            self.write_incident(ops).await?;
            let (row, doc) = self.load_incident(id).await?;
            Ok(Self::incident_view(&row, doc))
        })
        .await
    }

    fn subject_notice(
        &self,
        to: String,
        doc: &IncidentDoc,
        scope: &SubjectScope,
        input: &SubjectNoticeInput,
        what_happened: &str,
    ) -> Message {
        let c = &self.inventory.controller;
        let fields: Vec<String> = scope.fields.iter().map(|f| human(f)).collect();
        let data = if fields.is_empty() {
            "a record that you are our contact (no details of it were shown)".to_string()
        } else {
            fields.join(", ")
        };
        let advice = input.what_to_do.clone().unwrap_or_else(|| {
            let mut a = vec!["Be careful with e-mails, calls or messages that claim to come from us or mention this incident; we will never ask for your password.".to_string()];
            if scope.categories.iter().any(|c| c == "identity" || c == "demographic") {
                a.push("Watch for attempts to open accounts or order goods in your name.".into());
            }
            if scope.categories.iter().any(|c| c == "address") {
                a.push("Be wary of unexpected letters or visits that refer to us.".into());
            }
            a.join(" ")
        });
        let when = match (doc.started_at, doc.ended_at) {
            (Some(s), Some(e)) => format!(
                "between {} and {} (UTC)",
                s.format("%Y-%m-%d %H:%M"),
                e.format("%Y-%m-%d %H:%M")
            ),
            (Some(s), None) => format!("from {} (UTC)", s.format("%Y-%m-%d %H:%M")),
            _ => "recently".into(),
        };
        let contact = c.dpo_email.clone().unwrap_or_else(|| c.email.clone());
        Message {
            to,
            subject: format!(
                "Important: a security incident involving your personal data at {}",
                c.name
            ),
            body: format!(
                "We are writing to tell you about a security incident that involves your personal data.\n\n\
                 What happened: {what_happened}\n\
                 When: {when}.\n\n\
                 Your data involved: {data}.\n\n\
                 What we have done: {done}\n\n\
                 What you can do: {advice}\n\n\
                 Questions: write to our data protection contact, {who}, at {contact} or call {phone}. \
                 You also have the right to complain to a data protection authority.\n",
                done = doc
                    .measures
                    .clone()
                    .unwrap_or_else(|| "we stopped the unauthorised access and are investigating.".into()),
                who = c.contact,
                phone = c.phone,
            ),
        }
    }

    /// Queues the Art. 34 notice to every affected person still held (in
    /// the latest scope) not notified for this incident yet, through the
    /// sealed outbox; erased people stay erased and get nothing.
    pub async fn notify_incident_subjects(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        input: SubjectNoticeInput,
    ) -> ServiceResult<SubjectNoticeOutcome> {
        self.guard(ctx, "incident.notify_subjects", None, async {
            self.incident_manager(ctx)?;
            let what_happened = text_field("what_happened", &input.what_happened, 5_000, true)?;
            if let Some(w) = &input.what_to_do {
                text_field("what_to_do", w, 5_000, false)?;
            }
            let (row, opened) = self.load_incident(id).await?;
            let status = IncidentStatus::parse(&row.status).unwrap_or(IncidentStatus::Open);
            if status == IncidentStatus::Closed {
                return Err(ServiceError::Conflict("the incident is closed".into()));
            }
            let entries = self.entries(id).await?;
            let scope = Self::latest_scope_in(&entries)?.ok_or_else(|| {
                ServiceError::Conflict(
                    "scope the incident first (POST …/scope): the notices go to the people in it".into(),
                )
            })?;
            let mut notified: BTreeSet<Uuid> = BTreeSet::new();
            for (r, b) in &entries {
                if r.kind == "subjects_notified" {
                    if let Some(ids) = b.data.get("subject_ids").and_then(Value::as_array) {
                        notified.extend(ids.iter().filter_map(|v| v.as_str()?.parse::<Uuid>().ok()));
                    }
                }
            }
            let mut out = SubjectNoticeOutcome {
                queued: 0,
                already_notified: 0,
                no_longer_held: 0,
                without_email: 0,
            };
            let mut sent: Vec<Uuid> = Vec::new();
            let mut ops = Vec::new();
            for person in &scope.result.subjects {
                if notified.contains(&person.subject_id) {
                    out.already_notified += 1;
                    continue;
                }
                let subject = SubjectId::from_uuid(person.subject_id);
                let Some(contact) = self.store.get_contact(subject).await? else {
                    out.no_longer_held += 1;
                    continue;
                };
                let key = match self.key_of(&contact) {
                    Ok(k) => k,
                    Err(ServiceError::NotFound(_)) => {
                        out.no_longer_held += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let Some(email) = self.open_fields_pub(&contact, &key, "email")? else {
                    out.without_email += 1;
                    continue;
                };
                let message = self.subject_notice(email, &opened, person, &input, &what_happened);
                ops.push(self.queue_mail("incident.notice", &message)?);
                ops.push(self.audit_ok(ctx, "incident.notice", Some(subject), &[id], vec!["email".into()]));
                sent.push(person.subject_id);
                out.queued += 1;
                if ops.len() >= NOTICE_BATCH {
                    // Each batch records whom it notified with its mail, so
                    // a run cut short never notifies them a second time.
                    let batch = std::mem::take(&mut sent);
                    ops.push(self.entry_op(
                        id,
                        "subjects_notified",
                        &ctx.principal.username,
                        format!("{} people notified (GDPR Art. 34), first part", batch.len()),
                        serde_json::json!({ "subject_ids": batch }),
                    )?);
                    self.write_incident(std::mem::take(&mut ops)).await?;
                }
            }
            let (row, mut doc) = self.load_incident(id).await?;
            doc.subjects_notified += out.queued;
            if out.queued > 0 && doc.subjects_notified_at.is_none() {
                doc.subjects_notified_at = Some(now());
            }
            let next = if out.queued > 0 && status.can_move_to(IncidentStatus::Notified) {
                IncidentStatus::Notified
            } else {
                status
            };
            let counts = serde_json::to_value(&out).map_err(|e| ServiceError::Internal(e.to_string()))?;
            let text = format!(
                "{} people notified (GDPR Art. 34); {} no longer held, {} without an e-mail address",
                out.queued, out.no_longer_held, out.without_email
            );
            ops.push(self.put_incident(&row, next, &doc)?);
            ops.push(self.entry_op(
                id,
                "subjects_notified",
                &ctx.principal.username,
                text,
                serde_json::json!({ "subject_ids": sent, "counts": counts }),
            )?);
            ops.push(self.audit_ok(ctx, "incident.notify_subjects", None, &[id], vec![]));
            self.write_incident(ops).await?;
            Ok(out)
        })
        .await
    }

    /// A containment action taken from the incident: revoke a token, sign a
    /// user out everywhere, disable them, or force a new password or second
    /// factor. Recorded on the timeline and in the audit log.
    pub async fn contain_incident(
        &self,
        ctx: &RequestContext,
        id: Uuid,
        input: ContainmentInput,
    ) -> ServiceResult<TimelineItem> {
        self.guard(ctx, "incident.contain", None, async {
            self.incident_manager(ctx)?;
            let note = opt_text("note", input.note.as_deref(), 2_000)?;
            let (row, _) = self.load_incident(id).await?;
            if row.status == IncidentStatus::Closed.as_str() {
                return Err(ServiceError::Conflict("the incident is closed".into()));
            }
            let at = now();
            let user = match input.user.as_deref() {
                Some(u) => Some(self.user_named("user", u).await?),
                None => None,
            };
            let need_user = || {
                user.clone()
                    .ok_or_else(|| ServiceError::invalid("user", "name the user this action applies to"))
            };
            let revoke_all = |u: UserId| WriteOp::RevokeUserTokens { user_id: u, at };
            let (mut ops, target, text) = match input.action.as_str() {
                "revoke_token" => {
                    let t = input
                        .token
                        .ok_or_else(|| ServiceError::invalid("token", "name the token to revoke"))?;
                    (
                        vec![WriteOp::RevokeToken {
                            id: steward_domain::TokenId::from_uuid(t),
                            at,
                        }],
                        t,
                        format!("token {t} revoked"),
                    )
                }
                "revoke_sessions" => {
                    let u = need_user()?;
                    (vec![revoke_all(u.id)], *u.id.as_uuid(), format!("every token and session of {} revoked", u.username))
                }
                "disable_user" => {
                    let u = need_user()?;
                    (
                        vec![
                            WriteOp::UpdateUser {
                                id: u.id,
                                role: None,
                                disabled: Some(true),
                                password_hash: None,
                            },
                            revoke_all(u.id),
                        ],
                        *u.id.as_uuid(),
                        format!("user {} disabled and signed out everywhere", u.username),
                    )
                }
                "reset_password" => {
                    let u = need_user()?;
                    let mut random = [0u8; 32];
                    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut random);
                    let unusable = Zeroizing::new(hex(&random));
                    let hash = self.hash_password(unusable).await?;
                    (
                        vec![
                            WriteOp::UpdateUser {
                                id: u.id,
                                role: None,
                                disabled: None,
                                password_hash: Some(hash),
                            },
                            revoke_all(u.id),
                        ],
                        *u.id.as_uuid(),
                        format!(
                            "password of {} replaced by an unknown one and signed out everywhere (an admin sets a new one)",
                            u.username
                        ),
                    )
                }
                "reset_mfa" => {
                    let u = need_user()?;
                    (
                        vec![WriteOp::DeleteCredentials { user_id: u.id }, revoke_all(u.id)],
                        *u.id.as_uuid(),
                        format!("second factor of {} removed (enrol again) and signed out everywhere", u.username),
                    )
                }
                _ => {
                    return Err(ServiceError::invalid(
                        "action",
                        "must be one of revoke_token, revoke_sessions, disable_user, reset_password or reset_mfa",
                    ))
                }
            };
            let text = match note {
                Some(n) => format!("{text}: {n}"),
                None => text,
            };
            let data = serde_json::json!({ "action": input.action, "target": target });
            let entry = self.entry_row(id, "containment", &ctx.principal.username, text.clone(), data.clone())?;
            let eid = entry.id;
            let entry = WriteOp::AppendIncidentEntry(Box::new(entry));
            let mut audit = self.ok_record(ctx, "incident.contain", None, &[id, target], vec![]);
            audit.reason = Some(input.action.clone());
            ops.push(entry);
            ops.push(WriteOp::AppendAudit(Box::new(audit)));
            match self.store.write(ops).await {
                Err(StoreError::NotFound) => return Err(ServiceError::NotFound("token")),
                other => other?,
            }
            self.auth.forget_tokens();
            Ok(TimelineItem {
                id: eid,
                kind: "containment".into(),
                at,
                actor: ctx.principal.username.clone(),
                text,
                data,
            })
        })
        .await
    }
}
