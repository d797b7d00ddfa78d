//! The privacy portal for data subjects (no staff login): requests with
//! e-mail verification, their status, the download of an export, consent
//! per purpose, the privacy notice. Answers are the same for addresses
//! Steward holds and for others, and the service rate-limits every step.
//! `Sec-GPC: 1` is honoured and said so.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use steward_domain::inventory::LawfulBasis;
use steward_service::consent::{ConsentInput, SALE_SHARING};
use steward_service::ServiceError;

use super::html::{input, input_with_id, notice, page, respond, sentence, when, Errors, Form};
use super::text as t;
use crate::extract::client_address;
use crate::problem::ApiError;
use crate::AppState;

const KINDS: [(&str, &str); 7] = [
    ("access", (t::TELL_ME_WHAT_YOU_HOLD)),
    ("portability", (t::GIVE_ME_MY_DATA_IN)),
    ("rectification", (t::CORRECT_SOMETHING_YOU_HOLD_ABOUT)),
    ("erasure", (t::ERASE_MY_DATA_ERASURE)),
    ("restriction", (t::RESTRICT_THE_USE_OF_MY)),
    ("objection", (t::STOP_USING_MY_DATA_FOR)),
    ("opt_out_of_sale", (t::DO_NOT_SELL_OR_SHARE)),
];

fn gpc(headers: &HeaderMap) -> bool {
    headers.get("sec-gpc").is_some_and(|v| v.as_bytes() == b"1")
}

fn gpc_banner(headers: &HeaderMap) -> Markup {
    html! { @if gpc(headers) { div.alert.ok #gpc role="status" { p { (t::GPC_APPLIED) } } } }
}

fn portal(s: &AppState, title: &str, headers: &HeaderMap, body: Markup) -> Markup {
    page(s, None, title, "/privacy", html! { (gpc_banner(headers)) (body) })
}

fn status_of(e: &ApiError) -> StatusCode {
    StatusCode::from_u16(e.problem().status).unwrap_or(StatusCode::BAD_REQUEST)
}

/// Consent-based purposes (and the opt-out of sale and sharing).
fn consent_purposes(s: &AppState) -> Vec<String> {
    let mut out: Vec<String> = s
        .service
        .inventory()
        .purposes
        .iter()
        .filter(|(_, p)| p.lawful_basis == LawfulBasis::Consent)
        .map(|(n, _)| n.clone())
        .collect();
    out.push(SALE_SHARING.to_string());
    out
}

fn request_form(s: &AppState, errors: &Errors) -> Markup {
    let fields: Vec<(String, String)> = s
        .service
        .inventory()
        .personal_fields("contact")
        .map(|(name, _)| (name.to_string(), name.replace('_', " ")))
        .collect();
    let change_error = errors.field("changes");
    html! {
        form.card #request-form method="post" action="/privacy/request" {
            (input_with_id("request-email", "email", t::YOUR_EMAIL, "email", "", errors.field("email")))
            fieldset.field {
                legend { (t::REQUEST_KIND) }
                @for (i, (k, label)) in KINDS.iter().enumerate() {
                    label.check { input type="radio" name="kind" value=(k) checked[i == 0]; " " (label) }
                    br;
                }
                @if let Some(e) = errors.field("kind") { p.error { (e) } }
            }
            fieldset.field {
                legend { (t::FOR_A_CORRECTION_WHAT_IS) }
                label for="change-field" { (t::WHAT_TO_CORRECT) }
                select id="change-field" name="change_field" {
                    @for (name, label) in &fields { option value=(name) { (label) } }
                }
                label for="change-value" { (t::THE_CORRECT_VALUE) }
                input id="change-value" name="change_value" type="text" autocomplete="off";
                @if let Some(e) = change_error { p.error { (e) } }
            }
            div.field {
                label for="f-regime" { (t::REGIME) }
                select id="f-regime" name="regime" {
                    option value="gdpr" { "GDPR (EU, EEA, UK)" }
                    option value="ccpa" { (t::CCPA_CPRA_CALIFORNIA) }
                }
            }
            button type="submit" { (t::SEND) }
        }
    }
}

fn code_form(id: &str, action: &str, label: &str) -> Markup {
    html! {
        form.card method="post" action=(action) {
            (input_with_id(id, "code", label, "text", "", None))
            button type="submit" { (t::SEND) }
        }
    }
}

fn consent_form(s: &AppState, version: Option<&str>) -> Markup {
    html! {
        form.card #consent-form method="post" action="/privacy/consent" {
            (input_with_id("consent-email", "email", t::YOUR_EMAIL, "email", "", None))
            div.field {
                label for="f-purpose" { (t::PURPOSE) }
                select id="f-purpose" name="purpose" { @for p in consent_purposes(s) { option value=(p) { (p.replace('_', " ")) } } }
            }
            @if let Some(v) = version {
                input type="hidden" name="notice_version" value=(v);
                p.hint { (t::UNDER_NOTICE) " " (v) "." }
            }
            button type="submit" name="choice" value="grant" { (t::GRANT) }
            " "
            button.secondary type="submit" name="choice" value="withdraw" { (t::WITHDRAW) }
        }
    }
}

