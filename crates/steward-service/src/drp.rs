//! The Data Rights Protocol 1.0 (Consumer Reports' DRP): authorised agents
//! submit CCPA requests on behalf of consumers.
//!
//! This module owns the protocol's rules: the registry of agents the
//! privacy officer approved (the local copy of the network's service
//! directory), the pair-wise bearer tokens (§2.05), the validation of
//! signed messages in the order of §3.07 (signature by the agent's
//! registered key, `agent-id`, `business-id`, `issued-at`, `expires-at`,
//! and — beyond the spec — each message accepted once), and the mapping of
//! DRP actions and statuses onto Steward's own data-subject requests
//! (`dsr.rs`), whose lifecycle, deadlines and fulfilment they use unchanged.
//!
//! Nothing personal leaves through errors or logs: a refusal names the
//! claim at fault, never its value. The consumer's address is kept only as
//! every request keeps it (keyed identifier hash; sealed when no contact
//! holds it); name, phone and postal address claims are not kept.

use base64::Engine as _;
use chrono::{DateTime, Duration, NaiveDateTime, SubsecRound as _, Utc};
use serde_json::{Map, Value};
use sha2::Digest as _;
use steward_audit::{Actor, ActorKind, AuditRecord, Outcome};
use steward_domain::deadlines::Regime;
use steward_domain::inventory::COMPLIANCE;
use steward_store::{DrpAgentRow, DrpRequestRow, DsrRow, StoreError, WriteOp};

use crate::auth::system_entry;
use crate::context::RequestContext;
use crate::dsr::{is_closed, new_request};
use crate::error::{ServiceError, ServiceResult};
use crate::Service;

/// The protocol version Steward speaks (1.0 is 0.9.4 declared stable; the
/// messages are the same, so both are accepted).
pub const DRP_VERSION: &str = "1.0";
const ACCEPTED_VERSIONS: [&str; 2] = ["1.0", "0.9.4"];

/// What [`ServiceError::NotFound`] names while DRP is off (no
/// `drp_business_id`).
pub const DRP_OFF: &str = "Data Rights Protocol endpoint";

/// The rights actions Steward carries out (§3.01), as advertised.
pub const SUPPORTED_ACTIONS: [&str; 5] = [
    "access",
    "access:categories",
    "access:specific",
    "deletion",
    "sale:opt_out",
];

/// The identity claims a request must carry for Steward to find the
/// consumer (§3.05.2 `supported_verifications`).
pub const SUPPORTED_VERIFICATIONS: [&str; 1] = ["email"];

/// How far ahead of our clock `issued-at` may be (clock skew).
const SKEW_SECONDS: i64 = 60;
/// The longest validity window accepted: the spec recommends ten minutes;
/// accepted digests are kept until `expires-at`, so the window is bounded.
const MAX_WINDOW_HOURS: i64 = 24;
/// What bearer tokens are hashed under (see `Crypto::labelled_hash`).
const TOKEN_LABEL: &str = "drp-token";
/// What an agent's own request reference is sealed as.
const AGENT_REQUEST_ID: &str = "drp.agent_request_id";
/// The identity attestations recorded (names only).
const ATTESTATIONS: [&str; 3] = ["email_verified", "phone_number_verified", "address_verified"];

/// The Steward request kind a DRP action maps to; `None`: not supported.
/// `sale:opt-out` is accepted too: the spec's §2.01 example spells it so,
/// while §3.01 and the directory schema say `sale:opt_out`.
#[must_use]
pub fn request_kind(action: &str) -> Option<&'static str> {
    match action {
        "access" | "access:categories" | "access:specific" => Some("access"),
        "deletion" => Some("erasure"),
        "sale:opt_out" | "sale:opt-out" => Some("opt_out_of_sale"),
        _ => None,
    }
}

