//! Data-subject requests (GDPR Art. 15–21, CCPA/CPRA): access,
//! portability, rectification, erasure, restriction, objection and opt-out
//! of sale/sharing. Each runs received → identity verified (in progress) →
//! completed, or refused with a stated reason; every transition is audited.
//! Deadlines come from `steward_domain::deadlines`.
//!
//! Erasure deletes every record of the subject and their data key (so every
//! copy of their ciphertext, in old pages, the WAL and backups, becomes
//! unreadable), keeps the pseudonymous audit entries, and keeps a proof of
//! erasure: the request id, the date and a keyed hash of the e-mail address,
//! so that the person is not silently re-imported.

use chrono::{DateTime, Duration, FixedOffset, Offset, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use steward_audit::{Actor, AuditRecord, Outcome};
use steward_crypto::FieldAad;
use steward_domain::art15::{Art15Information, CcpaInformation};
use steward_domain::deadlines::{self, Regime};
use steward_domain::inventory::{COMPLIANCE, CONTACT};
use steward_domain::SubjectId;
pub use steward_store::LegalHoldRow;
use steward_store::{ContactRow, DsrRow, StoreError, WriteOp};

use crate::audit::AccessLogItem;
use crate::consent::{ConsentInput, SALE_SHARING};
use crate::context::RequestContext;
use crate::crypto::SubjectKey;
use crate::error::{ServiceError, ServiceResult};
use crate::Service;

pub const KINDS: [&str; 7] = [
    "access",
    "portability",
    "rectification",
    "erasure",
    "restriction",
    "objection",
    "opt_out_of_sale",
];
/// The kinds a data subject may file without staff: all but rectification,
/// which needs the new values checked by the privacy officer.
pub const PUBLIC_KINDS: [&str; 6] = [
    "access",
    "portability",
    "erasure",
    "restriction",
    "objection",
    "opt_out_of_sale",
];
/// The note field a requester who is no contact has their address sealed as.
const REQUESTER: &str = "dsr.requester";
/// What request details and export bundles are sealed as (record type, field).
const DETAILS: (&str, &str) = ("dsr", "details");
const BUNDLE: (&str, &str) = ("export", "bundle");
/// How long an access or portability bundle stays available.
pub const BUNDLE_DAYS: i64 = 30;

/// Who a request is about.
#[derive(Debug, Clone)]
pub enum SubjectRef {
    Email(String),
    ContactId(String),
}

#[derive(Debug, Clone)]
pub struct DsrInput {
    pub kind: String,
    pub regime: String,
    pub subject: SubjectRef,
    pub details: Option<Value>,
    pub received_at: Option<DateTime<FixedOffset>>,
}

#[derive(Debug, Clone)]
pub struct DsrView {
    pub row: DsrRow,
    /// `overdue`, `due_soon` or `on_time` (open requests only).
    pub deadline: Option<&'static str>,
}

/// The export of an access or portability request
/// (`GET /api/v1/dsr/{id}/export`): everything held about the person (a
/// `SubjectBundle`), or, when no personal data of theirs is held, a
/// `NoPersonalData` answer saying so. One of two exact shapes rather than
/// one object whose members are all optional: the two are told apart by
/// `personal_data`, an object in a bundle and `null` otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "SubjectExport")]
pub enum SubjectExport {
    /// Everything held about the person (`steward-subject-export-v1`).
    Bundle(Box<SubjectBundle>),
    /// No personal data of the person is held.
    NothingHeld(NoPersonalData),
}

/// The answer to an access or portability request about a person of whom
/// nothing is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "NoPersonalData")]
pub struct NoPersonalData {
    /// The request.
    pub request_id: uuid::Uuid,
    /// When this answer was made.
    pub generated_at: DateTime<Utc>,
    /// Always `null`: no personal data is held.
    pub personal_data: (),
    /// Says so in words.
    pub note: String,
}

/// Everything held about the subject of an access or portability request
/// (`steward-subject-export-v1`), built at fulfilment and stored sealed
/// under the subject's key until it expires; the JSON, CSV and vCard
/// exports and the portal download are made from it. Members added later
/// (`organizations`, `information`, `ccpa`) default when a bundle stored
/// before them is read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "SubjectBundle")]
pub struct SubjectBundle {
    /// Always `steward-subject-export-v1`.
    #[schemars(extend("const" = "steward-subject-export-v1"))]
    pub format: String,
    /// The request this answers.
    pub request_id: uuid::Uuid,
    /// When the bundle was built.
    pub generated_at: DateTime<Utc>,
    /// The person's pseudonymous id (the contact's id).
    pub subject_id: uuid::Uuid,
    /// The contact record.
    pub personal_data: PersonalData,
    /// Every interaction with the person, with its summary.
    pub interactions: Vec<ExportInteraction>,
    /// The deals linked to the person.
    pub deals: Vec<ExportDeal>,
    /// The organisations the contact and their deals link to (empty in a
    /// bundle stored before organisations were exported).
    #[serde(default)]
    pub organizations: Vec<ExportOrganization>,
    /// The purposes the data is held for.
    pub purposes: Vec<ExportPurpose>,
    /// The person's consent records.
    pub consents: Vec<ExportConsent>,
    /// Whether the use of the data is restricted (GDPR Art. 18).
    pub restricted: bool,
    /// The contact record type's retention period; null when undeclared.
    pub retention: Option<ExportRetention>,
    /// Who acted on the data, when, how and for what purpose (GDPR Art. 15(1)(c)).
    pub access_log: Vec<AccessLogItem>,
    /// Where such data comes from, in words.
    pub sources: String,
    /// What GDPR Art. 15(1)–(2) says the person must be told besides the
    /// data; absent only in a bundle stored before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Art15Information")]
    pub information: Option<Art15Information>,
    /// For a CCPA request only (absent otherwise): the categories of §1798.110(a).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "CcpaInformation")]
    pub ccpa: Option<CcpaInformation>,
}

/// The contact record of an export bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "ExportPersonalData")]
pub struct PersonalData {
    /// Every field held, decrypted, by name.
    pub contact: std::collections::BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An interaction with the person, in an export bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "ExportInteraction")]
pub struct ExportInteraction {
    pub id: uuid::Uuid,
    #[schemars(extend("enum" = steward_domain::InteractionKind::NAMES))]
    pub kind: String,
    pub summary: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// A deal linked to the person, in an export bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "ExportDeal")]
pub struct ExportDeal {
    pub id: uuid::Uuid,
    pub title: String,
    pub stage: steward_domain::DealStage,
    /// An integer when whole, else a decimal with at most two fraction digits.
    pub amount: Option<serde_json::Number>,
    /// ISO 4217 code.
    #[schemars(extend("enum" = steward_domain::values::CurrencyCode::all_or_null()))]
    pub currency: Option<String>,
    pub organization_id: Option<uuid::Uuid>,
}

/// An organisation the contact or their deals link to, in an export bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "ExportOrganization")]
pub struct ExportOrganization {
    pub id: uuid::Uuid,
    pub name: String,
    pub domain: Option<String>,
}

/// A purpose the person's data is held for, in an export bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "ExportPurpose")]
pub struct ExportPurpose {
    pub purpose: String,
    pub description: String,
    /// The GDPR Art. 6(1) basis the purpose relies on.
    pub lawful_basis: steward_domain::LawfulBasis,
    /// Who receives data for it.
    pub recipients: Vec<String>,
    /// The purpose's own retention period, when it has one.
    pub retention_days: Option<u32>,
}

/// A consent record of the person, in an export bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "ExportConsent")]
pub struct ExportConsent {
    pub id: uuid::Uuid,
    pub purpose: String,
    #[schemars(extend("enum" = ["granted", "withdrawn", "pending"]))]
    pub status: String,
    pub recorded_at: DateTime<Utc>,
    /// How it was recorded.
    pub source: String,
    /// The version of the notice the person was shown.
    pub notice_version: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The contact record type's retention period, in an export bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "ExportRetention")]
pub struct ExportRetention {
    pub days: u32,
    /// The event the period runs from.
    #[schemars(extend("enum" = ["Created", "LastUpdate"]))]
    pub from: String,
}

/// The certificate of completion of a finished request
/// (`GET /api/v1/dsr/{id}/certificate`), signed as a compact JWS whose
/// payload is this document. No personal data inside: the subject is named
/// by the pseudonymous id only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "DsrCertificate")]
pub struct DsrCertificate {
    /// Always `steward-dsr-certificate-v1`.
    #[schemars(extend("const" = "steward-dsr-certificate-v1"))]
    pub r#type: String,
    /// The controller who carried out the request.
    pub issuer: String,
    pub request_id: uuid::Uuid,
    /// What was asked.
    #[schemars(extend("enum" = KINDS))]
    pub kind: String,
    #[schemars(extend("enum" = ["gdpr", "ccpa"]))]
    pub regime: String,
    /// The person concerned (pseudonymous id), if known.
    pub subject_id: Option<uuid::Uuid>,
    pub received_at: DateTime<Utc>,
    /// The legal deadline (with any extension).
    pub due_at: DateTime<Utc>,
    /// Whether the deadline was extended.
    pub extended: bool,
    pub identity_verified_at: Option<DateTime<Utc>>,
    /// How the request ended.
    #[schemars(extend("enum" = ["completed", "refused", "withdrawn"]))]
    pub status: String,
    pub completed_at: Option<DateTime<Utc>>,
    /// Completed by the deadline.
    pub on_time: bool,
    /// What was done, or why it was refused.
    pub outcome: Option<String>,
    /// When this certificate was issued.
    pub issued_at: DateTime<Utc>,
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// A typed document as the JSON value it is sealed or signed as (sorted
/// members, as before it was typed).
fn to_json<T: Serialize>(v: &T) -> ServiceResult<Value> {
    serde_json::to_value(v).map_err(|e| ServiceError::Internal(e.to_string()))
}

/// A completed, refused or withdrawn request is closed.
pub(crate) fn is_closed(status: &str) -> bool {
    matches!(status, "completed" | "refused" | "withdrawn")
}

/// A request just received, with its legal deadline; who it is about and
/// who recorded it are filled in by the caller.
pub(crate) fn new_request(
    id: uuid::Uuid,
    kind: &str,
    regime: Regime,
    received: DateTime<FixedOffset>,
    t: DateTime<Utc>,
) -> DsrRow {
    DsrRow {
        id,
        kind: kind.into(),
        regime: regime.as_str().into(),
        subject_id: None,
        identifier_hash: None,
        status: "received".into(),
        received_at: received.with_timezone(&Utc),
        received_offset: received.offset().local_minus_utc(),
        due_at: deadlines::due_at(regime, received, 0),
        extensions: 0,
        extension_reason: None,
        verified_at: None,
        verified_by: None,
        verification_method: None,
        completed_at: None,
        outcome: None,
        details: None,
        created_by: None,
        created_at: t,
        updated_at: t,
    }
}

/// What an erasure did.
enum Erasure {
    Complete,
    /// Narrowed by legal obligations: the fields kept, and each obligation
    /// with the day it ends.
    Narrowed {
        kept: Vec<String>,
        obligations: Vec<(String, chrono::DateTime<Utc>)>,
    },
}

impl Service {
    fn require_compliance(&self, ctx: &RequestContext) -> ServiceResult<()> {
        if self.require_purpose(ctx)? != COMPLIANCE {
            return Err(ServiceError::Forbidden(
                "data-subject requests are handled for the compliance purpose (dpo)".into(),
            ));
        }
        Ok(())
    }

