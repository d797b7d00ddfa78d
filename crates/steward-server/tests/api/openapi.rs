//! The OpenAPI document's request bodies: every operation that takes a
//! body names a typed schema (derived from the handler's own type, or the
//! inventory's contact schema), never a bare object; the schemas compile as
//! JSON Schema 2020-12, and real request bodies — the README tour's — are
//! valid against them while bodies the server refuses are not.

use std::cell::RefCell;
use std::collections::HashMap;

use serde_json::{json, Value};
use steward_domain::Inventory;
use steward_server::openapi::{derived_request_schemas, derived_response_schemas, document};

fn doc() -> Value {
    document(&Inventory::default_inventory())
}

/// Request schemas that come from the data inventory instead of a type.
const FROM_INVENTORY: [&str; 2] = ["ContactInput", "ContactPatch"];

#[test]
fn every_request_body_is_typed() {
    let doc = doc();
    let derived = derived_request_schemas();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut bodies = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(body) = op.get("requestBody") else {
                continue;
            };
            bodies += 1;
            let reference = body["content"]["application/json"]["schema"]["$ref"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: the body names a schema"));
            let name = reference.trim_start_matches("#/components/schemas/");
            assert_ne!(
                name, "Object",
                "{method} {path}: the body is described as a bare object"
            );
            assert!(
                derived.contains_key(name) || FROM_INVENTORY.contains(&name),
                "{method} {path}: {name} is not derived from the handler's type"
            );
            let schema = &schemas[name];
            assert_eq!(schema["type"], "object", "{method} {path}: {name}");
            assert!(
                schema["properties"].as_object().is_some_and(|p| !p.is_empty()),
                "{method} {path}: {name} lists its properties"
            );
        }
    }
    assert!(bodies >= 35, "request bodies found: {bodies}");
    // Deny-unknown-fields types say so.
    assert_eq!(schemas["DsrInput"]["additionalProperties"], false);
    assert_eq!(
        schemas["DsrInput"]["required"],
        json!(["kind", "regime", "subject"]),
        "fields with defaults are not required"
    );
}

struct Validator {
    schemas: boon::Schemas,
    compiler: boon::Compiler,
    compiled: HashMap<String, boon::SchemaIndex>,
}

const LOC: &str = "urn:steward:openapi";

impl Validator {
    fn new() -> Self {
        let mut compiler = boon::Compiler::new();
        compiler.set_default_draft(boon::Draft::V2020_12);
        compiler.enable_format_assertions();
        compiler.add_resource(LOC, doc()).unwrap();
        Self {
            schemas: boon::Schemas::new(),
            compiler,
            compiled: HashMap::new(),
        }
    }

    fn index(&mut self, schema: &str) -> boon::SchemaIndex {
        if let Some(i) = self.compiled.get(schema) {
            return *i;
        }
        let at = format!("{LOC}#/components/schemas/{schema}");
        let index = self
            .compiler
            .compile(&at, &mut self.schemas)
            .unwrap_or_else(|e| panic!("{schema} does not compile: {e:#}"));
        self.compiled.insert(schema.to_string(), index);
        index
    }

    fn valid(&mut self, schema: &str, body: &Value) -> bool {
        self.check(schema, body).is_ok()
    }

    fn check(&mut self, schema: &str, body: &Value) -> Result<(), String> {
        let index = self.index(schema);
        self.schemas.validate(body, index).map_err(|e| format!("{e:#}"))
    }
}

/// The template of the document's path `path` matches, like the router:
/// the one with the most literal segments among those that fit.
fn template_of<'d>(doc: &'d Value, path: &str) -> Option<&'d str> {
    let segs: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()?
        .keys()
        .filter_map(|t| {
            let ts: Vec<&str> = t.split('/').collect();
            if ts.len() != segs.len() {
                return None;
            }
            let mut literal = 0;
            for (a, b) in ts.iter().zip(&segs) {
                if a.starts_with('{') {
                    continue;
                }
                if a != b {
                    return None;
                }
                literal += 1;
            }
            Some((literal, t.as_str()))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, t)| t)
}