/// An agent as shown to the privacy officer (no secret inside).
#[derive(Debug, Clone)]
pub struct AgentView {
    pub id: String,
    pub name: String,
    /// Base64, as in the directory.
    pub verify_key: String,
    pub paired: bool,
    pub token_issued_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<DrpAgentRow> for AgentView {
    fn from(a: DrpAgentRow) -> Self {
        Self {
            verify_key: base64::engine::general_purpose::STANDARD.encode(&a.verify_key),
            paired: a.token_hash.is_some(),
            id: a.id,
            name: a.name,
            token_issued_at: a.token_issued_at,
            created_at: a.created_at,
        }
    }
}

/// The Exercise Status object (§3.03).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExerciseStatus {
    pub request_id: uuid::Uuid,
    pub agent_request_id: Option<String>,
    /// `in_progress`, `fulfilled`, `revoked` or `denied` (§3.02).
    pub status: &'static str,
    pub reason: Option<&'static str>,
    pub received_at: DateTime<Utc>,
    /// While the request is open: its legal deadline.
    pub expected_by: Option<DateTime<Utc>>,
    pub processing_details: Option<String>,
}

/// What the discovery document says about this business.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub business_id: String,
    pub name: String,
    pub privacy_policy_url: String,
}

/// A verified signed message: its claims and the digest it is accepted under.
struct Signed {
    claims: Map<String, Value>,
    digest: Vec<u8>,
    expires_at: DateTime<Utc>,
}

fn refused(message: impl Into<String>) -> ServiceError {
    ServiceError::Forbidden(message.into())
}

fn bad(message: impl Into<String>) -> ServiceError {
    ServiceError::BadRequest(message.into())
}

/// The audit actor of an agent: named by its directory id (an
/// organisation, never a consumer).
fn agent_actor(agent_id: &str) -> Actor {
    Actor {
        kind: ActorKind::Anonymous,
        user_id: None,
        token_id: None,
        username: Some(format!("drp-agent:{agent_id}")),
        role: Some("drp_agent".into()),
    }
}

/// Whether `id` is usable as an agent id: 1 to 64 ASCII letters, digits,
/// `_`, `-` or `.` (the directory's ids match `[A-Z_]+`).
fn valid_agent_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Decodes base64 in the standard alphabet (padded or not) or URL-safe.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let t = text.trim();
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(t).ok())
}

/// An ISO 8601 timestamp: RFC 3339, or a date-time without offset (as
/// Python's `isoformat()` writes it), taken as UTC.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|n| n.and_utc())
}

fn claim_str<'a>(claims: &'a Map<String, Value>, name: &str) -> ServiceResult<&'a str> {
    match claims.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim()),
        Some(_) => Err(bad(format!("the claim '{name}' must be a non-empty string"))),
        None => Err(bad(format!("the signed message has no '{name}' claim"))),
    }
}

/// Opens a libsodium combined-mode signed message (signature ‖ message,
/// base64) with `verify_key`: `None` unless it decodes and verifies.
fn open_signed(body: &[u8], verify_key: &[u8]) -> Option<(Vec<u8>, Map<String, Value>)> {
    let text = std::str::from_utf8(body).ok()?;
    let raw = decode_base64(text)?;
    if raw.len() < 64 {
        return None;
    }
    let (signature, message) = raw.split_at(64);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, verify_key)
        .verify(message, signature)
        .ok()?;
    match serde_json::from_slice::<Value>(message).ok()? {
        Value::Object(claims) => Some((message.to_vec(), claims)),
        _ => None,
    }
}

impl Service {
    /// This business's DRP id, or 404 when DRP is off (no `drp_business_id`).
    async fn drp_business_id(&self) -> ServiceResult<String> {
        self.settings()
            .await?
            .drp_business_id
            .ok_or(ServiceError::NotFound(DRP_OFF))
    }

    /// The discovery document's facts; `None` when DRP is off.
    pub async fn drp_discovery(&self) -> ServiceResult<Option<Discovery>> {
        let Some(business_id) = self.settings().await?.drp_business_id else {
            return Ok(None);
        };
        Ok(Some(Discovery {
            business_id,
            name: self.inventory.controller.name.clone(),
            privacy_policy_url: self.inventory.controller.policy_url.clone(),
        }))
    }