pub async fn home(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let notices = s.service.list_notices().await.unwrap_or_default();
    let current = notices.last();
    let body = html! {
        p { (t::PORTAL_INTRO) }
        p { a href="/privacy/notice" { (t::NOTICE) } @if let Some(n) = current { " (version " (n.version) ")" } }
        section aria-labelledby="req-h" { h2 id="req-h" { (t::MAKE_REQUEST) } (request_form(&s, &Errors::none())) }
        section aria-labelledby="verify-h" { h2 id="verify-h" { (t::VERIFY_CODE) } (code_form("verify-code", "/privacy/verify", t::THE_CODE)) }
        section aria-labelledby="consent-h" { h2 id="consent-h" { (t::MANAGE_CONSENT) } (consent_form(&s, current.map(|n| n.version.as_str()))) }
        section aria-labelledby="status-h" {
            h2 id="status-h" { (t::STATUS) }
            form.card method="post" action="/privacy/status" {
                (input("reference", t::REFERENCE, "text", "", None))
                (input_with_id("status-email", "email", t::YOUR_EMAIL, "email", "", None))
                button type="submit" { (t::SEND) }
            }
        }
        section aria-labelledby="dl-h" {
            h2 id="dl-h" { (t::DOWNLOAD) }
            p.hint { (t::DOWNLOAD_HINT) }
            (code_form("download-code", "/privacy/download", t::THE_CODE))
        }
    };
    respond(StatusCode::OK, portal(&s, t::PORTAL, &headers, body))
}

pub async fn request(
    State(s): State<AppState>,
    headers: HeaderMap,
    parts: axum::http::request::Parts,
    form: Form,
) -> Response {
    let kind = form.get("kind").unwrap_or("");
    let regime = form.get("regime").unwrap_or("gdpr");
    let email = form.get("email").unwrap_or("").trim();
    let changes = match (kind, form.text("change_field"), form.text("change_value")) {
        ("rectification", Some(f), Some(v)) => {
            let mut m = serde_json::Map::new();
            m.insert(f.to_string(), serde_json::Value::String(v.to_string()));
            Some(m)
        }
        _ => None,
    };
    match s
        .service
        .public_dsr_with(kind, regime, email, changes, client_address(&parts))
        .await
    {
        Ok(()) => {
            let body = html! {
                (notice(t::CHECK_MAIL))
                (code_form("verify-code", "/privacy/verify", t::VERIFY_CODE))
            };
            respond(StatusCode::ACCEPTED, portal(&s, t::MAKE_REQUEST, &headers, body))
        }
        Err(e) => {
            let e = ApiError::from(e);
            let errors = Errors::from_api(&e, &["email", "kind", "changes"]);
            let body = html! {
                div.alert.error role="alert" { @for m in &errors.general { p { (m) } } @if errors.general.is_empty() { p { (t::FIX_ERRORS) } } }
                (request_form(&s, &errors))
            };
            respond(status_of(&e), portal(&s, t::MAKE_REQUEST, &headers, body))
        }
    }
}

pub async fn verify(
    State(s): State<AppState>,
    headers: HeaderMap,
    parts: axum::http::request::Parts,
    form: Form,
) -> Response {
    let code = form.get("code").unwrap_or("");
    match s.service.verify_public_dsr(code, client_address(&parts)).await {
        Ok(id) => {
            let body = html! {
                (notice(t::VERIFIED))
                p { (t::REFERENCE) ": " code #reference { (id) } }
            };
            respond(StatusCode::OK, portal(&s, t::VERIFY_CODE, &headers, body))
        }
        Err(e) => code_error(&s, &headers, e, "/privacy/verify", t::VERIFY_CODE),
    }
}

fn code_error(s: &AppState, headers: &HeaderMap, e: ServiceError, action: &str, title: &str) -> Response {
    let (status, message) = match e {
        ServiceError::NotFound(_) => (StatusCode::NOT_FOUND, t::BAD_CODE.to_string()),
        other => {
            let e = ApiError::from(other);
            (status_of(&e), sentence(&e.problem().detail))
        }
    };
    let body = html! {
        div.alert.error role="alert" { p { (message) } }
        (code_form("code", action, t::THE_CODE))
    };
    respond(status, portal(s, title, headers, body))
}

pub async fn status(
    State(s): State<AppState>,
    headers: HeaderMap,
    parts: axum::http::request::Parts,
    form: Form,
) -> Response {
    let reference = form.get("reference").unwrap_or("");
    let email = form.get("email").unwrap_or("").trim();
    match s
        .service
        .public_dsr_status(reference, email, client_address(&parts))
        .await
    {
        Ok(Some(st)) => {
            let body = html! {
                dl.record #request-status {
                    dt { (t::REFERENCE) } dd { (st.id) }
                    dt { (t::KIND) } dd { (st.kind) }
                    dt { (t::STATUS_2) } dd.status { (st.status) }
                    dt { (t::RECEIVED) } dd { (when(st.received_at)) }
                    dt { (t::DUE) } dd { (when(st.due_at)) }
                    @if let Some(c) = st.completed_at { dt { (t::COMPLETED) } dd { (when(c)) } }
                }
            };
            respond(StatusCode::OK, portal(&s, t::STATUS, &headers, body))
        }
        Ok(None) => {
            let body = html! { div.alert.error role="alert" { p { (t::NO_SUCH_REQUEST) } } };
            respond(StatusCode::NOT_FOUND, portal(&s, t::STATUS, &headers, body))
        }
        Err(e) => {
            let e = ApiError::from(e);
            let body = html! { div.alert.error role="alert" { p { (sentence(&e.problem().detail)) } } };
            respond(status_of(&e), portal(&s, t::STATUS, &headers, body))
        }
    }
}

