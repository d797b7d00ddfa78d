//! The OpenAPI 3.1 description, generated from the code: operations come
//! from the same endpoint table that builds the router ([`crate::endpoints`]),
//! and the contact schemas from the data inventory, so neither can drift.

use serde_json::{json, Map, Value};
use steward_domain::inventory::{FieldKind, CONTACT};
use steward_domain::{DealStage, InteractionKind, Inventory};

use crate::problem::PROBLEM_BASE;

/// What the description says about one operation.
#[derive(Debug, Clone, Copy)]
pub struct Op {
    pub id: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    /// Needs a bearer token.
    pub auth: bool,
    /// Touches personal data, so takes the Steward-Purpose header.
    pub purpose: bool,
    pub request: Option<&'static str>,
    /// Success status and response schema (None: no body).
    pub ok: (u16, Option<&'static str>),
    pub query: &'static [(&'static str, &'static str, &'static str)],
    /// Error statuses besides 401/403 for authenticated operations.
    pub errors: &'static [u16],
}

fn field_schema(kind: FieldKind, max: Option<usize>) -> Value {
    let mut s = match kind {
        FieldKind::Text => {
            json!({"type": "string", "minLength": 1, "pattern": steward_domain::values::PROSE_PATTERN})
        }
        FieldKind::Email => json!({"type": "string", "format": "email"}),
        FieldKind::Phone => {
            json!({"type": "string", "description": "International number; stored in E.164 form", "pattern": "^\\+[1-9][0-9]{7,14}$"})
        }
        FieldKind::Country => json!({"type": "string", "description": "ISO 3166-1 alpha-2",
            "enum": steward_domain::values::CountryCode::all().collect::<Vec<_>>()}),
        FieldKind::Date => json!({"type": "string", "format": "date"}),
        FieldKind::Reference => json!({"type": "string", "format": "uuid"}),
    };
    if let (Some(m), Some(obj)) = (max, s.as_object_mut()) {
        obj.insert("maxLength".into(), json!(m));
    }
    s
}

fn contact_schemas(inv: &Inventory) -> (Value, Value, Value) {
    let mut props = Map::new();
    if let Some(rt) = inv.record_type(CONTACT) {
        for (name, f) in &rt.fields {
            let mut s = field_schema(f.kind, f.max_length);
            if let Some(obj) = s.as_object_mut() {
                obj.insert("description".into(), json!(format!("category: {}", f.category)));
            }
            props.insert(name.clone(), s);
        }
    }
    let purposes: Vec<&str> = inv.collection_purposes().collect();
    let purposes_schema = json!({"type": "array", "items": {"type": "string", "enum": purposes}, "minItems": 1,
        "description": "The purposes the data is collected for; each field must be needed by one of them"});
    let mut input = props.clone();
    input.insert("purposes".into(), purposes_schema.clone());
    let mut patch = Map::new();
    for (k, v) in &props {
        patch.insert(k.clone(), json!({"oneOf": [v, {"type": "null"}]}));
    }
    patch.insert("purposes".into(), purposes_schema);
    let mut out = props;
    out.insert("id".into(), json!({"type": "string", "format": "uuid"}));
    out.insert("purposes".into(), json!({"type": "array", "items": {"type": "string"}}));
    out.insert("created_at".into(), json!({"type": "string", "format": "date-time"}));
    out.insert("updated_at".into(), json!({"type": "string", "format": "date-time"}));
    out.insert("version".into(), json!({"type": "integer"}));
    (
        json!({"type": "object", "properties": out, "required": ["id", "purposes", "created_at", "updated_at"],
               "description": "Only the fields the request's purpose needs are present"}),
        json!({"type": "object", "properties": input, "additionalProperties": false}),
        json!({"type": "object", "properties": patch, "additionalProperties": false, "description": "null removes a field"}),
    )
}

fn page_of(item: &str) -> Value {
    json!({"type": "object", "required": ["items", "next_cursor"], "properties": {
        "items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}},
        "next_cursor": {"type": ["string", "null"], "description": "Pass as ?cursor= for the next page; null on the last page"}}})
}