    /// Validates a signed message from `agent` in the order of §3.07:
    /// signature by the agent's registered key, `agent-id`, `business-id`,
    /// `issued-at` (not ahead of our clock by more than a minute),
    /// `expires-at` (not passed; at most a day after `issued-at`), and
    /// `drp.version` when `need_version`.
    fn check_signed(
        &self,
        agent: &DrpAgentRow,
        business_id: &str,
        body: &[u8],
        need_version: bool,
    ) -> ServiceResult<Signed> {
        let (message, claims) = open_signed(body, &agent.verify_key).ok_or_else(|| {
            refused("the message is not a base64 Ed25519 combined-mode signed JSON object verifying with the agent's registered key")
        })?;
        if claim_str(&claims, "agent-id")? != agent.id {
            return Err(refused(
                "the agent-id claim does not name the agent that signed the message",
            ));
        }
        if claim_str(&claims, "business-id")? != business_id {
            return Err(bad("the business-id claim names another business"));
        }
        let issued_at = parse_time(claim_str(&claims, "issued-at")?)
            .ok_or_else(|| bad("the issued-at claim is not an ISO 8601 timestamp"))?;
        let expires_at = parse_time(claim_str(&claims, "expires-at")?)
            .ok_or_else(|| bad("the expires-at claim is not an ISO 8601 timestamp"))?;
        let now = Utc::now();
        if issued_at > now + Duration::seconds(SKEW_SECONDS) {
            return Err(bad(
                "the request was issued in the future (issued-at); check the agent's clock",
            ));
        }
        if expires_at <= now {
            return Err(bad("the request has expired (expires-at)"));
        }
        if expires_at <= issued_at || expires_at - issued_at > Duration::hours(MAX_WINDOW_HOURS) {
            return Err(bad(
                "expires-at must follow issued-at by at most 24 hours (the protocol recommends 10 minutes)",
            ));
        }
        if need_version {
            let version = claim_str(&claims, "drp.version")?;
            if !ACCEPTED_VERSIONS.contains(&version) {
                return Err(bad(format!(
                    "drp.version must be one of {}",
                    ACCEPTED_VERSIONS.join(", ")
                )));
            }
        }
        Ok(Signed {
            claims,
            digest: sha2::Sha256::digest(&message).to_vec(),
            expires_at,
        })
    }

    /// The agent holding a pair-wise bearer token.
    async fn agent_by_token(&self, token: &str) -> ServiceResult<DrpAgentRow> {
        let hash = self.crypto.labelled_hash(TOKEN_LABEL, token.trim().as_bytes());
        self.store
            .drp_agent_by_token(&hash)
            .await?
            .ok_or_else(|| refused("unknown or replaced bearer token; pair again with POST /v1/agent/{agent-id}"))
    }

    /// The writes that accept a signed message once; a replay fails the
    /// batch with `Duplicate`, answered by [`replay_error`].
    fn accept_once(signed: &Signed) -> [WriteOp; 2] {
        [
            WriteOp::PurgeDrpNonces { before: Utc::now() },
            WriteOp::InsertDrpNonce {
                digest: signed.digest.clone(),
                expires_at: signed.expires_at,
            },
        ]
    }

    fn agent_record(&self, agent_id: &str, action: &str, client: Option<&str>) -> AuditRecord {
        let mut r = AuditRecord::new(Utc::now(), agent_actor(agent_id), action, Outcome::Ok);
        r.client = self.audit_client(client, r.at);
        r
    }

