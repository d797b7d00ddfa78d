//! Steward's HTTP adapter: the REST API over the service layer, with
//! problem+json errors, request ids, tracing without personal data, body
//! limits, an OpenAPI description generated from the endpoint table, and
//! graceful shutdown; over plain HTTP ([`serve`]) or HTTPS
//! ([`tls::serve_tls`]).

#![recursion_limit = "256"]

pub mod drp;
pub mod extract;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod scim;
pub mod tls;
pub mod views;
pub mod web;

pub use tls::{load_tls_config, serve_tls, TlsConfigError};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderValue, Method};
use axum::routing::{delete, get, patch, post, put, MethodRouter};
use axum::Router;
use steward_service::Service;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::openapi::Op;
use crate::routes::{audit, auth, consent, contacts, crm, dsr, incidents, meta, reports, retention, users};

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    /// Cookies the console sets carry `Secure` (served over HTTPS).
    pub secure_cookies: bool,
}

/// Request ids are UUIDv7, so they sort by arrival.
#[derive(Clone, Copy, Default)]
struct MakeId;

impl MakeRequestId for MakeId {
    fn make_request_id<B>(&mut self, _req: &axum::http::Request<B>) -> Option<RequestId> {
        HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
            .ok()
            .map(RequestId::new)
    }
}

// Query parameters: (name, schema, description). The schema is one of the
// names `openapi::query_schema` knows ("limit", "uuid", "enum:a|b", …); a
// leading "!" makes the parameter required.
const Q_PAGE: &[(&str, &str, &str)] = &[
    ("cursor", "uuid", "next_cursor from the previous page"),
    ("limit", "limit", "page size, 1 to 200 (default 50)"),
];
const Q_INDEX_PAGE: &[(&str, &str, &str)] = &[
    ("cursor", "index", "next_cursor from the previous page"),
    ("limit", "limit", "page size, 1 to 200 (default 50)"),
];
const Q_CONTACTS: &[(&str, &str, &str)] = &[
    ("email", "email", "exact e-mail address"),
    ("phone", "phone", "exact telephone number, any international format"),
    ("q", "words", "whole word of a name; several words must all match"),
    ("cursor", "uuid", "next_cursor from the previous page"),
    ("limit", "limit", "page size, 1 to 200 (default 50)"),
];

const Q_AUDIT: &[(&str, &str, &str)] = &[
    ("subject_id", "uuid", "a contact (data subject) id"),
    ("actor", "actor", "a user id, token id or username"),
    ("from", "date-time", "RFC 3339 date-time, inclusive"),
    ("to", "date-time", "RFC 3339 date-time, exclusive"),
    ("cursor", "index", "next_cursor from the previous page"),
    ("limit", "limit", "page size, 1 to 200 (default 50)"),
];
const Q_INCLUSION: &[(&str, &str, &str)] = &[
    ("index", "!count", "the entry's index"),
    (
        "tree_size",
        "!count",
        "the size of the tree (a signed tree head's tree_size)",
    ),
];
const Q_CONSISTENCY: &[(&str, &str, &str)] = &[
    ("first", "!count", "the smaller tree size"),
    ("second", "!count", "the larger tree size"),
];

const Q_DSR: &[(&str, &str, &str)] = &[(
    "status",
    "enum:open|overdue|due_soon|all",
    "open, overdue, due_soon or all (default)",
)];

const Q_COMPLIANCE: &[(&str, &str, &str)] = &[
    (
        "from",
        "day-or-time",
        "first day (YYYY-MM-DD) or time (RFC 3339); default 30 days ago",
    ),
    (
        "to",
        "day-or-time",
        "last day (included) or time (excluded); default now",
    ),
    (
        "format",
        "enum:json|html|csv",
        "json (default), html (self-contained, with charts) or csv",
    ),
];
const Q_INCIDENTS: &[(&str, &str, &str)] = &[("overdue", "boolean", "only incidents past an open legal deadline")];

const Q_RETENTION: &[(&str, &str, &str)] = &[("days", "days", "how far ahead to look, 0 to 3660 (default 30)")];

const Q_RETENTION_REPORT: &[(&str, &str, &str)] = &[(
    "since",
    "date",
    "first day reported, YYYY-MM-DD (UTC; default a year ago)",
)];

const Q_EXPORT: &[(&str, &str, &str)] = &[("format", "enum:json|csv|vcard", "json (default), csv or vcard")];