/// The schema the document names for the answer `status` of `method
/// path` in `media`, when it is one derived from the handler's type (or the
/// problem document): those are checked on every call the API tests make.
fn checked_schema(doc: &Value, method: &str, path: &str, status: u16, media: &str) -> Option<String> {
    let template = template_of(doc, path)?;
    let response = &doc["paths"][template][method.to_ascii_lowercase()]["responses"][status.to_string()];
    let name = response["content"][media]["schema"]["$ref"]
        .as_str()?
        .trim_start_matches("#/components/schemas/");
    (name != "Object").then(|| name.to_string())
}

/// Checks a real answer against the document: `Err` names the schema and
/// what does not match. Answers with no checked schema pass.
pub fn check_response(method: &str, path: &str, status: u16, content_type: &str, text: &str) -> Result<(), String> {
    thread_local! {
        // boon's compiler is not Send: one checker per test thread.
        static CHECKER: RefCell<Option<(Value, Validator)>> = const { RefCell::new(None) };
    }
    CHECKER.with(|c| {
        let mut c = c.borrow_mut();
        let (doc, validator) = c.get_or_insert_with(|| (doc(), Validator::new()));
        check_with(doc, validator, method, path, status, content_type, text)
    })
}

fn check_with(
    doc: &Value,
    validator: &mut Validator,
    method: &str,
    path: &str,
    status: u16,
    content_type: &str,
    text: &str,
) -> Result<(), String> {
    let media = content_type.split(';').next().unwrap_or_default().trim();
    let Some(schema) = checked_schema(doc, method, path, status, media) else {
        return Ok(());
    };
    let body: Value = serde_json::from_str(text).map_err(|e| format!("{schema}: the body is not JSON ({e})"))?;
    validator.check(&schema, &body).map_err(|e| format!("{schema}: {e}"))
}