    /// `POST /v1/agent/{agent-id}` (§2.05): a registered agent proves its
    /// key with a signed message and gets a new pair-wise bearer token
    /// (replacing any earlier one). Rate limited like the public endpoints.
    pub async fn drp_pair(&self, agent_id: &str, body: &[u8], client: Option<String>) -> ServiceResult<String> {
        self.public.check(client.as_deref())?;
        let business_id = self.drp_business_id().await?;
        let mut agent = self
            .store
            .get_drp_agent(agent_id)
            .await?
            .ok_or_else(|| refused("no agent with this id is registered"))?;
        let signed = self.check_signed(&agent, &business_id, body, true)?;
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, secret.as_mut());
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret.as_ref());
        agent.token_hash = Some(self.crypto.labelled_hash(TOKEN_LABEL, token.as_bytes()));
        agent.token_issued_at = Some(Utc::now());
        let audit = self.agent_record(&agent.id, "drp.agent.pair", client.as_deref());
        let mut ops = Self::accept_once(&signed).to_vec();
        ops.push(WriteOp::PutDrpAgent(Box::new(agent)));
        ops.push(WriteOp::AppendAudit(Box::new(audit)));
        self.store.write(ops).await.map_err(replay_error)?;
        Ok(token)
    }

    /// `GET /v1/agent/{agent-id}` (§2.06): whether the token is this agent's.
    pub async fn drp_agent_info(&self, agent_id: &str, token: &str) -> ServiceResult<()> {
        self.drp_business_id().await?;
        let agent = self.agent_by_token(token).await?;
        if agent.id != agent_id {
            return Err(refused("the bearer token belongs to another agent"));
        }
        Ok(())
    }

    /// `POST /v1/data-rights-request` (§2.01): records the agent's request
    /// as a CCPA data-subject request (received now, with the CCPA
    /// deadline), to be verified and carried out by the privacy officer.
    pub async fn drp_exercise(
        &self,
        token: &str,
        body: &[u8],
        client: Option<String>,
    ) -> ServiceResult<ExerciseStatus> {
        let business_id = self.drp_business_id().await?;
        let agent = self.agent_by_token(token).await?;
        let signed = self.check_signed(&agent, &business_id, body, true)?;
        let claims = &signed.claims;
        let action = claim_str(claims, "exercise")?;
        let Some(kind) = request_kind(action) else {
            return Err(bad(format!(
                "unsupported rights action; this business supports {}",
                SUPPORTED_ACTIONS.join(", ")
            )));
        };
        // CCPA, or voluntary (no regime): handled on CCPA's terms.
        match claims.get("regime") {
            None | Some(Value::Null) => {}
            Some(Value::String(r)) if r.eq_ignore_ascii_case("ccpa") => {}
            Some(_) => return Err(bad("unsupported regime; this business handles DRP requests under ccpa")),
        }
        let agent_request_id = match claims.get("agent-request-id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= 200 => Some(s.clone()),
            Some(_) => {
                return Err(bad(
                    "the agent-request-id claim must be a string of 1 to 200 characters",
                ))
            }
        };
        let email = match claims.get("email") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(bad("the email claim must be a string")),
            None => {
                return Err(bad(
                    "this business finds consumers by e-mail address: the request needs the email claim",
                ))
            }
        };
        let normal = steward_domain::records::normalise_contact_field(&self.inventory, "email", &Value::String(email))
            .map_err(|_| bad("the email claim is not a valid e-mail address"))?;
        let attested: Vec<String> = ATTESTATIONS
            .iter()
            .filter(|a| claims.get(**a) == Some(&Value::Bool(true)))
            .map(|a| (*a).to_string())
            .collect();
        let row = self.contact_by_email(&normal).await?;
        let id = uuid::Uuid::now_v7();
        // As stored (microseconds), so the answer matches later reads.
        let t = Utc::now().trunc_subsecs(6);
        let mut dsr = new_request(id, kind, Regime::Ccpa, t.fixed_offset(), t);
        dsr.subject_id = row.as_ref().map(|r| r.subject_id);
        dsr.identifier_hash = Some(self.identifier_hash(&normal));
        if row.is_none() {
            dsr.details = Some(self.seal_requester(id, &normal)?);
        }
        let sealed_reference = agent_request_id
            .as_deref()
            .map(|r| {
                self.crypto
                    .seal_note(id.as_bytes(), AGENT_REQUEST_ID, r)
                    .map_err(|e| ServiceError::Internal(e.to_string()))
            })
            .transpose()?;
        let link = DrpRequestRow {
            dsr_id: id,
            agent_id: agent.id.clone(),
            exercise: action.to_string(),
            agent_request_id: sealed_reference,
            attested: attested.clone(),
            created_at: t,
        };
        // Claim names only, never values.
        let mut named: Vec<String> = ["name", "email", "phone_number", "address"]
            .iter()
            .filter(|c| claims.contains_key(**c))
            .map(|c| (*c).to_string())
            .collect();
        named.extend(attested);
        let mut received = self.agent_record(&agent.id, &format!("dsr.{kind}.received"), client.as_deref());
        let mut exercised = self.agent_record(&agent.id, "drp.exercise", client.as_deref());
        for r in [&mut received, &mut exercised] {
            r.subject_id = dsr.subject_id.map(|s| *s.as_uuid());
            r.record_ids = vec![id];
        }
        exercised.fields = named;
        let mut ops = Self::accept_once(&signed).to_vec();
        ops.extend([
            self.put_dsr(&dsr)?,
            WriteOp::InsertDrpRequest(Box::new(link)),
            WriteOp::AppendAudit(Box::new(received)),
            WriteOp::AppendAudit(Box::new(exercised)),
        ]);
        self.store.write(ops).await.map_err(replay_error)?;
        Ok(exercise_status(&dsr, agent_request_id))
    }

    /// The request `id` as managed by the token's agent: 404 when unknown,
    /// 403 when another agent manages it (§2.02.1).
    async fn agents_request(&self, token: &str, id: uuid::Uuid) -> ServiceResult<(DrpAgentRow, DrpRequestRow, DsrRow)> {
        self.drp_business_id().await?;
        let agent = self.agent_by_token(token).await?;
        let link = self
            .store
            .get_drp_request(id)
            .await?
            .ok_or(ServiceError::NotFound("data rights request"))?;
        if link.agent_id != agent.id {
            return Err(refused("another agent manages this request"));
        }
        let dsr = self.dsr_row(id).await.map_err(|e| match e {
            ServiceError::NotFound(_) => ServiceError::Gone("the request is no longer kept".into()),
            other => other,
        })?;
        Ok((agent, link, dsr))
    }

    fn agent_reference(&self, link: &DrpRequestRow) -> Option<String> {
        link.agent_request_id
            .as_deref()
            .and_then(|s| self.crypto.open_note(link.dsr_id.as_bytes(), AGENT_REQUEST_ID, s).ok())
    }

    /// `GET /v1/data-rights-request/{request_id}` (§2.02): the request's
    /// real state. The read is audited.
    pub async fn drp_status(
        &self,
        token: &str,
        id: uuid::Uuid,
        client: Option<String>,
    ) -> ServiceResult<ExerciseStatus> {
        let (agent, link, dsr) = self.agents_request(token, id).await?;
        let mut audit = self.agent_record(&agent.id, "drp.status", client.as_deref());
        audit.subject_id = dsr.subject_id.map(|s| *s.as_uuid());
        audit.record_ids = vec![id];
        self.audit_reads(vec![audit]).await?;
        Ok(exercise_status(&dsr, self.agent_reference(&link)))
    }

    /// `DELETE /v1/data-rights-request/{request_id}` (§2.04): the consumer
    /// withdraws an open request; its DSR is closed as `withdrawn`.
    pub async fn drp_revoke(
        &self,
        token: &str,
        id: uuid::Uuid,
        body: &[u8],
        client: Option<String>,
    ) -> ServiceResult<ExerciseStatus> {
        let business_id = self.drp_business_id().await?;
        let (agent, link, mut dsr) = self.agents_request(token, id).await?;
        let signed = self.check_signed(&agent, &business_id, body, false)?;
        let reason = match signed.claims.get("reason") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.chars().count() <= 1000 => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Some(_) => return Err(bad("the reason claim must be a string of at most 1000 characters")),
        };
        if is_closed(&dsr.status) {
            let now = exercise_status(&dsr, None).status;
            return Err(ServiceError::Conflict(format!(
                "the request is already {now}; only an open request can be revoked"
            )));
        }
        let t = Utc::now().trunc_subsecs(6);
        dsr.status = "withdrawn".into();
        dsr.completed_at = Some(t);
        dsr.updated_at = t;
        dsr.outcome = Some(match reason {
            Some(r) => format!("withdrawn by the consumer through their authorised agent: {r}"),
            None => "withdrawn by the consumer through their authorised agent".into(),
        });
        let mut withdrawn = self.agent_record(&agent.id, "dsr.withdraw", client.as_deref());
        let mut revoked = self.agent_record(&agent.id, "drp.revoke", client.as_deref());
        for r in [&mut withdrawn, &mut revoked] {
            r.subject_id = dsr.subject_id.map(|s| *s.as_uuid());
            r.record_ids = vec![id];
        }
        let mut ops = Self::accept_once(&signed).to_vec();
        ops.extend([
            self.put_dsr(&dsr)?,
            WriteOp::AppendAudit(Box::new(withdrawn)),
            WriteOp::AppendAudit(Box::new(revoked)),
        ]);
        self.store.write(ops).await.map_err(replay_error)?;
        Ok(exercise_status(&dsr, self.agent_reference(&link)))
    }
}