fn schemas(inv: &Inventory) -> Value {
    let (contact, input, patch) = contact_schemas(inv);
    let uuid = json!({"type": "string", "format": "uuid"});
    let dt = json!({"type": "string", "format": "date-time"});
    let stages: Vec<&str> = DealStage::ALL.iter().map(|s| s.as_str()).collect();
    let kinds: Vec<&str> = InteractionKind::ALL.iter().map(|k| k.as_str()).collect();
    json!({
        "Contact": contact,
        "ContactInput": input,
        "ContactPatch": patch,
        "ContactPage": page_of("Contact"),
        "Organization": {"type": "object", "required": ["id", "name"], "properties": {
            "id": uuid, "name": {"type": "string"}, "domain": {"type": ["string", "null"]}, "created_at": dt, "updated_at": dt}},
        "OrganizationPage": page_of("Organization"),
        "Deal": {"type": "object", "required": ["id"], "properties": {
            "id": uuid, "title": {"type": "string"}, "stage": {"type": "string", "enum": stages},
            "amount": {"type": ["number", "null"]}, "currency": {"type": ["string", "null"], "pattern": "^[A-Z]{3}$"},
            "organization_id": {"type": ["string", "null"], "format": "uuid"}, "contact_id": {"type": ["string", "null"], "format": "uuid"},
            "created_at": dt, "updated_at": dt}},
        "DealPage": page_of("Deal"),
        "Interaction": {"type": "object", "required": ["id", "contact_id", "kind", "occurred_at"], "properties": {
            "id": uuid, "contact_id": uuid, "kind": {"type": "string", "enum": kinds}, "summary": {"type": "string"},
            "occurred_at": dt, "created_at": dt}},
        "InteractionPage": page_of("Interaction"),
        "OpenApi": {"type": "object"},
        "Problem": {"type": "object", "required": ["type", "title", "status", "detail"], "properties": {
            "type": {"type": "string", "format": "uri", "description": format!("{PROBLEM_BASE}<slug>")},
            "title": {"type": "string"}, "status": {"type": "integer"}, "detail": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object", "required": ["field", "message"], "properties": {
                "field": {"type": "string"}, "message": {"type": "string"}}}}}},
    })
}

/// The `#/components/schemas` definitions schemars derives for the types
/// (and the types they name) under `settings`.
macro_rules! derived {
    ($settings:expr; $($t:ty),* $(,)?) => {{
        let mut generator = $settings
            .with(|s| {
                s.definitions_path = "/components/schemas".into();
                s.meta_schema = None;
            })
            .into_generator();
        $( let _ = generator.subschema_for::<$t>(); )*
        generator.take_definitions(true)
    }};
}

/// The request bodies' schemas, derived (schemars) from the very types the
/// handlers parse, with their serde attributes (`deny_unknown_fields` →
/// `additionalProperties: false`, defaults → not required) and validation
/// attributes; keyed by schema name. They replace any hand-written schema
/// of the same name.
#[must_use]
pub fn derived_request_schemas() -> Map<String, Value> {
    use crate::routes::{auth, consent, contacts, dsr, incidents, retention, users};
    use steward_service::{contacts as sc, crm, incident};
    let mut all = derived!(schemars::generate::SchemaSettings::draft2020_12();
        auth::LoginInput,
        auth::ConfirmInput,
        auth::TokenInput,
        users::NewUser,
        users::Patch,
        users::PasswordInput,
        users::TrainingInput,
        contacts::RestrictionInput,
        consent::ConsentBody,
        consent::PublicConsentBody,
        consent::ConfirmBody,
        consent::NoticeBody,
        dsr::DsrBody,
        dsr::VerifyBody,
        dsr::ReasonBody,
        dsr::PublicDsrBody,
        dsr::TokenBody,
        incidents::NoteBody,
        retention::RunBody,
        sc::InteractionInput,
        crm::OrganizationInput,
        crm::DealInput,
        incident::IncidentInput,
        incident::IncidentChange,
        incident::ScopeCriteria,
        incident::ContainmentInput,
        incident::EvidenceInput,
        incident::RegulatorInput,
        incident::RiskInput,
        incident::SubjectNoticeInput,
    );
    all.insert("SettingsInput".into(), steward_service::settings::change_schema());
    all
}