#[test]
fn real_request_bodies_are_valid_and_refused_ones_are_not() {
    let mut v = Validator::new();
    // Every derived schema compiles.
    for name in derived_request_schemas().keys() {
        let at = format!("{LOC}#/components/schemas/{name}");
        v.compiler
            .compile(&at, &mut v.schemas)
            .unwrap_or_else(|e| panic!("{name} does not compile: {e:#}"));
    }
    let valid = [
        (
            "LoginInput",
            json!({"username": "alice", "password": "a-long-password"}),
        ),
        (
            "OrganizationInput",
            json!({"name": "Analytical Engines Ltd", "domain": "engines.example"}),
        ),
        (
            "DealInput",
            json!({"title": "Difference engine", "stage": "proposal", "amount": 1200.50, "currency": "GBP",
                   "organization_id": "01a24fec-9576-7475-a6d9-ee9ca613bde8"}),
        ),
        (
            "DealInput",
            json!({"title": "Engine", "amount": "99.95", "currency": "EUR"}),
        ),
        (
            "InteractionInput",
            json!({"kind": "call", "summary": "Asked for a quote", "occurred_at": "2026-01-31T09:30:00Z"}),
        ),
        (
            "NoticeInput",
            json!({"version": "2026-01", "text": "We e-mail our newsletter.", "material": true}),
        ),
        (
            "ConsentInput",
            json!({"purpose": "marketing_email", "granted": true, "source": "phone", "notice_version": "2026-01",
                   "evidence": "agreed on call"}),
        ),
        (
            "DsrInput",
            json!({"kind": "access", "regime": "gdpr", "subject": {"email": "ada@example.com"},
                   "received_at": "2026-01-31T09:00:00+01:00"}),
        ),
        ("VerifyInput", json!({"method": "ID checked at the counter"})),
        (
            "PublicDsrInput",
            json!({"kind": "erasure", "regime": "gdpr", "email": "ada@example.com"}),
        ),
        (
            "IncidentInput",
            json!({"title": "Sales token leaked", "description": "A token was pushed to a public repository.",
                   "category": "confidentiality", "source": "compromised_account",
                   "started_at": "2026-12-01T08:00:00+01:00", "aware_at": "2026-12-02T09:30:00+01:00"}),
        ),
        (
            "ScopeCriteria",
            json!({"token": "01a24fec-93f3-7760-9fc3-d2bdadd88635", "from": "2026-12-01T07:00:00Z"}),
        ),
        ("RiskInput", json!({})),
        (
            "ContainmentInput",
            json!({"action": "revoke_token", "token": "01a24fec-93f3-7760-9fc3-d2bdadd88635"}),
        ),
        ("RegulatorInput", json!({"reference": "DPA-2026-0042"})),
        (
            "SubjectNoticeInput",
            json!({"what_happened": "An access key to our CRM was published by mistake."}),
        ),
        ("IncidentChange", json!({"status": "closed"})),
        ("RetentionRunInput", json!({"dry_run": true})),
        (
            "SettingsInput",
            json!({"require_mfa": true, "lockout_threshold": 5, "key_backup_verified_on": "2026-12-01"}),
        ),
        (
            "NewUser",
            json!({"username": "dora", "role": "dpo", "password": "another-long-password"}),
        ),
        (
            "TrainingInput",
            json!({"course": "GDPR basics", "completed_on": "2026-11-02"}),
        ),
        (
            "ContactInput",
            json!({"given_name": "Ada", "email": "ada@example.com", "purposes": ["sales"]}),
        ),
        (
            "PublicConsent",
            json!({"email": "ada@example.com", "purpose": "marketing_email", "granted": true}),
        ),
        (
            "PublicConsent",
            json!({"email": "ada@example.com", "purpose": "sale_sharing", "granted": false}),
        ),
    ];
    for (schema, body) in &valid {
        assert!(v.valid(schema, body), "{schema} accepts {body}");
    }
    let refused = [
        ("DsrInput", json!({"kind": "access", "regime": "gdpr"})),
        ("DsrInput", json!({"kind": "teleport", "regime": "gdpr", "subject": {}})),
        (
            "DsrInput",
            json!({"kind": "access", "regime": "gdpr", "subject": {}, "extra": 1}),
        ),
        (
            "IncidentInput",
            json!({"title": "", "description": "x", "category": "confidentiality",
                                 "source": "other", "aware_at": "2026-12-02T09:30:00Z"}),
        ),
        (
            "IncidentInput",
            json!({"title": "t", "description": "x", "category": "confidentiality",
                                 "source": "other", "aware_at": "yesterday"}),
        ),
        ("InteractionInput", json!({"kind": "telegram", "summary": "x"})),
        ("ContainmentInput", json!({"action": "format_disk"})),
        (
            "PublicDsrInput",
            json!({"kind": "erasure", "regime": "gdpr", "email": "not an address"}),
        ),
        (
            "NewUser",
            json!({"username": "Dora!", "role": "dpo", "password": "another-long-password"}),
        ),
        (
            "NewUser",
            json!({"username": "dora", "role": "dpo", "password": "short"}),
        ),
        ("SettingsInput", json!({"lockout_threshold": 0})),
        ("SettingsInput", json!({"no_such_setting": true})),
        ("TokenInput", json!({"expires_in_days": 0})),
        (
            "ContactInput",
            json!({"given_name": "Ada", "purposes": ["sales"], "favourite_colour": "blue"}),
        ),
        // Found by schemathesis: a public form may not ask for a purpose
        // that is not consent-based, nor file a rectification.
        (
            "PublicConsent",
            json!({"email": "ada@example.com", "purpose": "sales", "granted": true}),
        ),
        (
            "PublicDsrInput",
            json!({"kind": "rectification", "regime": "ccpa", "email": "ada@example.com"}),
        ),
    ];
    for (schema, body) in &refused {
        assert!(!v.valid(schema, body), "{schema} refuses {body}");
    }
}