/// A replayed message fails its batch with `Duplicate`.
fn replay_error(e: StoreError) -> ServiceError {
    match e {
        StoreError::Duplicate => ServiceError::Conflict("this signed message was already received (replay)".into()),
        other => other.into(),
    }
}

/// A DSR's state as a DRP status (§3.02). Steward is the covered business
/// itself, so a request is `in_progress` from receipt (§3.03 note 1):
/// receipt is acknowledged and the legal clock runs at once.
fn exercise_status(d: &DsrRow, agent_request_id: Option<String>) -> ExerciseStatus {
    let open = !is_closed(&d.status);
    let extended = (d.extensions > 0).then(|| {
        format!(
            "; the deadline was extended as the CCPA allows: {}",
            d.extension_reason.as_deref().unwrap_or("more time is needed")
        )
    });
    let no_data = d.subject_id.is_none() || d.outcome.as_deref().is_some_and(|o| o.starts_with("no personal data"));
    let (status, reason, details) = match d.status.as_str() {
        "received" => (
            "in_progress",
            None,
            format!(
                "received; the consumer's identity is being verified before the request is carried out{}",
                extended.unwrap_or_default()
            ),
        ),
        "in_progress" => (
            "in_progress",
            None,
            format!(
                "identity verified; the request is being carried out{}",
                extended.unwrap_or_default()
            ),
        ),
        "completed" if no_data => (
            "fulfilled",
            None,
            "no personal information about the consumer is held".to_string(),
        ),
        "completed" => (
            "fulfilled",
            None,
            match d.kind.as_str() {
                "access" => "the personal information held was compiled; the consumer was e-mailed a code to download it".into(),
                "erasure" if d.outcome.as_deref().is_some_and(|o| o.starts_with("erasure narrowed")) => {
                    "the personal information was deleted, except records the law obliges us to keep, whose processing is restricted".into()
                }
                "erasure" => "the consumer's personal information was deleted".into(),
                "opt_out_of_sale" => "the consumer is opted out of the sale and sharing of personal information".into(),
                _ => "the request was carried out".to_string(),
            },
        ),
        "withdrawn" => ("revoked", None, "revoked at the consumer's request".to_string()),
        // Refused: the privacy officer's stated reason is for the consumer.
        _ => (
            "denied",
            Some("other"),
            d.outcome.clone().unwrap_or_else(|| "the request was refused".into()),
        ),
    };
    ExerciseStatus {
        request_id: d.id,
        agent_request_id,
        status,
        reason,
        received_at: d.received_at,
        expected_by: open.then_some(d.due_at),
        processing_details: Some(details),
    }
}