/// The response bodies' schemas, derived (schemars) from the very types
/// the handlers serialise; keyed by schema name. Operations whose handler
/// still builds its answer as a `serde_json::Value` name a hand-written
/// schema instead (or `Object`, until typed).
#[must_use]
pub fn derived_response_schemas() -> Map<String, Value> {
    use crate::routes::{audit, auth, consent, contacts, dsr, incidents, retention, users, Items};
    use steward_service::{compliance, doctor, incident, retention as sr};
    let mut all = derived!(schemars::generate::SchemaSettings::draft2020_12().for_serialize();
        retention::PreviewOut,
        retention::ReviewOut,
        sr::RetentionReport,
        sr::RetentionHistory,
        compliance::ComplianceReport,
        doctor::SecurityReport,
        incidents::TimelineOut,
        incident::TimelineItem,
        incident::EvidenceMeta,
        incident::Evidence,
        incident::ScopeSnapshot,
        incident::ScopeVerification,
        incident::RiskOutcome,
        incident::SubjectNoticeOutcome,
        users::UserOut,
        users::TrainingOut,
        Items<users::UserOut>,
        Items<users::TrainingOut>,
        Items<dsr::DsrOut>,
        Items<dsr::HoldOut>,
        dsr::PublicAccepted,
        dsr::PublicVerified,
        auth::MeOut,
        auth::EnrollmentOut,
        auth::ConfirmedOut,
        Items<auth::TokenOut>,
        auth::CreatedToken,
        contacts::RestrictionOut,
        consent::JwksOut,
        consent::GpcOut,
        consent::NoticeOut,
        Items<consent::NoticeOut>,
        Items<consent::RenewalOut>,
        consent::QueuedOut,
        steward_domain::receipt::ConsentReceipt,
        steward_domain::incident::RegulatorNotification,
        steward_domain::ropa::RecordOfProcessing,
        steward_service::dsr::DsrCertificate,
        steward_service::dsr::SubjectExport,
        audit::EntryOut,
        audit::Page<audit::EntryOut>,
        audit::Page<steward_service::audit::AccessLogItem>,
        audit::TreeHeadOut,
        audit::InclusionOut,
        audit::ConsistencyOut,
        consent::ConsentOut,
        consent::ConsentListOut,
        consent::PublicAcceptedOut,
        consent::ConfirmedOut,
        auth::LoginOut,
        crate::routes::meta::HealthOut,
        steward_service::incident::IncidentView,
        Items<steward_service::incident::IncidentView>,
    );
    all.insert("Settings".into(), steward_service::settings::settings_schema());
    all
}

fn status_text(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        204 => "No content",
        400 => "Malformed request",
        401 => "Missing or bad credentials",
        403 => "Role, purpose or lawful basis does not allow this",
        404 => "Unknown id",
        409 => "Conflict with stored data",
        413 => "Body too large",
        415 => "Body is not JSON",
        422 => "Invalid or not-minimal data",
        423 => "Account locked after repeated failed sign-ins",
        429 => "Too many attempts",
        503 => "Not ready",
        _ => "Error",
    }
}