/// Every response a handler serialises from a type names that type's
/// derived schema; the operations still answering a bare object are the
/// listed ones, so a new operation cannot add another.
#[test]
fn responses_name_derived_schemas() {
    let doc = doc();
    let derived = derived_response_schemas();
    let requests = derived_request_schemas();
    for name in derived.keys() {
        assert!(
            !requests.contains_key(name) || requests[name] == derived[name],
            "{name} is both a request and a different response schema"
        );
    }
    let mut untyped = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, r) in op["responses"].as_object().unwrap() {
                let Some(reference) = r["content"]["application/json"]["schema"]["$ref"].as_str() else {
                    continue;
                };
                let name = reference.trim_start_matches("#/components/schemas/");
                assert!(
                    doc["components"]["schemas"].get(name).is_some(),
                    "{method} {path} {status}: {name} is defined"
                );
                if name == "Object" {
                    untyped.push(format!("{method} {path}"));
                }
            }
        }
    }
    assert!(untyped.is_empty(), "untyped responses: {untyped:?}");
    for (op, status, schema) in [
        ("get /api/v1/retention/preview", 200, "RetentionPreview"),
        ("post /api/v1/retention/run", 200, "RetentionReport"),
        ("get /api/v1/retention/report", 200, "RetentionHistory"),
        ("get /api/v1/retention/review", 200, "RetentionReviewList"),
        ("get /api/v1/reports/compliance", 200, "ComplianceReport"),
        ("get /api/v1/reports/security", 200, "SecurityReport"),
        ("get /api/v1/incidents/{id}/timeline", 200, "IncidentTimeline"),
        ("post /api/v1/incidents/{id}/scope", 201, "ScopeSnapshot"),
        ("post /api/v1/incidents/{id}/risk", 200, "RiskOutcome"),
    ] {
        let (method, path) = op.split_once(' ').unwrap();
        assert_eq!(
            checked_schema(&doc, method, path, status, "application/json").as_deref(),
            Some(schema),
            "{op}"
        );
        assert_eq!(derived[schema]["type"], "object", "{schema}");
    }
    // The matcher prefers literal segments, like the router.
    assert_eq!(
        template_of(&doc, "/api/v1/reports/security"),
        Some("/api/v1/reports/security")
    );
}

/// The checker catches an answer that does not match its schema.
#[test]
fn the_response_checker_refuses_a_wrong_answer() {
    let ok = json!({"days": 30, "items": [{"record": "contact", "rule": "r", "action": "erase", "count": 1, "enforced": true}]});
    let path = "/api/v1/retention/preview";
    assert_eq!(
        check_response("GET", path, 200, "application/json", &ok.to_string()),
        Ok(())
    );
    let wrong = json!({"days": "thirty", "items": []});
    assert!(check_response("GET", path, 200, "application/json", &wrong.to_string()).is_err());
    let missing = json!({"days": 30, "items": [{"record": "contact"}]});
    assert!(check_response("GET", path, 200, "application/json", &missing.to_string()).is_err());
    assert!(check_response("GET", path, 403, "application/problem+json", "{}").is_err());
    assert!(check_response("GET", path, 200, "application/json", "not json").is_err());
}

/// Every example in the document is valid against the schema it
/// illustrates, and each names a real operation.
#[test]
fn examples_are_valid_against_their_schemas() {
    let doc = doc();
    let mut validator = Validator::new();
    let mut seen = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let media = &op["requestBody"]["content"]["application/json"];
            let Some(example) = media.get("example") else {
                continue;
            };
            let name = media["schema"]["$ref"]
                .as_str()
                .unwrap()
                .trim_start_matches("#/components/schemas/");
            validator
                .check(name, example)
                .unwrap_or_else(|e| panic!("{method} {path}: the example is not a valid {name}: {e}"));
            seen.push(op["operationId"].as_str().unwrap().to_string());
        }
    }
    for id in [
        "login",
        "createContact",
        "recordConsent",
        "publicDsr",
        "createDsr",
        "openIncident",
        "scopeIncident",
    ] {
        assert!(seen.iter().any(|s| s == id), "{id} has an example");
    }
    for id in ["nosuchOperation", "listContacts"] {
        assert!(steward_server::openapi::request_example(id).is_none());
    }
    assert!(seen.len() >= 18, "examples: {seen:?}");
}

crate::stories!(the_contact_example_creates_a_contact);

/// The document's example contact is one the server accepts as it stands.
async fn the_contact_example_creates_a_contact(app: &crate::helpers::TestApp) {
    let example = steward_server::openapi::request_example("createContact").unwrap();
    let r = app.post("/api/v1/contacts", "sales", example.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["email"], example["email"]);
    let example = steward_server::openapi::request_example("openIncident").unwrap();
    let r = app.post("/api/v1/incidents", "dpo", example).await;
    assert_eq!(r.status, 201, "{}", r.text);
}