const Q_FORMAT: &[(&str, &str, &str)] = &[("format", "enum:json|markdown|html", "json (default), markdown or html")];

const fn op(
    id: &'static str,
    summary: &'static str,
    tag: &'static str,
    purpose: bool,
    request: Option<&'static str>,
    ok: (u16, Option<&'static str>),
    errors: &'static [u16],
) -> Op {
    Op {
        id,
        summary,
        tag,
        auth: true,
        purpose,
        request,
        ok,
        query: &[],
        errors,
    }
}

/// Every endpoint: method, path, handler and its documentation. The router
/// and the OpenAPI description are both built from this one table.
fn endpoints() -> Vec<(Method, &'static str, MethodRouter<AppState>, Op)> {
    use Method as M;
    let body = &[400, 413, 415, 422];
    vec![
        (
            M::GET,
            "/healthz",
            get(meta::healthz),
            Op {
                auth: false,
                ..op(
                    "health",
                    "Readiness: 200 once the database answers",
                    "meta",
                    false,
                    None,
                    (200, Some("Health")),
                    &[503],
                )
            },
        ),
        (
            M::GET,
            "/api/v1/openapi.json",
            get(meta::openapi_json),
            Op {
                auth: false,
                ..op(
                    "openapi",
                    "This description",
                    "meta",
                    false,
                    None,
                    (200, Some("OpenApi")),
                    &[],
                )
            },
        ),
        (
            M::POST,
            "/api/v1/auth/login",
            post(auth::login),
            Op {
                auth: false,
                ..op(
                    "login",
                    "Sign in with username, password and (once enabled) a TOTP or recovery code; returns a session token",
                    "auth",
                    false,
                    Some("LoginInput"),
                    (200, Some("LoginOutput")),
                    &[400, 401, 413, 415, 422, 423, 429],
                )
            },
        ),
        (
            M::POST,
            "/api/v1/contacts",
            post(contacts::create),
            op(
                "createContact",
                "Create a contact (fields minimised against its purposes)",
                "contacts",
                true,
                Some("ContactInput"),
                (201, Some("Contact")),
                &[400, 409, 413, 415, 422],
            ),
        ),
        (
            M::GET,
            "/api/v1/contacts",
            get(contacts::list),
            Op {
                query: Q_CONTACTS,
                ..op(
                    "listContacts",
                    "List or search contacts usable for the purpose",
                    "contacts",
                    true,
                    None,
                    (200, Some("ContactPage")),
                    &[400, 422],
                )
            },
        ),
        (
            M::GET,
            "/api/v1/contacts/{id}",
            get(contacts::get),
            op(
                "getContact",
                "Read a contact: only the fields the purpose needs",
                "contacts",
                true,
                None,
                (200, Some("Contact")),
                &[404],
            ),
        ),
        (
            M::PATCH,
            "/api/v1/contacts/{id}",
            patch(contacts::patch),
            op(
                "updateContact",
                "Change fields (null removes) or purposes",
                "contacts",
                true,
                Some("ContactPatch"),
                (200, Some("Contact")),
                &[400, 404, 409, 413, 415, 422],
            ),
        ),
        (
            M::DELETE,
            "/api/v1/contacts/{id}",
            delete(contacts::delete),
            op(
                "deleteContact",
                "Delete a contact and its interactions",
                "contacts",
                true,
                None,
                (204, None),
                &[404, 409],
            ),
        ),
        (
            M::POST,
            "/api/v1/contacts/{id}/interactions",
            post(contacts::add_interaction),
            op(
                "addInteraction",
                "Record a note, call, e-mail or meeting",
                "contacts",
                true,
                Some("InteractionInput"),
                (201, Some("Interaction")),
                &[404, 400, 413, 415, 422],
            ),
        ),
        (
            M::GET,
            "/api/v1/contacts/{id}/interactions",
            get(contacts::list_interactions),
            Op {
                query: Q_PAGE,
                ..op(
                    "listInteractions",
                    "A contact's interactions",
                    "contacts",
                    true,
                    None,
                    (200, Some("InteractionPage")),
                    &[400, 404, 422],
                )
            },
        ),
        (
            M::GET,
            "/api/v1/contacts/{id}/access-log",
            get(audit::access_log),
            Op {
                query: Q_INDEX_PAGE,
                ..op(
                    "contactAccessLog",
                    "Who accessed this person's data, when and for what purpose (dpo, auditor)",
                    "audit",
                    false,
                    None,
                    (200, Some("AccessLogItemPage")),
                    &[400, 404, 422],
                )
            },
        ),
        (
            M::GET,
            "/api/v1/audit",
            get(audit::list),
            Op {
                query: Q_AUDIT,
                ..op(
                    "listAudit",
                    "Audit entries, oldest first (dpo, auditor)",
                    "audit",
                    false,
                    None,
                    (200, Some("AuditEntryPage")),
                    &[400, 422],
                )
            },
        ),
        (
            M::GET,
            "/api/v1/audit/tree-head",
            get(audit::tree_head),
            op(
                "auditTreeHead",
                "The current signed tree head (RFC 9162 Merkle tree, Ed25519)",
                "audit",
                false,
                None,
                (200, Some("TreeHead")),
                &[],
            ),
        ),
        (
            M::GET,
            "/api/v1/audit/entries/{index}",
            get(audit::entry),
            op(
                "auditEntry",
                "One audit entry and its exact bytes",
                "audit",
                false,
                None,
                (200, Some("AuditEntry")),
                &[404],
            ),
        ),
        (
            M::GET,
            "/api/v1/audit/proof/inclusion",
            get(audit::inclusion),
            Op {
                query: Q_INCLUSION,
                ..op(
                    "auditInclusionProof",
                    "Inclusion proof of an entry in a tree of a given size",
                    "audit",
                    false,
                    None,
                    (200, Some("InclusionProof")),
                    &[400, 422],
                )
            },
        ),
        (
            M::GET,
            "/api/v1/audit/proof/consistency",
            get(audit::consistency),
            Op {
                query: Q_CONSISTENCY,
                ..op(
                    "auditConsistencyProof",
                    "Consistency proof between two tree sizes",
                    "audit",
                    false,
                    None,
                    (200, Some("ConsistencyProof")),
                    &[400, 422],
                )
            },
        ),
        (M::POST, "/api/v1/auth/logout", post(auth::logout), op("logout", "Sign out: revoke this session or token", "auth", false, None, (204, None), &[])),
        (M::GET, "/api/v1/auth/me", get(auth::me), op("me", "Who is signed in, and the state of their second factor", "auth", false, None, (200, Some("Me")), &[])),
        (M::POST, "/api/v1/auth/totp/enroll", post(auth::totp_enroll), op("totpEnroll", "Start TOTP enrolment: a secret and an otpauth:// URI", "auth", false, None, (200, Some("TotpEnrollment")), &[409])),
        (M::POST, "/api/v1/auth/totp/confirm", post(auth::totp_confirm), op("totpConfirm", "Confirm TOTP with a current code; returns one-time recovery codes", "auth", false, Some("TotpConfirm"), (200, Some("TotpConfirmed")), &[400, 409, 413, 415, 422])),
        (M::GET, "/api/v1/auth/sessions", get(auth::sessions), op("listSessions", "Your sessions", "auth", false, None, (200, Some("TokenList")), &[])),
        (M::DELETE, "/api/v1/auth/sessions/{id}", delete(auth::revoke), op("revokeSession", "Revoke one of your sessions", "auth", false, None, (204, None), &[404])),
        (M::GET, "/api/v1/tokens", get(auth::tokens), op("listTokens", "Your API tokens (never the secrets)", "auth", false, None, (200, Some("TokenList")), &[])),
        (M::POST, "/api/v1/tokens", post(auth::create_token), op("createToken", "Create an API token (name, expiry, optional purpose scope); the secret is shown once", "auth", false, Some("TokenInput"), (201, Some("CreatedToken")), &[400, 413, 415, 422])),
        (M::DELETE, "/api/v1/tokens/{id}", delete(auth::revoke), op("revokeToken", "Revoke one of your API tokens", "auth", false, None, (204, None), &[404])),
        (M::GET, "/api/v1/users", get(users::list), op("listUsers", "Users (admin)", "users", false, None, (200, Some("UserList")), &[])),
        (M::POST, "/api/v1/users", post(users::create), op("createUser", "Create a user (admin)", "users", false, Some("NewUser"), (201, Some("User")), &[400, 409, 413, 415, 422])),
        (M::GET, "/api/v1/users/{id}", get(users::get), op("getUser", "A user (admin)", "users", false, None, (200, Some("User")), &[404])),
        (M::PATCH, "/api/v1/users/{id}", patch(users::patch), op("updateUser", "Change role or disable/enable (admin); disabling revokes every token", "users", false, Some("UserPatch"), (200, Some("User")), &[400, 404, 413, 415, 422])),
        (M::POST, "/api/v1/users/{id}/password", post(users::reset_password), op("resetPassword", "Set a new password (admin); signs the user out", "users", false, Some("PasswordInput"), (204, None), &[400, 404, 413, 415, 422])),
        (M::DELETE, "/api/v1/users/{id}/mfa", delete(users::reset_mfa), op("resetMfa", "Remove the user's second factor (admin)", "users", false, None, (204, None), &[404])),
        (M::POST, "/api/v1/users/{id}/revoke-tokens", post(users::revoke_tokens), op("revokeUserTokens", "Revoke every token and session of a user (admin)", "users", false, None, (204, None), &[404])),
        (M::GET, "/api/v1/users/{id}/training", get(users::training), op("listTraining", "Training records (admin, or the user themself)", "users", false, None, (200, Some("TrainingList")), &[404])),
        (M::POST, "/api/v1/users/{id}/training", post(users::add_training), op("addTraining", "Record a completed training (admin)", "users", false, Some("TrainingInput"), (201, Some("Training")), &[400, 404, 413, 415, 422])),
        (M::GET, "/api/v1/settings", get(users::settings), op("getSettings", "Settings (admin)", "users", false, None, (200, Some("Settings")), &[])),
        (M::PUT, "/api/v1/settings", put(users::put_settings), op("putSettings", "Change settings (admin)", "users", false, Some("SettingsInput"), (200, Some("Settings")), &[400, 413, 415, 422])),
        (M::POST, "/api/v1/contacts/{id}/restriction", post(contacts::restriction), op("restrictContact", "Restrict processing (GDPR Art. 18) or lift it (dpo, compliance)", "contacts", true, Some("RestrictionInput"), (200, Some("Restriction")), &[400, 404, 413, 415, 422])),
        (M::POST, "/api/v1/contacts/{id}/consents", post(consent::record), op("recordConsent", "Record a consent given or withdrawn (append-only); with double_opt_in the grant stays pending and a one-time code is e-mailed to the contact through the sealed outbox (returned in the answer only when the server runs with --dev-return-tokens)", "consent", true, Some("ConsentInput"), (201, Some("Consent")), &[400, 404, 413, 415, 422])),
        (M::GET, "/api/v1/contacts/{id}/consents", get(consent::list), op("listConsents", "A contact's consent history and current state per purpose", "consent", true, None, (200, Some("ConsentList")), &[404])),
        (M::GET, "/api/v1/contacts/{id}/consents/{consent_id}/receipt", get(consent::receipt), op("consentReceipt", "Kantara Consent Receipt v1.1 (JSON); its JWS (EdDSA) is in the Steward-Receipt-JWS header", "consent", true, None, (200, Some("ConsentReceipt")), &[404])),
        (M::GET, "/api/v1/contacts/{id}/consents/{consent_id}/receipt.jws", get(consent::receipt_jws), op("consentReceiptJws", "The consent receipt as a compact JWS (application/jose)", "consent", true, None, (200, None), &[404])),
        (M::GET, "/api/v1/receipts/jwks.json", get(consent::jwks), Op { auth: false, ..op("receiptKeys", "The public key that verifies consent receipts (JWKS)", "consent", false, None, (200, Some("Jwks")), &[]) }),
        (M::GET, "/.well-known/jwks.json", get(consent::jwks), Op { auth: false, ..op("wellKnownJwks", "The public key that verifies consent receipts (JWKS)", "consent", false, None, (200, Some("Jwks")), &[]) }),
        (M::GET, "/.well-known/gpc.json", get(consent::gpc_json), Op { auth: false, ..op("gpc", "Global Privacy Control support resource", "consent", false, None, (200, Some("GpcSupport")), &[]) }),
        (M::POST, "/api/v1/public/consents", post(consent::public_consent), Op { auth: false, ..op("publicConsent", "For web forms (no staff login; rate limited): a grant is double opt-in (pending until the code e-mailed to the address comes back; the same answer whether or not the address is known); a withdrawal takes effect at once as an opt-out; Sec-GPC: 1 is honoured as an opt-out of sale and sharing", "public", false, Some("PublicConsent"), (202, Some("PublicConsentAccepted")), &[400, 413, 415, 422, 429]) }),
        (M::POST, "/api/v1/public/consents/confirm", post(consent::confirm), Op { auth: false, ..op("confirmConsent", "Confirm a double opt-in (public or staff) with the one-time code e-mailed to the address; a code works once and expires after consent_confirmation_days", "public", false, Some("ConsentConfirmation"), (200, Some("ConsentConfirmed")), &[400, 404, 413, 415, 422, 429]) }),
        (M::GET, "/api/v1/notices", get(consent::notices), Op { auth: false, ..op("listNotices", "Published privacy-notice versions", "consent", false, None, (200, Some("NoticeList")), &[]) }),
        (M::POST, "/api/v1/notices", post(consent::publish_notice), op("publishNotice", "Publish a privacy-notice version (dpo, admin); material: consents under older versions need renewal", "consent", false, Some("NoticeInput"), (201, Some("Notice")), &[400, 409, 413, 415, 422])),
        (M::GET, "/api/v1/notices/renewals", get(consent::renewals), op("noticeRenewals", "Current consents given under a notice older than the latest material version, with the date they end unless renewed (reconsent_grace_days after its publication)", "consent", false, None, (200, Some("NoticeRenewalList")), &[])),
        (M::POST, "/api/v1/notices/renewals/mail", post(consent::renewal_mail), op("noticeRenewalMail", "Queue a renewal e-mail (what changed, the deadline, where to renew) to each contact whose consent needs renewal (dpo, admin)", "consent", false, None, (202, Some("RenewalMailQueued")), &[403])),
        (M::POST, "/api/v1/contacts/{id}/legal-holds", post(dsr::place_hold), op("placeLegalHold", "Place a legal hold (dpo, compliance): while active, the contact's data may not be erased or deleted (GDPR Art. 17(3))", "dsr", true, Some("ReasonInput"), (201, Some("LegalHold")), &[400, 403, 404, 413, 415, 422])),
        (M::GET, "/api/v1/contacts/{id}/legal-holds", get(dsr::list_holds), op("listLegalHolds", "A contact's legal holds, active and released", "dsr", true, None, (200, Some("LegalHoldList")), &[403, 404])),
        (M::DELETE, "/api/v1/contacts/{id}/legal-holds/{hold_id}", delete(dsr::release_hold), op("releaseLegalHold", "Release a legal hold (the record is kept)", "dsr", true, None, (200, Some("LegalHold")), &[403, 404, 409])),
        (M::POST, "/api/v1/public/dsr", post(dsr::public_create), Op { auth: false, ..op("publicDsr", "For data subjects (no staff login; rate limited): file a request with kind, regime and email; a one-time code is e-mailed to the address (202 whether or not it is known)", "public", false, Some("PublicDsrInput"), (202, Some("PublicDsrAccepted")), &[400, 413, 415, 422, 429]) }),
        (M::POST, "/api/v1/public/dsr/verify", post(dsr::public_verify), Op { auth: false, ..op("publicDsrVerify", "Confirm a request with the e-mailed one-time code: the requester's identity is verified", "public", false, Some("CodeInput"), (200, Some("PublicDsrVerified")), &[400, 404, 409, 413, 415, 422, 429]) }),
        (M::POST, "/api/v1/dsr", post(dsr::create), op("createDsr", "Record a data-subject request (dpo, compliance); due_at is its legal deadline (GDPR one month, CCPA 45 days)", "dsr", true, Some("DsrInput"), (201, Some("Dsr")), &[400, 403, 404, 409, 413, 415, 422])),
        (M::GET, "/api/v1/dsr", get(dsr::list), Op { query: Q_DSR, ..op("listDsr", "Data-subject requests by due date (status=open|overdue|due_soon|all)", "dsr", true, None, (200, Some("DsrList")), &[400, 403, 422]) }),
        (M::GET, "/api/v1/dsr/{id}", get(dsr::get), op("getDsr", "One data-subject request", "dsr", true, None, (200, Some("Dsr")), &[403, 404])),
        (M::POST, "/api/v1/dsr/{id}/verify", post(dsr::verify), op("verifyDsr", "Record that the requester's identity was verified (optional body {method}); the request is then in progress", "dsr", true, Some("VerifyInput"), (200, Some("Dsr")), &[403, 404, 409, 422])),
        (M::POST, "/api/v1/dsr/{id}/extend", post(dsr::extend), op("extendDsr", "Extend the deadline once with a reason; returns the new due_at", "dsr", true, Some("ReasonInput"), (200, Some("Dsr")), &[400, 403, 404, 409, 413, 415, 422])),
        (M::POST, "/api/v1/dsr/{id}/refuse", post(dsr::refuse), op("refuseDsr", "Refuse a request with a stated reason", "dsr", true, Some("ReasonInput"), (200, Some("Dsr")), &[400, 403, 404, 409, 413, 415, 422])),
        (M::POST, "/api/v1/dsr/{id}/fulfill", post(dsr::fulfill), op("fulfillDsr", "Carry out a verified request: access/portability export, rectification, erasure (crypto-shredding), restriction, objection, opt-out of sale", "dsr", true, None, (200, Some("Dsr")), &[403, 404, 409, 422])),
        (M::GET, "/api/v1/dsr/{id}/certificate", get(dsr::certificate), op("dsrCertificate", "Signed certificate of completion for the data subject (what was done, when); compact JWS (EdDSA) in the Steward-Certificate-JWS header, verifiable with /.well-known/jwks.json", "dsr", true, None, (200, Some("DsrCertificate")), &[403, 404, 409])),
        (M::GET, "/api/v1/dsr/{id}/export", get(dsr::export), Op { query: Q_EXPORT, ..op("exportDsr", "Everything held about the subject of an access or portability request: JSON (default), CSV (section,record_id,field,value) or vCard 4.0 of the contact", "dsr", true, None, (200, Some("SubjectExport")), &[400, 403, 404, 409, 422]) }),
        (M::POST, "/api/v1/incidents", post(incidents::create), op("openIncident", "Open a personal-data breach incident (dpo, compliance): title, description, category, source, started/ended, aware_at (the legal clocks start there), regime gdpr|us_state", "incidents", true, Some("IncidentInput"), (201, Some("Incident")), &[400, 403, 413, 415, 422])),
        (M::GET, "/api/v1/incidents", get(incidents::list), Op { query: Q_INCIDENTS, ..op("listIncidents", "The breach register (dpo, auditor), newest first, with each legal clock; overdue=true keeps those past an open deadline", "incidents", false, None, (200, Some("IncidentList")), &[400, 403]) }),
        (M::GET, "/api/v1/incidents/{id}", get(incidents::get), op("getIncident", "One incident with its clocks (remaining time, overdue)", "incidents", false, None, (200, Some("Incident")), &[403, 404])),
        (M::PATCH, "/api/v1/incidents/{id}", patch(incidents::update), op("updateIncident", "Change an incident's description or move its status forward (open, assessed, contained, notified, closed)", "incidents", true, Some("IncidentChange"), (200, Some("Incident")), &[400, 403, 404, 409, 413, 415, 422])),
        (M::GET, "/api/v1/incidents/{id}/timeline", get(incidents::timeline), op("incidentTimeline", "The incident's timeline: who did what when", "incidents", false, None, (200, Some("IncidentTimeline")), &[403, 404])),
        (M::POST, "/api/v1/incidents/{id}/timeline", post(incidents::add_note), op("addIncidentNote", "Add a note to the timeline", "incidents", true, Some("NoteInput"), (201, Some("TimelineItem")), &[400, 403, 404, 413, 415, 422])),
        (M::POST, "/api/v1/incidents/{id}/evidence", post(incidents::add_evidence), op("addIncidentEvidence", "Attach evidence (name, media_type, content_base64 up to 512 KiB), sealed at rest", "incidents", true, Some("EvidenceInput"), (201, Some("EvidenceMeta")), &[400, 403, 404, 413, 415, 422])),
        (M::GET, "/api/v1/incidents/{id}/evidence/{evidence_id}", get(incidents::evidence), op("getIncidentEvidence", "One piece of evidence with its content and SHA-256", "incidents", false, None, (200, Some("Evidence")), &[403, 404])),
        (M::POST, "/api/v1/incidents/{id}/scope", post(incidents::scope), op("scopeIncident", "Scope the breach from the tamper-evident audit log: which people, fields and purposes a user, token, session and/or client address touched in a window (at most 366 days); stored with the signed tree head it was computed against", "incidents", true, Some("ScopeCriteria"), (201, Some("ScopeSnapshot")), &[400, 403, 404, 413, 415, 422])),
        (M::GET, "/api/v1/incidents/{id}/scope", get(incidents::get_scope), op("getIncidentScope", "The latest stored scope", "incidents", false, None, (200, Some("ScopeSnapshot")), &[403, 404])),
        (M::GET, "/api/v1/incidents/{id}/scope/verify", get(incidents::verify_scope), op("verifyIncidentScope", "Recompute the latest scope from the same prefix of the log and check its digest, the head's signature and the log", "incidents", false, None, (200, Some("ScopeVerification")), &[403, 404])),
        (M::POST, "/api/v1/incidents/{id}/risk", post(incidents::risk), op("assessIncidentRisk", "Record the risk assessment: Steward proposes a level from the scope (EDPB 9/2022 criteria); confirm it or override it with a reason", "incidents", true, Some("RiskInput"), (200, Some("RiskOutcome")), &[400, 403, 404, 409, 413, 415, 422])),
        (M::GET, "/api/v1/incidents/{id}/notification", get(incidents::notification), Op { query: Q_FORMAT, ..op("incidentNotification", "The GDPR Art. 33(3) notification to the supervisory authority (format=json|markdown|html)", "incidents", false, None, (200, Some("RegulatorNotification")), &[400, 403, 404]) }),
        (M::POST, "/api/v1/incidents/{id}/notify-regulator", post(incidents::notify_regulator), op("notifyRegulator", "Record that the supervisory authority was notified; later than 72 hours needs delay_reason (Art. 33(1))", "incidents", true, Some("RegulatorInput"), (200, Some("Incident")), &[400, 403, 404, 409, 413, 415, 422])),
        (M::POST, "/api/v1/incidents/{id}/notify-subjects", post(incidents::notify_subjects), op("notifyIncidentSubjects", "Queue the Art. 34 notice, in clear language, to every affected person still held (sealed outbox); erased people get nothing", "incidents", true, Some("SubjectNoticeInput"), (200, Some("SubjectNoticeOutcome")), &[400, 403, 404, 409, 413, 415, 422])),
        (M::POST, "/api/v1/incidents/{id}/containment", post(incidents::contain), op("containIncident", "Containment from the incident: revoke_token, revoke_sessions, disable_user, reset_password or reset_mfa; recorded on the timeline and audited", "incidents", true, Some("ContainmentInput"), (201, Some("TimelineItem")), &[400, 403, 404, 409, 413, 415, 422])),
        (M::GET, "/api/v1/retention/preview", get(retention::preview), Op { query: Q_RETENTION, ..op("retentionPreview", "What the retention schedules will delete or put on review in the next N days (default 30), by rule and action, with counts (dpo, compliance)", "retention", true, None, (200, Some("RetentionPreview")), &[400, 403, 422]) }),
        (M::POST, "/api/v1/retention/run", post(retention::run), op("retentionRun", "Carry out what the retention schedules make due now (a bounded batch; dry_run reports without changing anything)", "retention", true, Some("RetentionRunInput"), (200, Some("RetentionReport")), &[400, 403, 413, 415, 422])),
        (M::GET, "/api/v1/retention/report", get(retention::report), Op { query: Q_RETENTION_REPORT, ..op("retentionReport", "What the retention runs deleted since a date, per run and rule, totals per rule, and the counts anonymisation kept (dpo, compliance)", "retention", true, None, (200, Some("RetentionHistory")), &[400, 403]) }),
        (M::GET, "/api/v1/retention/review", get(retention::review), op("retentionReview", "Contacts and records whose review period has ended: the privacy officer's review list", "retention", true, None, (200, Some("RetentionReviewList")), &[403])),
        (M::GET, "/api/v1/reports/compliance", get(reports::compliance), Op { query: Q_COMPLIANCE, ..op("complianceReport", "The compliance report for a period (dpo, auditor; audited): requests by kind and regime with on-time rate and time to close, consent given and withdrawn per purpose and month, reads of personal data by purpose, role and account with outliers flagged, breaches against the 72-hour clock, retention deletions by rule, training coverage and the self-audit, computed against a signed audit tree head it carries", "reports", false, None, (200, Some("ComplianceReport")), &[400, 403, 422]) }),
        (M::GET, "/api/v1/reports/security", get(reports::security), op("securityReport", "The self-audit of this installation (steward doctor; admin, auditor, dpo): named controls mapped to GDPR Art. 32(1) and ISO/IEC 27001:2022 Annex A, each pass/warn/fail with evidence and a fix, and a score out of 100", "reports", false, None, (200, Some("SecurityReport")), &[403])),
        (M::GET, "/api/v1/reports/art30", get(consent::art30), Op { query: Q_FORMAT, ..op("art30", "GDPR Art. 30 record of processing activities, from the data inventory (format=json|markdown|html)", "reports", false, None, (200, Some("RecordOfProcessing")), &[400]) }),
        (
            M::POST,
            "/api/v1/organizations",
            post(crm::create_organization),
            op(
                "createOrganization",
                "Create an organisation",
                "organizations",
                false,
                Some("OrganizationInput"),
                (201, Some("Organization")),
                body,
            ),
        ),
        (
            M::GET,
            "/api/v1/organizations",
            get(crm::list_organizations),
            Op {
                query: Q_PAGE,
                ..op(
                    "listOrganizations",
                    "List organisations",
                    "organizations",
                    false,
                    None,
                    (200, Some("OrganizationPage")),
                    &[400, 422],
                )
            },
        ),
        (
            M::GET,
            "/api/v1/organizations/{id}",
            get(crm::get_organization),
            op(
                "getOrganization",
                "Read an organisation",
                "organizations",
                false,
                None,
                (200, Some("Organization")),
                &[404],
            ),
        ),
        (
            M::POST,
            "/api/v1/deals",
            post(crm::create_deal),
            op(
                "createDeal",
                "Create a deal",
                "deals",
                true,
                Some("DealInput"),
                (201, Some("Deal")),
                body,
            ),
        ),
        (
            M::GET,
            "/api/v1/deals",
            get(crm::list_deals),
            Op {
                query: Q_PAGE,
                ..op(
                    "listDeals",
                    "List deals",
                    "deals",
                    true,
                    None,
                    (200, Some("DealPage")),
                    &[400, 422],
                )
            },
        ),
        (
            M::GET,
            "/api/v1/deals/{id}",
            get(crm::get_deal),
            op(
                "getDeal",
                "Read a deal",
                "deals",
                true,
                None,
                (200, Some("Deal")),
                &[404],
            ),
        ),
    ]
}

/// The documentation half of the endpoint table.
pub fn endpoint_docs() -> Vec<(&'static str, &'static str, Op)> {
    endpoints()
        .into_iter()
        .map(|(m, p, _, op)| {
            let method = match m {
                Method::GET => "get",
                Method::POST => "post",
                Method::PATCH => "patch",
                Method::DELETE => "delete",
                Method::PUT => "put",
                _ => "options",
            };
            (method, p, op)
        })
        .collect()
}

/// Transport-dependent choices for [`router_with`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RouterOptions {
    /// Send `Strict-Transport-Security` ([`tls::HSTS_VALUE`]) on every
    /// response. Only meaningful, and only set, when serving HTTPS.
    pub hsts: bool,
}