pub async fn download(
    State(s): State<AppState>,
    headers: HeaderMap,
    parts: axum::http::request::Parts,
    form: Form,
) -> Response {
    let code = form.get("code").unwrap_or("");
    match s.service.public_download(code, client_address(&parts)).await {
        Ok((id, bundle)) => (
            [
                (header::CONTENT_TYPE, "application/json".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"my-data-{id}.json\""),
                ),
            ],
            serde_json::to_vec_pretty(&bundle).unwrap_or_default(),
        )
            .into_response(),
        Err(e) => code_error(&s, &headers, e, "/privacy/download", t::DOWNLOAD),
    }
}

pub async fn consent(
    State(s): State<AppState>,
    headers: HeaderMap,
    parts: axum::http::request::Parts,
    form: Form,
) -> Response {
    let email = form.get("email").unwrap_or("").trim().to_string();
    let granted = form.get("choice") != Some("withdraw");
    let input = ConsentInput {
        purpose: form.get("purpose").unwrap_or("").to_string(),
        granted,
        notice_version: form.text("notice_version").map(str::to_string),
        source: Some("privacy portal".into()),
        ip: client_address(&parts),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(300).collect()),
        double_opt_in: true,
        evidence: None,
    };
    match s.service.public_consent(&email, input, gpc(&headers)).await {
        Ok(_) => {
            let body = html! {
                @if granted {
                    (notice(t::CONSENT_PENDING))
                    (code_form("confirm-code", "/privacy/consent/confirm", t::THE_CODE))
                } @else {
                    (notice(t::CONSENT_WITHDRAWN))
                }
            };
            respond(StatusCode::ACCEPTED, portal(&s, t::MANAGE_CONSENT, &headers, body))
        }
        Err(e) => {
            let e = ApiError::from(e);
            let errors = Errors::from_api(&e, &[]);
            let body = html! { div.alert.error role="alert" { @for m in &errors.general { p { (m) } } } };
            respond(status_of(&e), portal(&s, t::MANAGE_CONSENT, &headers, body))
        }
    }
}

pub async fn confirm_consent(
    State(s): State<AppState>,
    headers: HeaderMap,
    parts: axum::http::request::Parts,
    form: Form,
) -> Response {
    let code = form.get("code").unwrap_or("");
    match s.service.confirm_consent(code, client_address(&parts)).await {
        Ok(()) => respond(
            StatusCode::OK,
            portal(&s, t::MANAGE_CONSENT, &headers, notice(t::CONSENT_CONFIRMED)),
        ),
        Err(e) => code_error(&s, &headers, e, "/privacy/consent/confirm", t::MANAGE_CONSENT),
    }
}

pub async fn notice_page(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let notices = s.service.list_notices().await.unwrap_or_default();
    let body = html! {
        @match notices.last() {
            Some(n) => {
                p.hint { (t::VERSION_2) (n.version) ", published " (when(n.published_at)) "." }
                div.notice-text { @for para in n.text.split("\n\n") { p { (para) } } }
            },
            None => p { (t::NO_NOTICE) },
        }
        @if notices.len() > 1 {
            h2 { (t::NOTICE_HISTORY) }
            ul { @for n in notices.iter().rev().skip(1) { li { (t::VERSION_2) (n.version) " — " (when(n.published_at)) @if n.material { " (material change)" } } } }
        }
    };
    respond(StatusCode::OK, portal(&s, t::NOTICE, &headers, body))
}