    pub(crate) fn identifier_hash(&self, email: &str) -> Vec<u8> {
        self.crypto.labelled_hash("identifier", email.to_lowercase().as_bytes())
    }

    fn dsr_view(row: DsrRow) -> DsrView {
        let deadline = (!is_closed(&row.status)).then(|| deadlines::status_at(row.due_at, now(), Duration::days(7)));
        DsrView { row, deadline }
    }

    pub(crate) async fn dsr_row(&self, id: uuid::Uuid) -> ServiceResult<DsrRow> {
        let row = self.store.get_dsr(id).await?.ok_or(ServiceError::NotFound("request"))?;
        self.open_notes(row)
    }

    /// Staff notes (extension reason, verification method, outcome) are
    /// free text that may name people: they are stored sealed (see
    /// `Crypto::seal_note`) and opened on the way out. Rows in memory hold
    /// them in the clear; [`WriteOp::PutDsr`] always gets a sealed copy.
    fn seal_notes(&self, d: DsrRow) -> ServiceResult<DsrRow> {
        Self::map_notes(d, |id, field, text| {
            self.crypto
                .seal_note(id, field, text)
                .map_err(|e| ServiceError::Internal(e.to_string()))
        })
    }

    fn open_notes(&self, d: DsrRow) -> ServiceResult<DsrRow> {
        let request = d.id;
        Self::map_notes(d, |id, field, text| {
            self.crypto
                .open_note(id, field, text)
                .map_err(|_| ServiceError::Internal(format!("request {request} could not be decrypted")))
        })
    }

    /// Applies `f` (record id, field, text) to each staff note of `d`.
    fn map_notes(mut d: DsrRow, f: impl Fn(&[u8; 16], &str, &str) -> ServiceResult<String>) -> ServiceResult<DsrRow> {
        let id = *d.id.as_bytes();
        for (field, v) in [
            ("extension_reason", &mut d.extension_reason),
            ("verification_method", &mut d.verification_method),
            ("outcome", &mut d.outcome),
        ] {
            if let Some(text) = v.as_mut() {
                *text = f(&id, field, text)?;
            }
        }
        Ok(d)
    }

    pub(crate) fn put_dsr(&self, d: &DsrRow) -> ServiceResult<WriteOp> {
        Ok(WriteOp::PutDsr(Box::new(self.seal_notes(d.clone())?)))
    }

    /// A legal hold's reason, sealed like the notes of a request.
    fn put_hold(&self, h: &LegalHoldRow) -> ServiceResult<WriteOp> {
        let mut sealed = h.clone();
        sealed.reason = self
            .crypto
            .seal_note(h.id.as_bytes(), "legal_hold.reason", &h.reason)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(WriteOp::PutLegalHold(Box::new(sealed)))
    }

    async fn holds_of(&self, subject: SubjectId) -> ServiceResult<Vec<LegalHoldRow>> {
        self.store
            .legal_holds(subject)
            .await?
            .into_iter()
            .map(|mut h| {
                h.reason = self
                    .crypto
                    .open_note(h.id.as_bytes(), "legal_hold.reason", &h.reason)
                    .map_err(|_| ServiceError::Internal(format!("legal hold {} could not be decrypted", h.id)))?;
                Ok(h)
            })
            .collect()
    }