/// The application router with all middleware, for plain HTTP.
pub fn router(service: Arc<Service>) -> Router {
    router_with(service, RouterOptions::default())
}

/// The application router with all middleware and the given options.
pub fn router_with(service: Arc<Service>, options: RouterOptions) -> Router {
    let mut by_path: Vec<(&'static str, MethodRouter<AppState>)> = Vec::new();
    for (_, path, handler, _) in endpoints() {
        if let Some((_, existing)) = by_path.iter_mut().find(|(p, _)| *p == path) {
            let merged = std::mem::take(existing).merge(handler);
            *existing = merged;
        } else {
            by_path.push((path, handler));
        }
    }
    let mut app = Router::new();
    for (path, handler) in by_path {
        app = app.route(path, handler.fallback(meta::method_not_allowed));
    }
    let app = app
        .merge(web::routes())
        .merge(scim::routes())
        .merge(drp::routes())
        .fallback(meta::not_found)
        .with_state(AppState {
            service,
            secure_cookies: options.hsts,
        })
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .layer(
            // Spans carry the route template, never the raw URI: query
            // strings such as ?email= hold personal data.
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("unmatched", MatchedPath::as_str);
                    let id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), route, request_id = id)
                })
                .on_request(())
                .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeId));
    if options.hsts {
        // Outermost, so that every response gets it, errors included.
        app.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(tls::HSTS_VALUE),
        ))
    } else {
        app
    }
}

/// How long in-flight requests may take to finish after shutdown begins.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish (at most [`SHUTDOWN_GRACE`]) and closes the service,
/// committing queued writes. Every acknowledged write was committed before
/// its response was sent.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(Arc::clone(&service));
    let begun = Arc::new(tokio::sync::Notify::new());
    let signal = Arc::clone(&begun);
    let server = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        signal.notify_one();
    });
    let deadline = async {
        begun.notified().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let result = tokio::select! {
        r = server => r,
        () = deadline => {
            tracing::warn!("requests still open after the shutdown grace period; closing");
            Ok(())
        }
    };
    service.shutdown().await;
    result
}