/// Agent registration: the privacy officer (compliance purpose) through
/// the API, or the operator through the CLI (audited as Steward itself).
impl Service {
    fn require_dpo(&self, ctx: &RequestContext) -> ServiceResult<()> {
        if self.require_purpose(ctx)? != COMPLIANCE {
            return Err(ServiceError::Forbidden(
                "authorised agents are registered by the privacy officer (compliance purpose)".into(),
            ));
        }
        Ok(())
    }

    fn new_agent(id: &str, name: &str, verify_key: &str) -> ServiceResult<DrpAgentRow> {
        let mut errors = Vec::new();
        if !valid_agent_id(id) {
            errors.push(steward_domain::FieldError::new(
                "id",
                "must be 1 to 64 letters, digits, '_', '-' or '.' (the agent's id in the network's directory)",
            ));
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            errors.push(steward_domain::FieldError::new("name", "must be 1 to 200 characters"));
        }
        let key = decode_base64(verify_key).filter(|k| k.len() == 32);
        if key.is_none() {
            errors.push(steward_domain::FieldError::new(
                "verify_key",
                "must be the agent's Ed25519 public key (32 bytes), base64",
            ));
        }
        match key {
            Some(verify_key) if errors.is_empty() => Ok(DrpAgentRow {
                id: id.to_string(),
                name: name.to_string(),
                verify_key,
                token_hash: None,
                token_issued_at: None,
                created_by: None,
                created_at: Utc::now(),
            }),
            _ => Err(ServiceError::Invalid(errors)),
        }
    }