    /// Seals a JSON document about a request (its details, its export
    /// bundle) under the subject's key, bound to the request and the subject.
    fn seal_json(
        &self,
        row: &ContactRow,
        key: &SubjectKey,
        (record, field): (&str, &str),
        id: uuid::Uuid,
        v: &Value,
    ) -> ServiceResult<Vec<u8>> {
        let aad = FieldAad {
            record_type: record,
            record_id: id.as_bytes(),
            field,
            subject_id: row.subject_id.as_bytes(),
        };
        self.crypto
            .seal(key, &aad, &v.to_string())
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    fn open_json<T: serde::de::DeserializeOwned>(
        &self,
        row: &ContactRow,
        key: &SubjectKey,
        (record, field): (&str, &str),
        id: uuid::Uuid,
        sealed: &[u8],
    ) -> ServiceResult<T> {
        let aad = FieldAad {
            record_type: record,
            record_id: id.as_bytes(),
            field,
            subject_id: row.subject_id.as_bytes(),
        };
        let text = self
            .crypto
            .open(key, &aad, sealed)
            .map_err(|_| ServiceError::Internal(format!("the {field} of request {id} could not be decrypted")))?;
        serde_json::from_str(&text).map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// The subject's e-mail address, if the contact holds one.
    fn email_of(&self, row: &ContactRow) -> ServiceResult<Option<String>> {
        let key = self.key_of(row)?;
        self.open_fields_pub(row, &key, "email")
    }

    /// Records a request and computes its legal deadline.
    pub async fn create_dsr(&self, ctx: &RequestContext, input: DsrInput) -> ServiceResult<DsrView> {
        self.guard(ctx, "dsr.create", None, async {
            self.require_compliance(ctx)?;
            let mut errors = Vec::new();
            if !KINDS.contains(&input.kind.as_str()) {
                errors.push(steward_domain::FieldError::new(
                    "kind",
                    format!("must be one of {}", KINDS.join(", ")),
                ));
            }
            let regime = Regime::parse(&input.regime);
            if regime.is_none() {
                errors.push(steward_domain::FieldError::new("regime", "must be gdpr or ccpa"));
            }
            let received = input.received_at.unwrap_or_else(|| now().fixed_offset());
            if received.with_timezone(&Utc) > now() + Duration::minutes(1) {
                errors.push(steward_domain::FieldError::new(
                    "received_at",
                    "must not be in the future",
                ));
            }
            // The address of a requester who is no contact: kept sealed, to
            // tell them of an extension (GDPR Art. 12(3)).
            let mut requester: Option<String> = None;
            let (row, identifier) = match &input.subject {
                SubjectRef::ContactId(id) => match id.parse::<SubjectId>() {
                    Ok(id) => (self.store.get_contact(id).await?, None),
                    Err(_) => {
                        errors.push(steward_domain::FieldError::new(
                            "subject.contact_id",
                            "is not a contact id",
                        ));
                        (None, None)
                    }
                },
                SubjectRef::Email(email) => match steward_domain::records::normalise_contact_field(
                    &self.inventory,
                    "email",
                    &Value::String(email.clone()),
                ) {
                    Ok(normal) => {
                        requester = Some(normal.clone());
                        (
                            self.contact_by_email(&normal).await?,
                            Some(self.identifier_hash(&normal)),
                        )
                    }
                    Err(e) => {
                        errors.push(steward_domain::FieldError::new("subject.email", e.message));
                        (None, None)
                    }
                },
            };
            if matches!(input.subject, SubjectRef::ContactId(_)) && row.is_none() && errors.is_empty() {
                return Err(ServiceError::NotFound("contact"));
            }
            if input.kind == "rectification" {
                match input
                    .details
                    .as_ref()
                    .and_then(|d| d.get("changes"))
                    .and_then(Value::as_object)
                {
                    Some(c) if !c.is_empty() => {}
                    _ => errors.push(steward_domain::FieldError::new(
                        "details.changes",
                        "must name the fields to change and their new values",
                    )),
                }
                if row.is_none() && errors.is_empty() {
                    errors.push(steward_domain::FieldError::new(
                        "subject",
                        "no contact holds this identity, so there is nothing to rectify",
                    ));
                }
            }
            let Some(regime) = regime.filter(|_| errors.is_empty()) else {
                return Err(ServiceError::Invalid(errors));
            };
            let id = uuid::Uuid::now_v7();
            let t = now();
            let identifier = match (&identifier, &row) {
                (Some(h), _) => Some(h.clone()),
                (None, Some(r)) => self.email_of(r)?.map(|e| self.identifier_hash(&e)),
                _ => None,
            };
            let details = match (&input.details, &row, &requester) {
                (Some(d), Some(r), _) => Some(self.seal_json(r, &self.key_of(r)?, DETAILS, id, d)?),
                (_, None, Some(address)) => Some(self.seal_requester(id, address)?),
                _ => None,
            };
            let mut dsr = new_request(id, &input.kind, regime, received, t);
            dsr.subject_id = row.as_ref().map(|r| r.subject_id);
            dsr.identifier_hash = identifier;
            dsr.details = details;
            dsr.created_by = Some(ctx.principal.user_id);
            let audit = self.audit_ok(
                ctx,
                &format!("dsr.{}.received", dsr.kind),
                dsr.subject_id,
                &[id],
                vec![],
            );
            self.store.write(vec![self.put_dsr(&dsr)?, audit]).await?;
            Ok(Self::dsr_view(dsr))
        })
        .await
    }

    pub async fn get_dsr(&self, ctx: &RequestContext, id: uuid::Uuid) -> ServiceResult<DsrView> {
        self.guard(ctx, "dsr.read", None, async {
            self.require_compliance(ctx)?;
            Ok(Self::dsr_view(self.dsr_row(id).await?))
        })
        .await
    }

    /// Open requests by due date, optionally only overdue or due within a week.
    pub async fn list_dsr(&self, ctx: Option<&RequestContext>, filter: Option<&str>) -> ServiceResult<Vec<DsrView>> {
        if let Some(ctx) = ctx {
            self.require_compliance(ctx)?;
        }
        let open_only = filter.is_some_and(|f| f != "all");
        let rows = self.store.list_dsr(open_only).await?;
        let rows = rows
            .into_iter()
            .map(|r| self.open_notes(r))
            .collect::<ServiceResult<Vec<_>>>()?;
        Ok(rows
            .into_iter()
            .map(Self::dsr_view)
            .filter(|v| match filter {
                Some("overdue") => v.deadline == Some("overdue"),
                Some("due_soon") => matches!(v.deadline, Some("due_soon" | "overdue")),
                _ => true,
            })
            .collect())
    }

    async fn transition(&self, ctx: &RequestContext, d: DsrRow, action: &str) -> ServiceResult<DsrView> {
        self.transition_with(ctx, d, action, vec![]).await
    }

    async fn transition_with(
        &self,
        ctx: &RequestContext,
        mut d: DsrRow,
        action: &str,
        mut ops: Vec<WriteOp>,
    ) -> ServiceResult<DsrView> {
        d.updated_at = now();
        let audit = self.audit_ok(ctx, action, d.subject_id, &[d.id], vec![]);
        ops.insert(0, self.put_dsr(&d)?);
        ops.push(audit);
        self.store.write(ops).await?;
        Ok(Self::dsr_view(d))
    }

    /// The contact a request is about, if one is held.
    async fn request_contact(&self, d: &DsrRow) -> ServiceResult<Option<ContactRow>> {
        match d.subject_id {
            Some(s) => Ok(self.store.get_contact(s).await?),
            None => Ok(None),
        }
    }

    /// Where to write to the requester: the contact's address, or the
    /// sealed address of a requester who is no contact.
    async fn requester_email(&self, d: &DsrRow) -> ServiceResult<Option<String>> {
        if let Some(r) = self.request_contact(d).await? {
            return self.email_of(&r);
        }
        match (&d.subject_id, &d.details) {
            (None, Some(sealed)) => std::str::from_utf8(sealed)
                .ok()
                .and_then(|text| self.crypto.open_note(d.id.as_bytes(), REQUESTER, text).ok())
                .map(Some)
                .ok_or_else(|| ServiceError::Internal(format!("request {} could not be decrypted", d.id))),
            _ => Ok(None),
        }
    }

    /// Seals a requester's address as a note of the request (see
    /// [`Self::requester_email`]).
    pub(crate) fn seal_requester(&self, id: uuid::Uuid, address: &str) -> ServiceResult<Vec<u8>> {
        self.crypto
            .seal_note(id.as_bytes(), REQUESTER, address)
            .map(String::into_bytes)
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    fn still_open(d: &DsrRow) -> ServiceResult<()> {
        if is_closed(&d.status) {
            return Err(ServiceError::Conflict(format!("the request is already {}", d.status)));
        }
        Ok(())
    }

    /// Records that the requester's identity was verified (by whom, how).
    pub async fn verify_dsr(
        &self,
        ctx: &RequestContext,
        id: uuid::Uuid,
        method: Option<String>,
    ) -> ServiceResult<DsrView> {
        self.guard(ctx, "dsr.verify", None, async {
            self.require_compliance(ctx)?;
            let mut d = self.dsr_row(id).await?;
            Self::still_open(&d)?;
            d.status = "in_progress".into();
            d.verified_at = Some(now());
            d.verified_by = Some(ctx.principal.user_id);
            d.verification_method = Some(
                method
                    .unwrap_or_else(|| "verified by staff".into())
                    .chars()
                    .take(200)
                    .collect(),
            );
            self.transition(ctx, d, "dsr.verify").await
        })
        .await
    }

    /// Extends the deadline once (GDPR: two further months; CCPA: 45 days).
    pub async fn extend_dsr(&self, ctx: &RequestContext, id: uuid::Uuid, reason: &str) -> ServiceResult<DsrView> {
        self.guard(ctx, "dsr.extend", None, async {
            self.require_compliance(ctx)?;
            let reason = reason.trim();
            if reason.is_empty() || reason.chars().count() > 1000 {
                return Err(ServiceError::invalid(
                    "reason",
                    "must state why the request needs more time (1 to 1000 characters)",
                ));
            }
            let mut d = self.dsr_row(id).await?;
            Self::still_open(&d)?;
            let regime = Regime::parse(&d.regime).ok_or_else(|| ServiceError::Internal("unknown regime".into()))?;
            if d.extensions >= regime.max_extensions() {
                return Err(ServiceError::Conflict(
                    "the deadline has already been extended once".into(),
                ));
            }
            d.extensions += 1;
            d.extension_reason = Some(reason.to_string());
            let offset = FixedOffset::east_opt(d.received_offset).unwrap_or_else(|| Utc.fix());
            d.due_at = deadlines::due_at(regime, d.received_at.with_timezone(&offset), d.extensions);
            // The subject is told of the extension and its reasons (GDPR Art. 12(3)).
            let mut ops = Vec::new();
            let email = self.requester_email(&d).await?;
            if let Some(to) = email {
                let message = crate::outbox::Message {
                    to,
                    subject: "We need more time for your request about your personal data".into(),
                    body: format!(
                        "Your request ({}, reference {}) received on {} needs more time.\nReason: {}\nWe will answer by {}.\n",
                        d.kind,
                        d.id,
                        d.received_at.format("%Y-%m-%d"),
                        reason,
                        d.due_at.format("%Y-%m-%d %H:%M UTC")
                    ),
                };
                ops.push(self.queue_mail("dsr.extension", &message)?);
            }
            self.transition_with(ctx, d, "dsr.extend", ops).await
        })
        .await
    }

    /// Refuses a request with a stated reason (e.g. manifestly unfounded).
    pub async fn refuse_dsr(&self, ctx: &RequestContext, id: uuid::Uuid, reason: &str) -> ServiceResult<DsrView> {
        self.guard(ctx, "dsr.refuse", None, async {
            self.require_compliance(ctx)?;
            if reason.trim().is_empty() || reason.trim().chars().count() > 1000 {
                return Err(ServiceError::invalid(
                    "reason",
                    "must state why the request is refused (1 to 1000 characters)",
                ));
            }
            let mut d = self.dsr_row(id).await?;
            Self::still_open(&d)?;
            d.status = "refused".into();
            d.completed_at = Some(now());
            d.outcome = Some(reason.trim().chars().take(1000).collect());
            self.transition(ctx, d, "dsr.refuse").await
        })
        .await
    }

    /// Carries out a verified request.
    pub async fn fulfill_dsr(&self, ctx: &RequestContext, id: uuid::Uuid) -> ServiceResult<DsrView> {
        self.guard(ctx, "dsr.fulfill", None, async {
            self.require_compliance(ctx)?;
            let mut d = self.dsr_row(id).await?;
            Self::still_open(&d)?;
            if d.verified_at.is_none() {
                return Err(ServiceError::Conflict(
                    "verify the requester's identity first (POST /api/v1/dsr/{id}/verify)".into(),
                ));
            }
            let row = self.request_contact(&d).await?;
            let mut ops = Vec::new();
            let outcome = match (d.kind.as_str(), row) {
                (_, None) => "no personal data of this person is held".to_string(),
                ("access" | "portability", Some(r)) => {
                    // Stored sealed under the subject's key, expiring, with the
                    // request's completion; erasure takes it along.
                    let key = self.key_of(&r)?;
                    let bundle = self.build_bundle(&d, &r, &key).await?;
                    let sealed = self.seal_json(&r, &key, BUNDLE, d.id, &to_json(&bundle)?)?;
                    let expires_at = now() + Duration::days(BUNDLE_DAYS);
                    let row = steward_store::ExportBundleRow {
                        dsr_id: d.id,
                        subject_id: r.subject_id,
                        sealed,
                        created_at: now(),
                        expires_at,
                    };
                    ops.push(WriteOp::PutExportBundle(Box::new(row)));
                    // A request filed in the privacy portal: the person gets a
                    // time-limited download code by e-mail.
                    if d.identifier_hash.is_some() {
                        if let Some(to) = self.open_fields_pub(&r, &key, "email")? {
                            ops.extend(self.download_code_ops(d.id, &d.kind, to, expires_at)?);
                        }
                    }
                    format!(
                        "the export is available until {} at GET /api/v1/dsr/{}/export",
                        expires_at.format("%Y-%m-%d"),
                        d.id
                    )
                }
                ("rectification", Some(r)) => {
                    let details = match &d.details {
                        Some(sealed) => self.open_json(&r, &self.key_of(&r)?, DETAILS, d.id, sealed)?,
                        None => Value::Null,
                    };
                    let changes = details
                        .get("changes")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    let names: Vec<String> = changes.keys().cloned().collect();
                    self.update_contact(ctx, r.subject_id, changes).await?;
                    format!("rectified: {}", names.join(", "))
                }
                ("erasure", Some(r)) => match self.erase_subject(ctx, &r, d.id).await? {
                    Erasure::Complete => "all records of the person deleted and their data key destroyed".into(),
                    Erasure::Narrowed { kept, obligations } => format!(
                        "erasure narrowed by a legal obligation to keep records (GDPR Art. 17(3)(b)): kept {} for {}; \
                         processing of what is kept is restricted; every other field, the interactions and any \
                         export were deleted",
                        kept.join(", "),
                        obligations
                            .iter()
                            .map(|(p, until)| format!("{p} until {}", until.format("%Y-%m-%d")))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
                ("restriction", Some(r)) => {
                    self.set_restriction(ctx, r.subject_id, true).await?;
                    "processing restricted".into()
                }
                ("objection", Some(r)) => {
                    let purposes = self.record_objection(ctx, &r).await?;
                    format!("objection recorded; no longer used for: {}", purposes.join(", "))
                }
                ("opt_out_of_sale", Some(r)) => {
                    let input = ConsentInput {
                        purpose: SALE_SHARING.into(),
                        granted: false,
                        source: Some(format!("request {}", d.id)),
                        ..ConsentInput::default()
                    };
                    self.record_consent(ctx, r.subject_id, input).await?;
                    "opted out of the sale and sharing of personal information".into()
                }
                _ => return Err(ServiceError::Internal("unknown request kind".into())),
            };
            d.status = "completed".into();
            d.completed_at = Some(now());
            d.outcome = Some(outcome);
            self.transition_with(ctx, d, "dsr.fulfill", ops).await
        })
        .await
    }

    /// The purposes under which the law obliges Steward to keep this
    /// person's data (collection purposes with a `legal_obligation` basis),
    /// each with the day its retention period ends, counted from the
    /// contact's last update; only those still running.
    fn retention_obligations(&self, row: &ContactRow) -> Vec<(String, chrono::DateTime<Utc>)> {
        row.purposes
            .iter()
            .filter_map(|name| {
                let p = self.inventory.purpose(name)?;
                if p.lawful_basis != steward_domain::LawfulBasis::LegalObligation || !p.collection {
                    return None;
                }
                let until = row.updated_at + Duration::days(i64::from(p.retention_days?));
                (until > now()).then(|| (name.clone(), until))
            })
            .collect()
    }

    /// Erasure: every record of the subject, their data key (crypto-shredding),
    /// and a proof of erasure; audit entries stay (pseudonymous). A legal
    /// hold blocks it; a running legal obligation to keep records narrows it
    /// to what that obligation needs (see [`Self::narrow_erasure`]).
    async fn erase_subject(
        &self,
        ctx: &RequestContext,
        row: &ContactRow,
        request: uuid::Uuid,
    ) -> ServiceResult<Erasure> {
        self.ensure_no_legal_hold(row.subject_id).await?;
        let obligations = self.retention_obligations(row);
        if !obligations.is_empty() {
            return self.narrow_erasure(ctx, row, request, obligations).await;
        }
        let email = self.email_of(row)?;
        let mut ops = vec![
            WriteOp::RequireNoLegalHold {
                subject_id: row.subject_id,
            },
            WriteOp::DeleteContact {
                subject_id: row.subject_id,
            },
        ];
        if let Some(e) = email {
            ops.push(WriteOp::InsertErasureProof {
                identifier_hash: self.identifier_hash(&e),
                request_id: request,
                at: now(),
            });
        }
        ops.push(self.audit_ok(
            ctx,
            "subject.erase",
            Some(row.subject_id),
            &[*row.subject_id.as_uuid(), request],
            vec![],
        ));
        match self.store.write(ops).await {
            Err(StoreError::NotFound) => Err(ServiceError::NotFound("contact")),
            other => other.map(|()| Erasure::Complete).map_err(ServiceError::from),
        }
    }

    /// The writes that keep only the fields `purposes` (legal obligations)
    /// need, under those purposes alone and with processing restricted, and
    /// delete every other field, the interactions and stored exports; the
    /// data key and the last-update time stay. Also the fields kept.
    pub(crate) fn narrowing_ops(
        &self,
        row: &ContactRow,
        purposes: &[String],
    ) -> ServiceResult<(Vec<WriteOp>, Vec<String>)> {
        let needed = self.inventory.fields_for_purposes(CONTACT, purposes);
        let key = self.key_of(row)?;
        let mut fields = self.open_all_fields(row, &key)?;
        fields.retain(|name, _| needed.contains(name.as_str()));
        let kept: Vec<String> = fields.keys().cloned().collect();
        let narrowed = ContactRow {
            purposes: purposes.to_vec(),
            fields: self.seal_fields(&key, row.subject_id, &fields)?,
            version: row.version + 1,
            key: None,
            restricted: true,
            ..row.clone()
        };
        let ops = vec![
            WriteOp::RequireNoLegalHold {
                subject_id: row.subject_id,
            },
            WriteOp::UpdateContact {
                terms: self.index_terms(&fields),
                row: narrowed,
                expected_version: row.version,
            },
            WriteOp::SetRestricted {
                subject_id: row.subject_id,
                restricted: true,
            },
            WriteOp::DeleteSubjectRecords {
                subject_id: row.subject_id,
            },
        ];
        Ok((ops, kept))
    }

    /// GDPR Art. 17(3)(b): keeps only the fields the obligation purposes
    /// need, under those purposes alone and with processing restricted;
    /// deletes every other field, the interactions and stored exports. The
    /// data key stays (what is kept must stay readable); the last-update
    /// time is kept so the retention period is not extended.
    async fn narrow_erasure(
        &self,
        ctx: &RequestContext,
        row: &ContactRow,
        request: uuid::Uuid,
        obligations: Vec<(String, chrono::DateTime<Utc>)>,
    ) -> ServiceResult<Erasure> {
        let purposes: Vec<String> = obligations.iter().map(|(p, _)| p.clone()).collect();
        let (mut ops, kept) = self.narrowing_ops(row, &purposes)?;
        let mut audit = self.audit_record(
            ctx,
            "subject.erase.narrowed",
            steward_audit::Outcome::Ok,
            Some(row.subject_id),
            &[*row.subject_id.as_uuid(), request],
        );
        audit.fields = kept.clone();
        audit.reason = Some(format!("kept under a legal obligation: {}", purposes.join(", ")));
        ops.push(WriteOp::AppendAudit(Box::new(audit)));
        match self.store.write(ops).await {
            Err(StoreError::NotFound) => Err(ServiceError::NotFound("contact")),
            Err(StoreError::VersionConflict) => Err(ServiceError::Conflict(
                "the contact changed while the erasure was carried out; fulfil the request again".into(),
            )),
            other => other
                .map(|()| Erasure::Narrowed { kept, obligations })
                .map_err(ServiceError::from),
        }
    }

    /// Objection (Art. 21): the subject's data is no longer used for the
    /// purposes based on legitimate interests or public task.
    async fn record_objection(&self, ctx: &RequestContext, row: &ContactRow) -> ServiceResult<Vec<String>> {
        use steward_domain::LawfulBasis;
        let objected: Vec<String> = row
            .purposes
            .iter()
            .filter(|p| {
                self.inventory.purpose(p).is_some_and(|p| {
                    matches!(
                        p.lawful_basis,
                        LawfulBasis::LegitimateInterest | LawfulBasis::PublicTask
                    )
                })
            })
            .cloned()
            .collect();
        let mut state = row.consented.clone();
        for p in &objected {
            let marker = format!("{OBJECTED}{p}");
            if !state.iter().any(|(s, _)| s == &marker) {
                state.push((marker, None));
            }
        }
        let audit = self.audit_ok(
            ctx,
            "subject.object",
            Some(row.subject_id),
            &[*row.subject_id.as_uuid()],
            objected.clone(),
        );
        self.store
            .write(vec![
                WriteOp::SetConsentState {
                    subject_id: row.subject_id,
                    consented: state,
                },
                audit,
            ])
            .await?;
        Ok(objected)
    }

    /// Everything held about the subject of an access or portability request.
    pub async fn dsr_export(&self, ctx: &RequestContext, id: uuid::Uuid) -> ServiceResult<SubjectExport> {
        self.guard(ctx, "dsr.export", None, async {
            self.require_compliance(ctx)?;
            let d = self.dsr_row(id).await?;
            if !matches!(d.kind.as_str(), "access" | "portability") {
                return Err(ServiceError::Conflict(
                    "only access and portability requests have an export".into(),
                ));
            }
            if d.verified_at.is_none() {
                return Err(ServiceError::Conflict("verify the requester's identity first".into()));
            }
            let Some(row) = self.request_contact(&d).await? else {
                return Ok(SubjectExport::NothingHeld(NoPersonalData {
                    request_id: d.id,
                    generated_at: now(),
                    personal_data: (),
                    note: "no personal data of this person is held".into(),
                }));
            };
            let key = self.key_of(&row)?;
            // The bundle stored when the request was fulfilled; before that, built now.
            let bundle: SubjectBundle = match self.store.get_export_bundle(d.id).await? {
                Some(b) if b.expires_at <= now() => {
                    return Err(ServiceError::Gone(format!(
                        "the export of this request expired on {}; file a new request",
                        b.expires_at.format("%Y-%m-%d")
                    )))
                }
                Some(b) => self.open_json(&row, &key, BUNDLE, d.id, &b.sealed)?,
                // Fulfilled, and its bundle deleted by a retention schedule.
                None if d.completed_at.is_some() => {
                    return Err(ServiceError::Gone(
                        "the export of this request is no longer kept (retention schedule); file a new request".into(),
                    ))
                }
                None => self.build_bundle(&d, &row, &key).await?,
            };
            let fields: Vec<String> = bundle.personal_data.contact.keys().cloned().collect();
            let audit = self.ok_record(ctx, "dsr.export", Some(row.subject_id), &[d.id], fields);
            self.audit_reads(vec![audit]).await?;
            Ok(SubjectExport::Bundle(Box::new(bundle)))
        })
        .await
    }
}

impl Service {
    /// Everything held about the subject of `d` (`steward-subject-export-v1`).
    async fn build_bundle(
        &self,
        d: &DsrRow,
        row: &ContactRow,
        key: &crate::crypto::SubjectKey,
    ) -> ServiceResult<SubjectBundle> {
        let fields = self.open_all_fields(row, key)?;
        // Every interaction, page by page.
        let mut inter = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .list_interactions(row.subject_id, after, steward_store::MAX_PAGE)
                .await?;
            for i in &page {
                inter.push(self.interaction_json(i, key)?);
            }
            match page.last() {
                Some(last) if page.len() == steward_store::MAX_PAGE as usize => after = Some(last.id),
                _ => break,
            }
        }
        let consents = self.store.list_consents(row.subject_id).await?;
        let purposes: Vec<ExportPurpose> = row
            .purposes
            .iter()
            .filter_map(|p| self.inventory.purpose(p).map(|spec| (p, spec)))
            .map(|(p, spec)| ExportPurpose {
                purpose: p.clone(),
                description: spec.description.clone(),
                lawful_basis: spec.lawful_basis,
                recipients: spec.recipients.clone(),
                retention_days: spec.retention_days,
            })
            .collect();
        let access_log = self.subject_access_log(row.subject_id).await?;
        // Linked deals, by index, and the organisations they and the contact link to.
        let linked = self.store.deals_of_subject(row.subject_id).await?;
        let mut org_ids: Vec<steward_domain::OrganizationId> =
            linked.iter().filter_map(|d| d.organization_id).collect();
        if let Some(o) = fields.get("organization_id").and_then(|o| o.parse().ok()) {
            org_ids.push(o);
        }
        org_ids.sort_by_key(|o| *o.as_uuid());
        org_ids.dedup();
        let mut organizations = Vec::new();
        for id in org_ids {
            if let Some(o) = self.store.get_organization(id).await? {
                organizations.push(ExportOrganization {
                    id: *o.id.as_uuid(),
                    name: o.name,
                    domain: o.domain,
                });
            }
        }
        let deals: Vec<ExportDeal> = linked
            .iter()
            .map(|deal| ExportDeal {
                id: *deal.id.as_uuid(),
                title: deal.title.clone(),
                stage: deal.stage,
                amount: deal.amount.and_then(|a| match a.to_json() {
                    Value::Number(n) => Some(n),
                    _ => None,
                }),
                currency: deal.currency.map(|c| c.as_str().to_string()),
                organization_id: deal.organization_id.map(|o| *o.as_uuid()),
            })
            .collect();
        let consents: Vec<ExportConsent> = consents
            .into_iter()
            .map(|c| ExportConsent {
                id: c.id,
                purpose: c.purpose,
                status: c.status,
                recorded_at: c.recorded_at,
                source: c.source,
                notice_version: c.notice_version,
                expires_at: c.expires_at,
            })
            .collect();
        // What Art. 15 (or, for a CCPA request, §1798.110) says the person
        // must be told besides the data, for the purposes and fields held.
        let source = steward_domain::art15::Source::from_actor_kind(
            access_log
                .iter()
                .find(|e| e.action == "contact.create")
                .map(|e| e.actor_kind.as_str()),
        );
        let held: Vec<&str> = fields.keys().map(String::as_str).collect();
        let information = steward_domain::art15::information(&self.inventory, &row.purposes, &held, source);
        let ccpa =
            (d.regime == "ccpa").then(|| steward_domain::art15::ccpa(&self.inventory, &row.purposes, &held, source));
        Ok(SubjectBundle {
            format: "steward-subject-export-v1".into(),
            request_id: d.id,
            generated_at: now(),
            subject_id: *row.subject_id.as_uuid(),
            personal_data: PersonalData {
                contact: fields,
                created_at: row.created_at,
                updated_at: row.updated_at,
            },
            interactions: inter,
            deals,
            organizations,
            purposes,
            consents,
            restricted: row.restricted,
            retention: self.inventory.record_type(CONTACT).map(|r| ExportRetention {
                days: r.retention_days,
                from: format!("{:?}", r.retention_trigger),
            }),
            access_log,
            sources: "entered by staff, imported, or given by you through a form".into(),
            information: Some(information),
            ccpa,
        })
    }
}

impl Service {
    /// The certificate of completion of a finished request, for the data
    /// subject: what was asked, what was done and when, signed (compact JWS,
    /// EdDSA, verifiable with the published JWKS). No personal data inside:
    /// the subject is named by the pseudonymous id only.
    pub async fn dsr_certificate(
        &self,
        ctx: &RequestContext,
        id: uuid::Uuid,
    ) -> ServiceResult<(DsrCertificate, String)> {
        self.guard(ctx, "dsr.certificate", None, async {
            self.require_compliance(ctx)?;
            let d = self.dsr_row(id).await?;
            if !is_closed(&d.status) {
                return Err(ServiceError::Conflict(
                    "the request is not finished yet; a certificate is issued once it is completed, refused or withdrawn"
                        .into(),
                ));
            }
            let controller = self.inventory.controller.name.clone();
            let cert = DsrCertificate {
                r#type: "steward-dsr-certificate-v1".into(),
                issuer: controller,
                request_id: d.id,
                kind: d.kind,
                regime: d.regime,
                subject_id: d.subject_id.map(|s| *s.as_uuid()),
                received_at: d.received_at,
                due_at: d.due_at,
                extended: d.extensions > 0,
                identity_verified_at: d.verified_at,
                status: d.status,
                completed_at: d.completed_at,
                on_time: d.completed_at.is_some_and(|c| c <= d.due_at),
                outcome: d.outcome,
                issued_at: now(),
            };
            // Signed as the JSON value (sorted members), as before it was typed.
            let jws = self
                .crypto
                .receipt_key()
                .sign(to_json(&cert)?.to_string().as_bytes(), "JWT");
            let audit = self.ok_record(ctx, "dsr.certificate", d.subject_id, &[d.id], vec![]);
            self.audit_reads(vec![audit]).await?;
            Ok((cert, jws))
        })
        .await
    }
}

impl Service {
    /// Refuses (409) while the subject's data is under an active legal hold
    /// (GDPR Art. 17(3)(b), (e)), stating the hold's reason and date.
    pub(crate) async fn ensure_no_legal_hold(&self, subject: SubjectId) -> ServiceResult<()> {
        let holds = self.holds_of(subject).await?;
        match holds.iter().find(|h| h.released_at.is_none()) {
            Some(h) => Err(ServiceError::Conflict(format!(
                "the contact's data is under a legal hold since {} ({}); it may not be erased or deleted until the hold is released",
                h.created_at.format("%Y-%m-%d"),
                h.reason
            ))),
            None => Ok(()),
        }
    }

    /// Places a legal hold on a subject's data (dpo, compliance).
    pub async fn place_legal_hold(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        reason: &str,
    ) -> ServiceResult<LegalHoldRow> {
        self.guard(ctx, "legal_hold.place", Some(subject), async {
            self.require_compliance(ctx)?;
            let reason = reason.trim();
            if reason.is_empty() || reason.chars().count() > 1000 {
                return Err(ServiceError::invalid(
                    "reason",
                    "must state the legal ground for keeping the data (1 to 1000 characters)",
                ));
            }
            if self.store.get_contact(subject).await?.is_none() {
                return Err(ServiceError::NotFound("contact"));
            }
            let hold = LegalHoldRow {
                id: uuid::Uuid::now_v7(),
                subject_id: subject,
                reason: reason.to_string(),
                created_by: Some(ctx.principal.user_id),
                created_at: now(),
                released_at: None,
                released_by: None,
            };
            let audit = self.audit_ok(
                ctx,
                "legal_hold.place",
                Some(subject),
                &[*subject.as_uuid(), hold.id],
                vec![],
            );
            self.store.write(vec![self.put_hold(&hold)?, audit]).await?;
            Ok(hold)
        })
        .await
    }

    /// Releases an active legal hold.
    pub async fn release_legal_hold(
        &self,
        ctx: &RequestContext,
        subject: SubjectId,
        hold: uuid::Uuid,
    ) -> ServiceResult<LegalHoldRow> {
        self.guard(ctx, "legal_hold.release", Some(subject), async {
            self.require_compliance(ctx)?;
            let mut h = self
                .holds_of(subject)
                .await?
                .into_iter()
                .find(|h| h.id == hold)
                .ok_or(ServiceError::NotFound("legal hold"))?;
            if h.released_at.is_some() {
                return Err(ServiceError::Conflict("the legal hold is already released".into()));
            }
            h.released_at = Some(now());
            h.released_by = Some(ctx.principal.user_id);
            let audit = self.audit_ok(
                ctx,
                "legal_hold.release",
                Some(subject),
                &[*subject.as_uuid(), h.id],
                vec![],
            );
            self.store.write(vec![self.put_hold(&h)?, audit]).await?;
            Ok(h)
        })
        .await
    }

    /// A subject's legal holds, active and released.
    pub async fn list_legal_holds(&self, ctx: &RequestContext, subject: SubjectId) -> ServiceResult<Vec<LegalHoldRow>> {
        self.guard(ctx, "legal_hold.list", Some(subject), async {
            self.require_compliance(ctx)?;
            self.holds_of(subject).await
        })
        .await
    }
}

/// How long an e-mailed verification link stays valid.
pub const VERIFICATION_DAYS: i64 = 7;

impl Service {
    /// Public intake (no staff login; rate limited): a data subject files a
    /// request with their e-mail address. The request is recorded as
    /// received, and a one-time verification link is queued to that address
    /// (sealed in the outbox); the answer is the same whether or not the
    /// address is known. Rectification needs the changes and goes to staff.
    pub async fn public_dsr(&self, kind: &str, regime: &str, email: &str, client: Option<String>) -> ServiceResult<()> {
        if kind == "rectification" {
            let errors = vec![steward_domain::FieldError::new(
                "kind",
                format!(
                    "must be one of {} (rectification goes to the privacy officer)",
                    PUBLIC_KINDS.join(", ")
                ),
            )];
            self.public.check(client.as_deref())?;
            return Err(ServiceError::Invalid(errors));
        }
        self.public_dsr_with(kind, regime, email, None, client).await
    }

    /// [`Service::public_dsr`], where a rectification names the contact
    /// fields to correct and their correct values (the privacy portal's
    /// form). The changes are checked like any write of those fields and
    /// sealed under the person's key until staff carry them out; the
    /// answer is the same whether or not the address is known.
    pub async fn public_dsr_with(
        &self,
        kind: &str,
        regime: &str,
        email: &str,
        changes: Option<serde_json::Map<String, Value>>,
        client: Option<String>,
    ) -> ServiceResult<()> {
        self.public.check(client.as_deref())?;
        let mut errors = Vec::new();
        if !KINDS.contains(&kind) {
            errors.push(steward_domain::FieldError::new(
                "kind",
                "must be one of access, portability, rectification, erasure, restriction, objection, opt_out_of_sale",
            ));
        }
        if kind == "rectification" {
            match &changes {
                Some(c) if !c.is_empty() => {
                    for (field, value) in c {
                        let known = self
                            .inventory
                            .field(steward_domain::inventory::CONTACT, field)
                            .is_some();
                        if !known {
                            errors.push(steward_domain::FieldError::new(
                                "changes",
                                "names a field we do not hold about anyone",
                            ));
                        } else if let Err(e) =
                            steward_domain::records::normalise_contact_field(&self.inventory, field, value)
                        {
                            errors.push(steward_domain::FieldError::new(format!("changes.{field}"), e.message));
                        }
                    }
                }
                _ => errors.push(steward_domain::FieldError::new(
                    "changes",
                    "must name what to correct and the correct value",
                )),
            }
        }
        let regime = Regime::parse(regime);
        if regime.is_none() {
            errors.push(steward_domain::FieldError::new("regime", "must be gdpr or ccpa"));
        }
        let normal = match steward_domain::records::normalise_contact_field(
            &self.inventory,
            "email",
            &Value::String(email.to_string()),
        ) {
            Ok(n) => Some(n),
            Err(e) => {
                errors.push(steward_domain::FieldError::new("email", e.message));
                None
            }
        };
        let (Some(regime), Some(normal), true) = (regime, normal, errors.is_empty()) else {
            return Err(ServiceError::Invalid(errors));
        };
        let row = self.contact_by_email(&normal).await?;
        let id = uuid::Uuid::now_v7();
        let t = now();
        let mut dsr = new_request(id, kind, regime, t.fixed_offset(), t);
        dsr.subject_id = row.as_ref().map(|r| r.subject_id);
        dsr.identifier_hash = Some(self.identifier_hash(&normal));
        match (&row, changes.filter(|_| kind == "rectification")) {
            (Some(r), Some(c)) => {
                let details = serde_json::json!({ "changes": c });
                dsr.details = Some(self.seal_json(r, &self.key_of(r)?, DETAILS, id, &details)?);
            }
            (None, _) => dsr.details = Some(self.seal_requester(id, &normal)?),
            _ => {}
        }
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, secret.as_mut());
        let token = zeroize::Zeroizing::new(base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            secret.as_ref(),
        ));
        let verification = steward_store::DsrVerificationRow {
            token_hash: self.crypto.labelled_hash("dsr-verification", token.as_bytes()),
            dsr_id: id,
            expires_at: t + Duration::days(VERIFICATION_DAYS),
            used_at: None,
        };
        let message = crate::outbox::Message {
            to: normal,
            subject: "Please confirm your request about your personal data".into(),
            body: format!(
                "We received a request ({kind}) about the personal data we hold about you.\n\
                 To confirm that it was you, enter this code within {VERIFICATION_DAYS} days on our privacy page \
                 (/privacy), or send it with POST /api/v1/public/dsr/verify {{\"token\": \"{}\"}}.\n\
                 If you did not make this request, ignore this message; nothing will be done.\n\
                 Request reference: {id}\n",
                token.as_str()
            ),
        };
        let mut audit = AuditRecord::new(t, Actor::anonymous(), format!("dsr.{kind}.received"), Outcome::Ok);
        audit.subject_id = dsr.subject_id.map(|s| *s.as_uuid());
        audit.record_ids = vec![id];
        audit.client = self.audit_client(client.as_deref(), audit.at);
        self.store
            .write(vec![
                self.put_dsr(&dsr)?,
                WriteOp::PutDsrVerification(Box::new(verification)),
                self.queue_mail("dsr.verification", &message)?,
                WriteOp::AppendAudit(Box::new(audit)),
            ])
            .await?;
        Ok(())
    }

    /// A data subject confirms a request with the one-time code from their
    /// e-mail: the requester's identity (control of the address) is verified.
    pub async fn verify_public_dsr(&self, token: &str, client: Option<String>) -> ServiceResult<uuid::Uuid> {
        self.public.check(client.as_deref())?;
        let hash = self.crypto.labelled_hash("dsr-verification", token.trim().as_bytes());
        let t = now();
        let Some(mut v) = self
            .store
            .get_dsr_verification(&hash)
            .await?
            .filter(|v| v.used_at.is_none() && v.expires_at > t)
        else {
            return Err(ServiceError::NotFound("verification code"));
        };
        let mut d = self.dsr_row(v.dsr_id).await?;
        Self::still_open(&d)?;
        v.used_at = Some(t);
        d.status = "in_progress".into();
        d.verified_at = Some(t);
        d.verified_by = None;
        d.verification_method = Some("one-time code e-mailed to the address given".into());
        d.updated_at = t;
        let mut audit = AuditRecord::new(t, Actor::anonymous(), "dsr.verify", Outcome::Ok);
        audit.subject_id = d.subject_id.map(|s| *s.as_uuid());
        audit.record_ids = vec![d.id];
        audit.client = self.audit_client(client.as_deref(), audit.at);
        let id = d.id;
        self.store
            .write(vec![
                WriteOp::PutDsrVerification(Box::new(v)),
                self.put_dsr(&d)?,
                WriteOp::AppendAudit(Box::new(audit)),
            ])
            .await?;
        Ok(id)
    }
}

/// The label under which download codes are hashed (verification codes
/// use another, so neither works as the other).
const DOWNLOAD: &str = "dsr-download";

/// What the privacy portal shows of a request.
#[derive(Debug, Clone)]
pub struct PublicStatus {
    pub id: uuid::Uuid,
    pub kind: String,
    pub status: String,
    pub received_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl Service {
    /// A download code for the export of public request `id`, e-mailed to
    /// `to` through the sealed outbox; it works until `expires_at`.
    fn download_code_ops(
        &self,
        id: uuid::Uuid,
        kind: &str,
        to: String,
        expires_at: DateTime<Utc>,
    ) -> ServiceResult<Vec<WriteOp>> {
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, secret.as_mut());
        let code = zeroize::Zeroizing::new(base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            secret.as_ref(),
        ));
        let row = steward_store::DsrVerificationRow {
            token_hash: self.crypto.labelled_hash(DOWNLOAD, code.as_bytes()),
            dsr_id: id,
            expires_at,
            used_at: None,
        };
        let message = crate::outbox::Message {
            to,
            subject: "Your personal data is ready to download".into(),
            body: format!(
                "Your request ({kind}) is fulfilled. Download your data on our privacy page (/privacy) with this code \
                 until {}:\n{}\nRequest reference: {id}\n",
                expires_at.format("%Y-%m-%d"),
                code.as_str()
            ),
        };
        Ok(vec![
            WriteOp::PutDsrVerification(Box::new(row)),
            self.queue_mail("dsr.download", &message)?,
        ])
    }

    /// The status of a request filed in the privacy portal, for its
    /// reference and the address it was filed with; `None` alike for an
    /// unknown reference and a wrong address. Rate limited.
    pub async fn public_dsr_status(
        &self,
        reference: &str,
        email: &str,
        client: Option<String>,
    ) -> ServiceResult<Option<PublicStatus>> {
        self.public.check(client.as_deref())?;
        let Ok(id) = reference.trim().parse::<uuid::Uuid>() else {
            return Ok(None);
        };
        let normal = steward_domain::records::normalise_contact_field(
            &self.inventory,
            "email",
            &Value::String(email.to_string()),
        )
        .map_err(|e| ServiceError::Invalid(vec![e]))?;
        let want = self.identifier_hash(&normal);
        let Some(d) = self.store.get_dsr(id).await? else {
            return Ok(None);
        };
        if d.identifier_hash
            .as_deref()
            .map(|h| subtle::ConstantTimeEq::ct_eq(h, want.as_slice()).into())
            != Some(true)
        {
            return Ok(None);
        }
        Ok(Some(PublicStatus {
            id: d.id,
            kind: d.kind,
            status: d.status,
            received_at: d.received_at.with_timezone(&Utc),
            due_at: d.due_at.with_timezone(&Utc),
            completed_at: d.completed_at,
        }))
    }

    /// The export of a fulfilled portal request, for the download code
    /// e-mailed at fulfilment (until it expires). Audited as an export to
    /// the data subject. Rate limited.
    pub async fn public_download(
        &self,
        code: &str,
        client: Option<String>,
    ) -> ServiceResult<(uuid::Uuid, SubjectBundle)> {
        self.public.check(client.as_deref())?;
        let hash = self.crypto.labelled_hash(DOWNLOAD, code.trim().as_bytes());
        let t = now();
        let Some(v) = self
            .store
            .get_dsr_verification(&hash)
            .await?
            .filter(|v| v.expires_at > t)
        else {
            return Err(ServiceError::NotFound("download code"));
        };
        let d = self.dsr_row(v.dsr_id).await?;
        let Some(row) = self.request_contact(&d).await? else {
            return Err(ServiceError::Gone("the data of this request is no longer held".into()));
        };
        let Some(b) = self.store.get_export_bundle(d.id).await?.filter(|b| b.expires_at > t) else {
            return Err(ServiceError::Gone(
                "this export is no longer available; file a new request".into(),
            ));
        };
        let key = self.key_of(&row)?;
        let bundle: SubjectBundle = self.open_json(&row, &key, BUNDLE, d.id, &b.sealed)?;
        let mut audit = AuditRecord::new(t, Actor::anonymous(), "dsr.export.download", Outcome::Ok);
        audit.subject_id = Some(*row.subject_id.as_uuid());
        audit.record_ids = vec![d.id];
        audit.client = self.audit_client(client.as_deref(), audit.at);
        self.store.write(vec![WriteOp::AppendAudit(Box::new(audit))]).await?;
        Ok((d.id, bundle))
    }
}

/// Marks an objected purpose in the contact's consent state.
pub(crate) const OBJECTED: &str = "!";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{Config, Service};
    use serde_json::json;