/// The schema of a query parameter named in the endpoint table: exactly
/// what its handler accepts.
///
/// # Panics
/// On a name not listed here (a mistake in the table, caught by the tests).
#[must_use]
pub fn query_schema(ty: &str) -> Value {
    if let Some(values) = ty.strip_prefix("enum:") {
        return json!({"type": "string", "enum": values.split('|').collect::<Vec<_>>()});
    }
    match ty {
        "uuid" => json!({"type": "string", "format": "uuid"}),
        "limit" => json!({"type": "integer", "minimum": 1, "maximum": steward_service::contacts::MAX_PAGE}),
        "index" => json!({"type": "string", "pattern": "^[0-9]{1,18}$"}),
        "count" => json!({"type": "integer", "minimum": 0, "maximum": i64::MAX}),
        "days" => json!({"type": "integer", "minimum": 0, "maximum": 3660}),
        "date" => json!({"type": "string", "format": "date"}),
        "date-time" => json!({"type": "string", "format": "date-time"}),
        "day-or-time" => {
            json!({"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}]})
        }
        "boolean" => json!({"type": "boolean"}),
        "email" => json!({"type": "string", "format": "email", "maxLength": 254}),
        "phone" => json!({"type": "string", "pattern": "^\\+[1-9][0-9]{7,14}$"}),
        "words" => json!({"type": "string", "minLength": 1, "maxLength": 200, "pattern": "[A-Za-z]"}),
        "actor" => json!({"type": "string"}),
        other => panic!("no query schema named {other}"),
    }
}

fn operation(path: &str, op: &Op) -> Value {
    let mut params: Vec<Value> = Vec::new();
    for seg in path.split('/') {
        if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let schema = if name == "index" {
                json!({"type": "integer", "minimum": 0, "maximum": i64::MAX})
            } else {
                json!({"type": "string", "format": "uuid"})
            };
            params.push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
        }
    }
    for (name, ty, desc) in op.query {
        let (required, ty) = match ty.strip_prefix('!') {
            Some(t) => (true, t),
            None => (false, *ty),
        };
        params.push(
            json!({"name": name, "in": "query", "required": required, "schema": query_schema(ty), "description": desc}),
        );
    }
    if op.purpose {
        params.push(
            json!({"name": "Steward-Purpose", "in": "header", "required": false, "schema": {"type": "string"},
            "description": "The purpose of the request; default: the role's default purpose"}),
        );
    }
    let mut responses = Map::new();
    let ok = match op.ok.1 {
        Some(schema) => {
            json!({"description": status_text(op.ok.0), "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}})
        }
        None => json!({"description": status_text(op.ok.0)}),
    };
    let mut ok = ok;
    // Operations with a `format` choice answer in that format's media type.
    if let Some((_, ty, _)) = op.query.iter().find(|(n, _, _)| *n == "format") {
        if let (Some(formats), Some(content)) = (
            ty.strip_prefix("enum:"),
            ok.get_mut("content").and_then(Value::as_object_mut),
        ) {
            for f in formats.split('|') {
                let media = match f {
                    "html" => "text/html",
                    "markdown" => "text/markdown",
                    "csv" => "text/csv",
                    "vcard" => "text/vcard",
                    _ => continue,
                };
                content.insert(media.into(), json!({"schema": {"type": "string"}}));
            }
        }
    }
    responses.insert(op.ok.0.to_string(), ok);
    let mut errors: Vec<u16> = op.errors.to_vec();
    if op.auth {
        errors.extend([401, 403]);
    }
    errors.sort_unstable();
    errors.dedup();
    for code in errors {
        responses.insert(
            code.to_string(),
            json!({"description": status_text(code),
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}),
        );
    }
    let mut o = json!({"operationId": op.id, "summary": op.summary, "tags": [op.tag], "parameters": params, "responses": responses});
    if let Some(obj) = o.as_object_mut() {
        if let Some(req) = op.request {
            let mut media = json!({"schema": {"$ref": format!("#/components/schemas/{req}")}});
            if let Some(example) = request_example(op.id) {
                media["example"] = example;
            }
            obj.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/json": media}}),
            );
        }
        obj.insert(
            "security".into(),
            if op.auth { json!([{"bearer": []}]) } else { json!([]) },
        );
    }
    o
}

/// An example request body for the main operations, valid against the
/// request schema of the default inventory (a test checks each one, and
/// sends the contact example to a real server).
#[must_use]
pub fn request_example(operation_id: &str) -> Option<Value> {
    Some(match operation_id {
        "login" => json!({"username": "alice", "password": "a-long-password"}),
        "totpConfirm" => json!({"code": "123456"}),
        "createToken" => json!({"name": "newsletter sync", "expires_in_days": 30, "purpose": "marketing_email"}),
        "createUser" => json!({"username": "dora", "role": "dpo", "password": "a-long-password"}),
        "addTraining" => {
            json!({"course": "Data protection basics", "completed_on": "2026-11-02", "expires_on": "2027-11-02"})
        }
        "putSettings" => json!({"require_training": true, "session_idle_minutes": 20}),
        "createContact" => json!({"given_name": "Ada", "family_name": "Lovelace", "email": "ada@example.com",
                                  "phone": "+442079460958", "purposes": ["sales"]}),
        "addInteraction" => {
            json!({"kind": "call", "summary": "Asked for a quote", "occurred_at": "2026-11-30T10:00:00Z"})
        }
        "createOrganization" => json!({"name": "Analytical Engines Ltd", "domain": "engines.example"}),
        "createDeal" => json!({"title": "Difference engine", "stage": "proposal", "amount": 12000, "currency": "GBP"}),
        "restrictContact" => json!({"restricted": true}),
        "recordConsent" => {
            json!({"purpose": "marketing_email", "granted": true, "source": "signed form", "notice_version": "2026-01"})
        }
        "publicConsent" => json!({"email": "ada@example.com", "purpose": "marketing_email", "granted": true}),
        "publishNotice" => {
            json!({"version": "2026-01", "text": "How we use your data: …", "material": true, "language": "en"})
        }
        "publicDsr" => json!({"kind": "access", "regime": "gdpr", "email": "ada@example.com"}),
        "createDsr" => json!({"kind": "erasure", "regime": "gdpr", "subject": {"email": "ada@example.com"}}),
        "openIncident" => {
            json!({"title": "Laptop lost on a train", "description": "An unencrypted laptop of the sales team",
                                 "category": "confidentiality", "source": "lost_device", "aware_at": "2026-12-01T09:30:00Z"})
        }
        "scopeIncident" => json!({"user": "alice", "from": "2026-11-01T00:00:00Z", "to": "2026-12-01T09:30:00Z"}),
        _ => return None,
    })
}

/// The hand-written schemas (responses, the inventory's contact schemas)
/// with the derived request schemas over them.
fn all_schemas(inv: &Inventory) -> Value {
    let mut all = schemas(inv);
    if let Some(obj) = all.as_object_mut() {
        obj.extend(derived_request_schemas());
        obj.extend(derived_response_schemas());
    }
    // What only the inventory knows: the purposes consent is recorded for,
    // by staff or on a public form (consent-based ones, and the opt-out of
    // sale and sharing).
    let mut consent: Vec<&str> = inv
        .purposes
        .iter()
        .filter(|(_, p)| p.lawful_basis == steward_domain::inventory::LawfulBasis::Consent)
        .map(|(n, _)| n.as_str())
        .collect();
    consent.push(steward_service::consent::SALE_SHARING);
    for schema in ["PublicConsent", "ConsentInput"] {
        if let Some(purpose) = all
            .pointer_mut(&format!("/{schema}/properties/purpose"))
            .and_then(Value::as_object_mut)
        {
            purpose.insert("enum".into(), json!(consent));
        }
    }
    all
}

/// The whole OpenAPI document.
#[must_use]
pub fn document(inv: &Inventory) -> Value {
    let mut paths = Map::new();
    for (method, path, op) in crate::endpoint_docs() {
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        if let Some(obj) = entry.as_object_mut() {
            obj.insert(method.to_string(), operation(path, &op));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Steward", "version": env!("CARGO_PKG_VERSION"),
                 "description": "A CRM that protects the personal data it holds. Every read of personal data is made for a purpose (Steward-Purpose header) and returns only the fields that purpose needs."},
        "paths": paths,
        "components": {
            "schemas": all_schemas(inv),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        }
    })
}