    async fn put_new_agent(&self, agent: DrpAgentRow, audit: WriteOp) -> ServiceResult<AgentView> {
        if self.store.get_drp_agent(&agent.id).await?.is_some() {
            return Err(ServiceError::Conflict(
                "an agent with this id is registered; remove it first to change its key".into(),
            ));
        }
        self.store
            .write(vec![WriteOp::PutDrpAgent(Box::new(agent.clone())), audit])
            .await?;
        Ok(agent.into())
    }

    /// Registers (approves) an authorised agent: only registered agents'
    /// signatures are accepted.
    pub async fn add_drp_agent(
        &self,
        ctx: &RequestContext,
        id: &str,
        name: &str,
        verify_key: &str,
    ) -> ServiceResult<AgentView> {
        self.guard(ctx, "drp.agent.add", None, async {
            self.require_dpo(ctx)?;
            let mut agent = Self::new_agent(id, name, verify_key)?;
            agent.created_by = Some(ctx.principal.user_id);
            let mut audit = self.ok_record(ctx, "drp.agent.add", None, &[], vec![]);
            audit.reason = Some(format!("agent {}", agent.id));
            self.put_new_agent(agent, WriteOp::AppendAudit(Box::new(audit))).await
        })
        .await
    }

    /// [`Service::add_drp_agent`] by the operator (CLI).
    pub async fn add_drp_agent_as_operator(&self, id: &str, name: &str, verify_key: &str) -> ServiceResult<AgentView> {
        let agent = Self::new_agent(id, name, verify_key)?;
        let audit = system_entry("drp.agent.add", &[], Some(format!("agent {}", agent.id)));
        self.put_new_agent(agent, audit).await
    }

    pub async fn list_drp_agents(&self, ctx: Option<&RequestContext>) -> ServiceResult<Vec<AgentView>> {
        if let Some(ctx) = ctx {
            self.require_dpo(ctx)?;
        }
        Ok(self
            .store
            .list_drp_agents()
            .await?
            .into_iter()
            .map(AgentView::from)
            .collect())
    }

    /// Removes an agent: its token stops working at once; its requests
    /// stay with the privacy officer.
    pub async fn remove_drp_agent(&self, ctx: Option<&RequestContext>, id: &str) -> ServiceResult<()> {
        let audit = match ctx {
            Some(ctx) => {
                self.require_dpo(ctx)?;
                let mut r = self.ok_record(ctx, "drp.agent.remove", None, &[], vec![]);
                r.reason = Some(format!("agent {id}"));
                WriteOp::AppendAudit(Box::new(r))
            }
            None => system_entry("drp.agent.remove", &[], Some(format!("agent {id}"))),
        };
        if !valid_agent_id(id) {
            return Err(ServiceError::NotFound("agent"));
        }
        self.store
            .write(vec![WriteOp::DeleteDrpAgent { id: id.to_string() }, audit])
            .await
            .map_err(|e| match e {
                StoreError::NotFound => ServiceError::NotFound("agent"),
                other => other.into(),
            })
    }
}