    fn keys(v: &Value) -> Vec<&str> {
        let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }

    fn sorted(mut k: Vec<&str>) -> Vec<&str> {
        k.sort_unstable();
        k
    }

    fn bundle(ccpa: bool) -> SubjectBundle {
        let inv = steward_domain::Inventory::default_inventory();
        let purposes = vec!["marketing_email".to_string()];
        let source = steward_domain::art15::Source::Staff;
        let t = Utc::now();
        SubjectBundle {
            format: "steward-subject-export-v1".into(),
            request_id: uuid::Uuid::now_v7(),
            generated_at: t,
            subject_id: uuid::Uuid::now_v7(),
            personal_data: PersonalData {
                contact: [("email".to_string(), "ada@example.org".to_string())].into(),
                created_at: t,
                updated_at: t,
            },
            interactions: vec![ExportInteraction {
                id: uuid::Uuid::now_v7(),
                kind: "call".into(),
                summary: None,
                occurred_at: t,
                created_at: t,
            }],
            deals: vec![ExportDeal {
                id: uuid::Uuid::now_v7(),
                title: "Engine".into(),
                stage: steward_domain::DealStage::Lead,
                amount: serde_json::Number::from_f64(12.5),
                currency: Some("EUR".into()),
                organization_id: None,
            }],
            organizations: vec![ExportOrganization {
                id: uuid::Uuid::now_v7(),
                name: "Babbage".into(),
                domain: None,
            }],
            purposes: vec![ExportPurpose {
                purpose: "marketing_email".into(),
                description: "Sending marketing e-mail".into(),
                lawful_basis: steward_domain::LawfulBasis::Consent,
                recipients: vec!["marketing staff".into()],
                retention_days: None,
            }],
            consents: vec![ExportConsent {
                id: uuid::Uuid::now_v7(),
                purpose: "marketing_email".into(),
                status: "granted".into(),
                recorded_at: t,
                source: "api".into(),
                notice_version: None,
                expires_at: None,
            }],
            restricted: false,
            retention: Some(ExportRetention {
                days: 1095,
                from: "LastUpdate".into(),
            }),
            access_log: vec![AccessLogItem {
                at: t,
                action: "contact.create".into(),
                outcome: "ok".into(),
                purpose: None,
                actor_role: None,
                actor_kind: "user".into(),
                fields: vec![],
            }],
            sources: "entered by staff, imported, or given by you through a form".into(),
            information: Some(steward_domain::art15::information(&inv, &purposes, &["email"], source)),
            ccpa: ccpa.then(|| steward_domain::art15::ccpa(&inv, &purposes, &["email"], source)),
        }
    }

    /// The member names of the export are its contract with the person and
    /// their tools (and the CSV and vCard writers): a rename must not slip in.
    #[test]
    fn export_members_keep_their_names() {
        let v = serde_json::to_value(SubjectExport::Bundle(Box::new(bundle(false)))).unwrap();
        assert_eq!(
            keys(&v),
            sorted(vec![
                "format",
                "request_id",
                "generated_at",
                "subject_id",
                "personal_data",
                "interactions",
                "deals",
                "organizations",
                "purposes",
                "consents",
                "restricted",
                "retention",
                "access_log",
                "sources",
                "information",
            ]),
            "no ccpa member outside a CCPA request"
        );
        assert_eq!(keys(&v["personal_data"]), ["contact", "created_at", "updated_at"]);
        assert_eq!(v["personal_data"]["contact"], json!({"email": "ada@example.org"}));
        assert_eq!(
            keys(&v["interactions"][0]),
            ["created_at", "id", "kind", "occurred_at", "summary"]
        );
        assert!(v["interactions"][0]["summary"].is_null(), "null, not left out");
        assert_eq!(
            keys(&v["deals"][0]),
            ["amount", "currency", "id", "organization_id", "stage", "title"]
        );
        assert_eq!(v["deals"][0]["amount"], json!(12.5));
        assert!(v["deals"][0]["organization_id"].is_null());
        assert_eq!(keys(&v["organizations"][0]), ["domain", "id", "name"]);
        assert_eq!(
            keys(&v["purposes"][0]),
            ["description", "lawful_basis", "purpose", "recipients", "retention_days"]
        );
        assert_eq!(v["purposes"][0]["lawful_basis"], "consent");
        assert_eq!(
            keys(&v["consents"][0]),
            [
                "expires_at",
                "id",
                "notice_version",
                "purpose",
                "recorded_at",
                "source",
                "status"
            ]
        );
        assert_eq!(v["retention"], json!({"days": 1095, "from": "LastUpdate"}));
        assert_eq!(
            keys(&v["access_log"][0]),
            [
                "action",
                "actor_kind",
                "actor_role",
                "at",
                "fields",
                "outcome",
                "purpose"
            ]
        );
        assert_eq!(
            keys(&v["information"]),
            [
                "automated_decision_making",
                "categories",
                "complaint",
                "controller",
                "purposes",
                "recipients",
                "rights",
                "source",
                "storage",
                "transfers"
            ]
        );
        assert_eq!(
            keys(&v["information"]["controller"]),
            ["address", "contact", "country", "dpo_email", "email", "name"]
        );
        assert_eq!(
            keys(&v["information"]["transfers"][0]),
            ["country", "recipient", "safeguards"]
        );
        let v = serde_json::to_value(bundle(true)).unwrap();
        assert_eq!(
            keys(&v["ccpa"]),
            [
                "business_or_commercial_purposes",
                "categories_of_personal_information",
                "categories_of_sources",
                "categories_of_third_parties",
                "specific_pieces"
            ]
        );
        assert_eq!(v["ccpa"]["specific_pieces"], "personal_data");

        let none = SubjectExport::NothingHeld(NoPersonalData {
            request_id: uuid::Uuid::now_v7(),
            generated_at: Utc::now(),
            personal_data: (),
            note: "no personal data of this person is held".into(),
        });
        let v = serde_json::to_value(&none).unwrap();
        assert_eq!(keys(&v), ["generated_at", "note", "personal_data", "request_id"]);
        assert!(v["personal_data"].is_null(), "null, not left out");
        assert_eq!(serde_json::from_value::<SubjectExport>(v).unwrap(), none);
        let b = SubjectExport::Bundle(Box::new(bundle(true)));
        assert_eq!(
            serde_json::from_value::<SubjectExport>(serde_json::to_value(&b).unwrap()).unwrap(),
            b
        );
    }