/// What the privacy officer sees of an agent's request, beside its DSR.
#[derive(Debug, Clone)]
pub struct AgentRequestView {
    pub request_id: uuid::Uuid,
    pub agent_id: String,
    pub exercise: String,
    pub agent_request_id: Option<String>,
    /// The identity claims the agent attested as verified, by name.
    pub attested: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl Service {
    /// Which agent filed request `id`, what it asked and what it attested
    /// (privacy officer); 404 for a request no agent filed.
    pub async fn drp_request(&self, ctx: &RequestContext, id: uuid::Uuid) -> ServiceResult<AgentRequestView> {
        self.guard(ctx, "drp.request.read", None, async {
            self.require_dpo(ctx)?;
            let link = self
                .store
                .get_drp_request(id)
                .await?
                .ok_or(ServiceError::NotFound("agent's request"))?;
            Ok(AgentRequestView {
                request_id: link.dsr_id,
                agent_request_id: self.agent_reference(&link),
                agent_id: link.agent_id,
                exercise: link.exercise,
                attested: link.attested,
                created_at: link.created_at,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_map_onto_request_kinds() {
        assert_eq!(request_kind("access"), Some("access"));
        assert_eq!(request_kind("access:categories"), Some("access"));
        assert_eq!(request_kind("access:specific"), Some("access"));
        assert_eq!(request_kind("deletion"), Some("erasure"));
        assert_eq!(request_kind("sale:opt_out"), Some("opt_out_of_sale"));
        assert_eq!(request_kind("sale:opt-out"), Some("opt_out_of_sale"));
        assert_eq!(request_kind("sale:opt_in"), None);
        assert_eq!(request_kind("Deletion"), None);
        for a in SUPPORTED_ACTIONS {
            assert!(request_kind(a).is_some(), "{a}");
        }
    }

    #[test]
    fn timestamps_with_and_without_offset() {
        let want: DateTime<Utc> = "2026-03-01T10:00:00Z".parse().unwrap_or_default();
        assert_eq!(parse_time("2026-03-01T10:00:00Z"), Some(want));
        assert_eq!(parse_time("2026-03-01T11:00:00+01:00"), Some(want));
        assert_eq!(parse_time("2026-03-01T10:00:00"), Some(want));
        assert_eq!(parse_time("2026-03-01T10:00:00.000000"), Some(want));
        assert_eq!(parse_time("yesterday"), None);
    }

    #[test]
    fn signed_messages_open_only_with_the_signers_key() {
        let pair = |seed: u8| ring::signature::Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).ok();
        let (Some(a), Some(b)) = (pair(1), pair(2)) else {
            panic!("keys");
        };
        let msg = br#"{"agent-id":"A"}"#;
        let mut combined = a.sign(msg).as_ref().to_vec();
        combined.extend_from_slice(msg);
        let body = base64::engine::general_purpose::STANDARD.encode(&combined);
        let key_a = ring::signature::KeyPair::public_key(&a).as_ref().to_vec();
        let key_b = ring::signature::KeyPair::public_key(&b).as_ref().to_vec();
        let (bytes, claims) = open_signed(body.as_bytes(), &key_a).unwrap_or_default();
        assert_eq!(bytes, msg.to_vec());
        assert_eq!(claims.get("agent-id"), Some(&Value::String("A".into())));
        assert!(open_signed(body.as_bytes(), &key_b).is_none(), "another key");
        combined[70] ^= 1;
        let tampered = base64::engine::general_purpose::STANDARD.encode(&combined);
        assert!(open_signed(tampered.as_bytes(), &key_a).is_none(), "tampered");
        assert!(open_signed(b"not base64 !", &key_a).is_none());
        assert!(open_signed(b"AAAA", &key_a).is_none(), "too short");
    }

    #[test]
    fn agent_ids() {
        assert!(valid_agent_id("CR_AGENT"));
        assert!(valid_agent_id("osiraa-local.1"));
        assert!(!valid_agent_id(""));
        assert!(!valid_agent_id("a b"));
        assert!(!valid_agent_id(&"A".repeat(65)));
    }
}