    /// A bundle stored before organisations and the Art. 15 statement were
    /// exported still opens, and says no more than it held.
    #[test]
    fn older_bundles_still_read() {
        let old = json!({
            "format": "steward-subject-export-v1",
            "request_id": "01900000-0000-7000-8000-000000000001",
            "generated_at": "2025-06-01T10:00:00.123456Z",
            "subject_id": "01900000-0000-7000-8000-000000000002",
            "personal_data": {"contact": {"email": "ada@example.org", "given_name": "Ada"},
                              "created_at": "2025-05-01T09:00:00Z", "updated_at": "2025-05-02T09:00:00Z"},
            "interactions": [{"id": "01900000-0000-7000-8000-000000000003", "kind": "call", "summary": "asked",
                              "occurred_at": "2025-05-03T09:00:00Z", "created_at": "2025-05-03T09:00:00Z"}],
            "deals": [{"id": "01900000-0000-7000-8000-000000000004", "title": "Engine", "stage": "won",
                       "amount": 7, "currency": "GBP", "organization_id": null}],
            "purposes": [{"purpose": "sales", "description": "Selling to business contacts",
                          "lawful_basis": "legitimate_interest", "recipients": ["sales staff"], "retention_days": 1095}],
            "consents": [],
            "restricted": true,
            "retention": null,
            "access_log": [{"at": "2025-05-01T09:00:00Z", "action": "contact.create", "outcome": "ok",
                            "purpose": "sales", "actor_role": "sales", "actor_kind": "user", "fields": ["email"]}],
            "sources": "entered by staff, imported, or given by you through a form",
        });
        let b: SubjectBundle = serde_json::from_value(old.clone()).unwrap();
        assert!(b.information.is_none() && b.ccpa.is_none());
        assert!(b.organizations.is_empty());
        assert_eq!(b.personal_data.contact["given_name"], "Ada");
        assert_eq!(b.deals[0].amount, Some(7.into()));
        assert!(b.restricted && b.retention.is_none());
        let again = serde_json::to_value(&b).unwrap();
        assert!(again.get("information").is_none() && again.get("ccpa").is_none());
        let mut expected = old.clone();
        expected["organizations"] = json!([]);
        assert_eq!(again, expected);
        assert!(matches!(
            serde_json::from_value::<SubjectExport>(old).unwrap(),
            SubjectExport::Bundle(_)
        ));
    }

    /// The schemas say what the documents are: the export one of two
    /// shapes, the certificate's type a constant.
    #[test]
    fn schemas_state_the_shapes() {
        let s = serde_json::to_value(schemars::schema_for!(SubjectExport)).unwrap();
        assert_eq!(s["title"], "SubjectExport");
        let refs: Vec<&str> = s["anyOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["$ref"].as_str().unwrap())
            .collect();
        assert_eq!(refs, ["#/$defs/SubjectBundle", "#/$defs/NoPersonalData"]);
        let none = &s["$defs"]["NoPersonalData"];
        assert_eq!(none["properties"]["personal_data"]["type"], "null");
        assert_eq!(none["required"].as_array().unwrap().len(), 4);
        let bundle = &s["$defs"]["SubjectBundle"];
        assert_eq!(bundle["properties"]["format"]["const"], "steward-subject-export-v1");
        assert_eq!(bundle["properties"]["ccpa"]["$ref"], "#/$defs/CcpaInformation");
        let required = bundle["required"].as_array().unwrap();
        for absent_in_older_or_gdpr in ["organizations", "information", "ccpa"] {
            assert!(!required.contains(&json!(absent_in_older_or_gdpr)));
        }
        let c = serde_json::to_value(schemars::schema_for!(DsrCertificate)).unwrap();
        assert_eq!(c["title"], "DsrCertificate");
        assert_eq!(c["properties"]["type"]["const"], "steward-dsr-certificate-v1");
        assert!(c["description"].as_str().unwrap().contains("No personal data"));
    }

    async fn user(service: &Service, name: &str, role: &str) -> RequestContext {
        service
            .create_user(name, role, zeroize::Zeroizing::new("long-enough-password".into()))
            .await
            .unwrap();
        let p = service.local_principal(name).await.unwrap();
        service.context(p, None, None, None).await.unwrap()
    }

    /// The stored bundle opens as the typed bundle, and the certificate's
    /// JWS signs the document served, with sorted members.
    #[tokio::test]
    async fn stored_bundle_and_signed_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let service = Service::open(&Config::new(dir.path().join("data"))).await.unwrap();
        let support = user(&service, "sue", "support").await;
        let dpo = user(&service, "dee", "dpo").await;
        let body = json!({"given_name": "Ada", "email": "ada@example.org", "purposes": ["customer_service"]});
        service
            .create_contact(&support, body.as_object().unwrap().clone())
            .await
            .unwrap();
        let input = |regime: &str, email: &str| DsrInput {
            kind: "access".into(),
            regime: regime.into(),
            subject: SubjectRef::Email(email.into()),
            details: None,
            received_at: None,
        };
        let known = service
            .create_dsr(&dpo, input("ccpa", "ada@example.org"))
            .await
            .unwrap()
            .row
            .id;
        let unknown = service
            .create_dsr(&dpo, input("gdpr", "nobody@example.org"))
            .await
            .unwrap()
            .row
            .id;
        for id in [known, unknown] {
            service.verify_dsr(&dpo, id, None).await.unwrap();
            service.fulfill_dsr(&dpo, id).await.unwrap();
        }
        let SubjectExport::Bundle(b) = service.dsr_export(&dpo, known).await.unwrap() else {
            panic!("a bundle");
        };
        assert_eq!(b.request_id, known);
        assert_eq!(b.personal_data.contact["given_name"], "Ada");
        assert!(b.information.is_some() && b.ccpa.is_some());
        let SubjectExport::NothingHeld(n) = service.dsr_export(&dpo, unknown).await.unwrap() else {
            panic!("nothing held");
        };
        assert_eq!(n.request_id, unknown);

        for id in [known, unknown] {
            let (cert, jws) = service.dsr_certificate(&dpo, id).await.unwrap();
            assert_eq!(cert.r#type, "steward-dsr-certificate-v1");
            let v = serde_json::to_value(&cert).unwrap();
            assert_eq!(
                keys(&v),
                sorted(vec![
                    "type",
                    "issuer",
                    "request_id",
                    "kind",
                    "regime",
                    "subject_id",
                    "received_at",
                    "due_at",
                    "extended",
                    "identity_verified_at",
                    "status",
                    "completed_at",
                    "on_time",
                    "outcome",
                    "issued_at",
                ])
            );
            assert_eq!(v["subject_id"].is_null(), id == unknown, "null, not left out");
            use base64::Engine;
            let payload = jws.split('.').nth(1).unwrap();
            let signed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap();
            assert_eq!(String::from_utf8(signed).unwrap(), v.to_string());
        }
    }
}
