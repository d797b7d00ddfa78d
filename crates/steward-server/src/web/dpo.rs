//! The privacy officer's pages: the request queue and request actions,
//! consent and notices, the breach register, retention, the audit viewer
//! and the Art. 30 record. They call the API's own handlers, so that input
//! is parsed, checked and audited exactly as over the API.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use maud::{html, Markup};
use serde_json::{json, Value};

use super::html::{
    cell, csrf, dl, error_page, input, input_with_id, notice, page, respond, sentence, trusted, Errors, Form, Staff,
};
use super::text as t;
use crate::extract::{parse_json, ApiJson, ApiQuery, Authed, Ctx};
use crate::problem::ApiError;
use crate::routes;
use crate::AppState;

fn ok_page(s: &AppState, staff: &Staff, title: &str, here: &str, body: Markup) -> Response {
    respond(StatusCode::OK, page(s, Some(staff), title, here, body))
}

/// Builds a handler argument from JSON, with the API's own validation.
fn body<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, ApiError> {
    parse_json(&serde_json::to_vec(v).unwrap_or_default())
}

fn badge(state: &str) -> Markup {
    let label = match state {
        "overdue" => t::OVERDUE,
        "due_soon" => t::DUE_SOON,
        "on_time" => t::ON_TIME,
        other => other,
    };
    html! { span class={"badge " (state)} { (label) } }
}

fn short_time(v: &Value) -> String {
    v.as_str()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map_or_else(|| cell(v), |d| super::html::when(d.with_timezone(&chrono::Utc)))
}

#[derive(serde::Deserialize, Default)]
pub struct Flash {
    done: Option<String>,
}

pub async fn requests(State(s): State<AppState>, staff: Staff) -> Response {
    let ctx = match staff.ctx(&s).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let list = match s.service.list_dsr(Some(&ctx.0), Some("all")).await {
        Ok(l) => l,
        Err(e) => return error_page(&s, Some(&staff), e.into()),
    };
    let mut items: Vec<Value> = list.iter().map(routes::dsr::view_json).collect();
    // Open requests first, by due date; then closed ones, newest first.
    items.sort_by(|a, b| {
        let open = |v: &Value| v["deadline"].is_string();
        open(b)
            .cmp(&open(a))
            .then_with(|| cell(&a["due_at"]).cmp(&cell(&b["due_at"])))
    });
    let body = html! {
        @if items.is_empty() { p { (t::NO_REQUESTS) } }
        @else {
            table #requests {
                thead { tr { th { (t::DUE) } th { (t::STATE) } th { (t::KIND) } th { (t::REGIME_2) } th { (t::STATUS_2) } th { (t::RECEIVED) } th { span.sr { (t::OPEN) } } } }
                tbody {
                    @for d in &items {
                        tr {
                            td { (short_time(&d["due_at"])) }
                            td { @if let Some(state) = d["deadline"].as_str() { (badge(state)) } }
                            td { (cell(&d["kind"])) }
                            td { (cell(&d["regime"]).to_uppercase()) }
                            td.status { (cell(&d["status"])) }
                            td { (short_time(&d["received_at"])) }
                            td { a href={"/requests/" (cell(&d["id"]))} { (t::OPEN) } }
                        }
                    }
                }
            }
        }
    };
    ok_page(&s, &staff, t::REQUESTS, "/requests", body)
}

pub async fn request(
    State(s): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(f): Query<Flash>,
) -> Response {
    let ctx = match staff.ctx(&s).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let d = match routes::dsr::get(State(s.clone()), ctx, Path(id.clone())).await {
        Ok(Json(v)) => serde_json::to_value(v).unwrap_or_default(),
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let status = cell(&d["status"]);
    let open = matches!(status.as_str(), "received" | "in_progress");
    let kind = cell(&d["kind"]);
    let done_msg = match f.done.as_deref() {
        Some("verify") => Some(t::IDENTITY_VERIFIED_THE_REQUEST_IS),
        Some("extend") => Some(t::DEADLINE_EXTENDED),
        Some("refuse") => Some(t::REQUEST_REFUSED),
        Some("fulfill") => Some(t::REQUEST_FULFILLED),
        _ => None,
    };
    let body = html! {
        @if let Some(m) = done_msg { (notice(m)) }
        @if let Some(state) = d["deadline"].as_str() { p { (t::DUE) " " (short_time(&d["due_at"])) " " (badge(state)) } }
        (dl(&d, &["id"]))
        @if let Some(c) = d["contact_id"].as_str() { p { a href={"/contacts/" (c)} { (t::THE_CONTACT) } } }
        @if open {
            div.actions {
                @if status == "received" {
                    form method="post" action={"/requests/" (id) "/verify"} {
                        (csrf(&staff))
                        (input("method", t::HOW_IDENTITY_WAS_CHECKED, "text", "", None))
                        button type="submit" { (t::VERIFY) }
                    }
                } @else {
                    form method="post" action={"/requests/" (id) "/fulfill"} {
                        (csrf(&staff))
                        button #fulfil type="submit" { (t::FULFIL) }
                    }
                }
            }
            details {
                summary { (t::EXTEND) " / " (t::REFUSE) }
                form method="post" action={"/requests/" (id) "/extend"} {
                    (csrf(&staff))
                    (input("reason", t::REASON, "text", "", None))
                    button type="submit" { (t::EXTEND) }
                }
                form method="post" action={"/requests/" (id) "/refuse"} {
                    (csrf(&staff))
                    (input("reason", t::REASON, "text", "", None))
                    button.danger type="submit" { (t::REFUSE) }
                }
            }
        }
        @if status == "completed" {
            p { a href={"/requests/" (id) "/certificate"} { (t::CERTIFICATE) } }
            @if matches!(kind.as_str(), "access" | "portability") {
                p {
                    (t::EXPORT) ": "
                    a href={"/requests/" (id) "/export?format=json"} download { "JSON" } " · "
                    a href={"/requests/" (id) "/export?format=csv"} download { "CSV" } " · "
                    a href={"/requests/" (id) "/export?format=vcard"} download { "vCard" }
                }
            }
        }
    };
    ok_page(&s, &staff, t::REQUEST, "/requests", body)
}

pub async fn request_action(
    State(s): State<AppState>,
    staff: Staff,
    Path((id, action)): Path<(String, String)>,
    form: Form,
) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let ctx = match staff.ctx(&s).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let st = State(s.clone());
    let reason = json!({ "reason": form.get("reason").unwrap_or("").trim() });
    let result = match action.as_str() {
        "verify" => {
            let b = form
                .text("method")
                .map(|m| serde_json::to_vec(&json!({ "method": m })).unwrap_or_default())
                .unwrap_or_default();
            routes::dsr::verify(st, ctx, Path(id.clone()), Bytes::from(b)).await
        }
        "extend" => match body(&reason) {
            Ok(b) => routes::dsr::extend(st, ctx, Path(id.clone()), ApiJson(b)).await,
            Err(e) => Err(e),
        },
        "refuse" => match body(&reason) {
            Ok(b) => routes::dsr::refuse(st, ctx, Path(id.clone()), ApiJson(b)).await,
            Err(e) => Err(e),
        },
        "fulfill" => routes::dsr::fulfill(st, ctx, Path(id.clone())).await,
        _ => Err(ApiError::NotFound("no such action".into())),
    };
    match result {
        Ok(_) => Redirect::to(&format!("/requests/{id}?done={action}")).into_response(),
        Err(e) => error_page(&s, Some(&staff), e),
    }
}

pub async fn certificate(State(s): State<AppState>, staff: Staff, Path(id): Path<String>) -> Response {
    let ctx = match staff.ctx(&s).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let uuid: uuid::Uuid = match crate::extract::path_id(&id, "request") {
        Ok(u) => u,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    match s.service.dsr_certificate(&ctx.0, uuid).await {
        Ok((cert, jws)) => {
            let body = html! {
                (dl(&serde_json::to_value(&cert).unwrap_or_default(), &[]))
                h2 { (t::SIGNED_COMPACT_JWS_EDDSA) }
                p.hint { (t::VERIFY_IT_WITH_THE_KEY) }
                pre.jws { (jws) }
            };
            ok_page(&s, &staff, t::CERTIFICATE, "/requests", body)
        }
        Err(e) => error_page(&s, Some(&staff), e.into()),
    }
}

#[derive(serde::Deserialize)]
pub struct ExportQuery {
    format: Option<String>,
}

pub async fn export(
    State(s): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Response {
    let ctx = match staff.ctx(&s).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let params = match body(&json!({ "format": q.format })) {
        Ok(p) => p,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    match routes::dsr::export(State(s.clone()), ctx, Path(id), ApiQuery(params)).await {
        Ok(mut r) => {
            if !r.headers().contains_key(axum::http::header::CONTENT_DISPOSITION) {
                r.headers_mut().insert(
                    axum::http::header::CONTENT_DISPOSITION,
                    axum::http::HeaderValue::from_static("attachment; filename=\"steward-export.json\""),
                );
            }
            r
        }
        Err(e) => error_page(&s, Some(&staff), e),
    }
}

pub async fn notices(State(s): State<AppState>, staff: Staff, Query(f): Query<Flash>) -> Response {
    notices_page(&s, &staff, f.done.as_deref(), &Errors::none()).await
}

async fn notices_page(s: &AppState, staff: &Staff, done: Option<&str>, errors: &Errors) -> Response {
    let list = match s.service.list_notices().await {
        Ok(l) => l,
        Err(e) => return error_page(s, Some(staff), e.into()),
    };
    let renewals = s.service.consents_needing_renewal(&staff.principal).await.ok();
    let deadline = s.service.renewal().await.ok().flatten().map(|r| r.deadline);
    let body = html! {
        @match done {
            Some("published") => (notice(t::NOTICE_VERSION_PUBLISHED)),
            Some(n) if n.starts_with("mail") => (notice(t::RENEWAL_E_MAILS_QUEUED)),
            _ => {}
        }
        table #notices {
            thead { tr { th { (t::VERSION) } th { (t::LANGUAGE) } th { (t::MATERIAL) } th { (t::PUBLISHED) } } }
            tbody { @for n in list.iter().rev() { tr { td { (n.version) } td { (n.language) } td { (if n.material { "yes" } else { "no" }) } td { (super::html::when(n.published_at)) } } } }
        }
        h2 { (t::PUBLISH_A_NEW_VERSION) }
        @if !errors.is_empty() { div.alert.error role="alert" { @for m in &errors.general { p { (m) } } } }
        form.card method="post" action="/notices" {
            (csrf(staff))
            (input("version", t::VERSION, "text", "", errors.field("version")))
            div.field { label for="f-text" { (t::TEXT) } textarea id="f-text" name="text" rows="8" {} @if let Some(e) = errors.field("text") { p.error { (e) } } }
            label.check { input type="checkbox" name="material" value="true"; " Material change (consents under older versions need renewal)" }
            button type="submit" { (t::PUBLISH) }
        }
        @if let Some(r) = &renewals {
            h2 { (t::CONSENTS_NEEDING_RENEWAL) }
            @if let Some(d) = deadline { p { (t::THEY_END_ON) (super::html::when(d)) " unless renewed." } }
            p { (r.len()) " consent(s)." }
            @if !r.is_empty() {
                form method="post" action="/notices/renewals/mail" { (csrf(staff)) button type="submit" { (t::QUEUE_RENEWAL_E_MAILS) } }
            }
        }
    };
    respond(StatusCode::OK, page(s, Some(staff), t::CONSENT, "/notices", body))
}

pub async fn publish_notice(State(s): State<AppState>, staff: Staff, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let v = json!({
        "version": form.get("version").unwrap_or("").trim(),
        "text": form.get("text").unwrap_or(""),
        "material": form.get("material") == Some("true"),
    });
    let result = match body(&v) {
        Ok(b) => routes::consent::publish_notice(State(s.clone()), Authed(staff.principal.clone()), ApiJson(b))
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to("/notices?done=published").into_response(),
        Err(e @ (ApiError::Validation(_) | ApiError::Conflict(_))) => {
            let errors = Errors::from_api(&e, &["version", "text"]);
            let mut r = notices_page(&s, &staff, None, &errors).await;
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            r
        }
        Err(e) => error_page(&s, Some(&staff), e),
    }
}

pub async fn renewal_mail(State(s): State<AppState>, staff: Staff, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    match s.service.queue_renewal_mail(&staff.principal).await {
        Ok(n) => Redirect::to(&format!("/notices?done=mail{n}")).into_response(),
        Err(e) => error_page(&s, Some(&staff), e.into()),
    }
}

fn clocks(v: &Value) -> Markup {
    html! {
        table.clocks {
            thead { tr { th { (t::WHO_IS_TOLD) } th { (t::LAW) } th { (t::DUE) } th { (t::TIME_LEFT) } th { (t::STATE) } } }
            tbody {
                @for c in v["clocks"].as_array().cloned().unwrap_or_default() {
                    tr {
                        td { (cell(&c["audience"])) }
                        td { (cell(&c["law"])) }
                        td { (short_time(&c["due_at"])) }
                        td {
                            @if let (Some(due), true) = (c["due_at"].as_str(), c["done_at"].is_null()) {
                                time.countdown data-deadline=(due) datetime=(due) { (remaining(&c["remaining_seconds"])) }
                            } @else { "—" }
                        }
                        td { (badge(&cell(&c["state"]))) }
                    }
                }
            }
        }
    }
}

fn remaining(v: &Value) -> String {
    match v.as_i64() {
        Some(s) if s >= 0 => format!("{} h {} min left", s / 3600, (s % 3600) / 60),
        Some(s) => format!("overdue by {} h {} min", -s / 3600, (-s % 3600) / 60),
        None => String::new(),
    }
}

pub async fn incidents(State(s): State<AppState>, staff: Staff) -> Response {
    incidents_page(&s, &staff, &Errors::none()).await
}

async fn incidents_page(s: &AppState, staff: &Staff, errors: &Errors) -> Response {
    let ctx = match staff.ctx(s).await {
        Ok(c) => c,
        Err(e) => return error_page(s, Some(staff), e),
    };
    let list = match s.service.list_incidents(&ctx.0, false).await {
        Ok(l) => serde_json::to_value(l).unwrap_or_default(),
        Err(e) => return error_page(s, Some(staff), e.into()),
    };
    let body = html! {
        table #incidents {
            thead { tr { th { (t::TITLE) } th { (t::STATUS_2) } th { (t::AWARE) } th { (t::REGULATOR_CLOCK) } } }
            tbody {
                @for i in list.as_array().cloned().unwrap_or_default() {
                    tr {
                        td { a href={"/incidents/" (cell(&i["id"]))} { (cell(&i["title"])) } }
                        td { (cell(&i["status"])) }
                        td { (short_time(&i["aware_at"])) }
                        td { @if let Some(c) = i["clocks"].get(0) { (badge(&cell(&c["state"]))) } }
                    }
                }
            }
        }
        @if staff.is(&["dpo"]) {
            h2 { (t::OPEN_AN_INCIDENT) }
            @if !errors.general.is_empty() { div.alert.error role="alert" { @for m in &errors.general { p { (m) } } } }
            form.card #incident-form method="post" action="/incidents" {
                (csrf(staff))
                (input("title", t::TITLE, "text", "", errors.field("title")))
                div.field { label for="f-description" { (t::DESCRIPTION) } textarea id="f-description" name="description" rows="3" {} }
                (input("aware_at", t::BECAME_AWARE_AT_RFC_3339, "text", &chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(), errors.field("aware_at")))
                div.field { label for="f-category" { (t::CATEGORY) }
                    select id="f-category" name="category" { @for c in steward_domain::incident::BreachCategory::ALL { option { (c.as_str()) } } } }
                div.field { label for="f-source" { (t::SOURCE) }
                    select id="f-source" name="source" { @for c in steward_domain::incident::BreachSource::ALL { option { (c.as_str()) } } } }
                button type="submit" { (t::OPEN) }
            }
        }
    };
    respond(StatusCode::OK, page(s, Some(staff), t::INCIDENTS, "/incidents", body))
}

pub async fn open_incident(State(s): State<AppState>, staff: Staff, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let ctx = match staff.ctx(&s).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let mut v = serde_json::Map::new();
    for k in ["title", "description", "aware_at", "category", "source"] {
        if let Some(x) = form.text(k) {
            v.insert(k.into(), Value::String(x.into()));
        }
    }
    let result = match body(&Value::Object(v)) {
        Ok(b) => s.service.open_incident(&ctx.0, b).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(i) => Redirect::to(&format!("/incidents/{}", i.id)).into_response(),
        Err(e @ ApiError::Validation(_)) => {
            let errors = Errors::from_api(&e, &["title", "aware_at"]);
            let mut r = incidents_page(&s, &staff, &errors).await;
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            r
        }
        Err(e) => error_page(&s, Some(&staff), e),
    }
}

pub async fn incident(
    State(s): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(f): Query<Flash>,
) -> Response {
    let ctx = match staff.ctx(&s).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let v = match routes::incidents::get(State(s.clone()), Ctx(ctx.0.clone()), Path(id.clone())).await {
        Ok(Json(v)) => v,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let timeline = routes::incidents::timeline(State(s.clone()), Ctx(ctx.0.clone()), Path(id.clone()))
        .await
        .ok()
        .and_then(|j| serde_json::to_value(j.0).ok());
    let scope = routes::incidents::get_scope(State(s.clone()), Ctx(ctx.0.clone()), Path(id.clone()))
        .await
        .ok()
        .and_then(|j| serde_json::to_value(j.0).ok());
    let done = f
        .done
        .as_deref()
        .and_then(|d| INCIDENT_ACTIONS.iter().find(|(a, _)| *a == d))
        .map(|(_, m)| *m);
    let action = |a: &str| format!("/incidents/{id}/{a}");
    let body = html! {
        @if let Some(m) = done { (notice(m)) }
        h2 { (t::LEGAL_CLOCKS) }
        (clocks(&v))
        h2 { (t::INCIDENT) }
        (dl(&v, &["id", "clocks"]))
        h2 { (t::SCOPE_FROM_THE_AUDIT_LOG) }
        @if let Some(sc) = &scope {
            div #incident-scope { (dl(sc, &["subjects", "entries"])) }
        } @else {
            p { (t::NOT_SCOPED_YET) }
        }
        form.card #scope-form method="post" action=(action("scope")) {
            (csrf(&staff))
            p.hint { (t::WHO_OR_WHAT_TO_TRACE) }
            (input_with_id("scope-user", "user", t::USER_NAME_OR_ID, "text", "", None))
            (input_with_id("scope-token", "token", t::API_TOKEN_ID, "text", "", None))
            (input_with_id("scope-session", "session", t::SESSION_ID, "text", "", None))
            (input_with_id("scope-client", "client", t::CLIENT_ADDRESS, "text", "", None))
            (input_with_id("scope-from", "from", t::FROM, "text", "", None))
            (input_with_id("scope-to", "to", "To", "text", "", None))
            button type="submit" { (t::SCOPE_FROM_THE_AUDIT_LOG_2) }
        }
        h2 { (t::RISK) }
        form.card #risk-form method="post" action=(action("risk")) {
            (csrf(&staff))
            div.field {
                label for="f-level" { (t::LEVEL) }
                select id="f-level" name="level" {
                    option value="" { (t::CONFIRM_STEWARDS_PROPOSAL) }
                    @for l in ["low", "medium", "high"] { option value=(l) { (l) } }
                }
            }
            (input("reason", t::REASON_NEEDED_TO_OVERRIDE_THE, "text", "", None))
            button type="submit" { (t::RECORD_THE_RISK_ASSESSMENT) }
        }
        h2 { (t::CONTAINMENT) }
        form.card #containment-form method="post" action=(action("containment")) {
            (csrf(&staff))
            div.field {
                label for="f-action" { (t::ACTION) }
                select id="f-action" name="action" {
                    @for a in ["revoke_token", "revoke_sessions", "disable_user", "reset_password", "reset_mfa"] { option value=(a) { (a) } }
                }
            }
            (input_with_id("contain-user", "user", t::USER_NAME_OR_ID, "text", "", None))
            (input_with_id("contain-token", "token", t::API_TOKEN_ID_FOR_REVOKE, "text", "", None))
            (input_with_id("contain-note", "note", t::NOTE, "text", "", None))
            button type="submit" { (t::CONTAIN) }
        }
        h2 { (t::NOTIFICATIONS) }
        p { a href={"/api/v1/incidents/" (id) "/notification?format=html"} { (t::NOTIFICATION_TO_THE_SUPERVISORY_AUTHORITY) } }
        form.card #regulator-form method="post" action=(action("notify-regulator")) {
            (csrf(&staff))
            (input("reference", t::THE_AUTHORITYS_CASE_REFERENCE, "text", "", None))
            (input("delay_reason", t::REASON_FOR_THE_DELAY_NEEDED, "text", "", None))
            button type="submit" { (t::RECORD_THAT_THE_AUTHORITY_WAS) }
        }
        form.card #subjects-form method="post" action=(action("notify-subjects")) {
            (csrf(&staff))
            div.field {
                label for="f-what_happened" { (t::WHAT_HAPPENED_IN_CLEAR_LANGUAGE) }
                textarea id="f-what_happened" name="what_happened" rows="3" required {}
            }
            div.field {
                label for="f-what_to_do" { (t::WHAT_THEY_CAN_DO_OPTIONAL) }
                textarea id="f-what_to_do" name="what_to_do" rows="2" {}
            }
            button type="submit" { (t::NOTIFY_THE_PEOPLE_AFFECTED_ART) }
        }
        h2 { (t::TIMELINE) }
        @if let Some(tl) = &timeline {
            ul.timeline #timeline {
                @for item in tl["items"].as_array().cloned().unwrap_or_default() {
                    li { (short_time(&item["at"])) " · " (cell(&item["kind"])) " — " (cell(&item["text"])) }
                }
            }
        }
        form.card #note-form method="post" action=(action("note")) {
            (csrf(&staff))
            div.field {
                label for="f-text" { (t::NOTE) }
                textarea id="f-text" name="text" rows="2" required {}
            }
            button type="submit" { (t::ADD_TO_THE_TIMELINE) }
        }
    };
    ok_page(&s, &staff, t::INCIDENT, "/incidents", body)
}

/// The incident page's actions and what the page says once done.
const INCIDENT_ACTIONS: [(&str, &str); 6] = [
    ("scope", (t::THE_SCOPE_WAS_COMPUTED_FROM)),
    ("risk", (t::THE_RISK_ASSESSMENT_IS_RECORDED)),
    ("containment", (t::THE_CONTAINMENT_STEP_WAS_CARRIED)),
    ("notify-regulator", (t::THE_NOTIFICATION_OF_THE_AUTHORITY)),
    ("notify-subjects", (t::NOTICES_TO_THE_PEOPLE_AFFECTED)),
    ("note", (t::THE_NOTE_WAS_ADDED_TO)),
];

/// A timestamp field of a form as RFC 3339 (a bare date-time is UTC).
fn form_time(form: &Form, name: &str) -> Option<Value> {
    form.text(name).map(|v| {
        let v = if v.len() == 16 || v.len() == 19 && !v.ends_with('Z') {
            format!("{v}{}Z", if v.len() == 16 { ":00" } else { "" })
        } else {
            v.to_string()
        };
        Value::String(v)
    })
}

pub async fn incident_action(
    State(s): State<AppState>,
    staff: Staff,
    Path((id, action)): Path<(String, String)>,
    form: Form,
) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let ctx = match staff.ctx(&s).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let st = State(s.clone());
    let fields = |names: &[&str]| -> Value {
        let mut m = serde_json::Map::new();
        for n in names {
            if let Some(v) = form.text(n) {
                m.insert((*n).into(), Value::String(v.into()));
            }
        }
        Value::Object(m)
    };
    let p = || Path(id.clone());
    let result: Result<(), ApiError> = match action.as_str() {
        "scope" => {
            let mut b = fields(&["user", "token", "session", "client"]);
            for n in ["from", "to"] {
                if let Some(v) = form_time(&form, n) {
                    b[n] = v;
                }
            }
            match body(&b) {
                Ok(b) => routes::incidents::scope(st, ctx, p(), ApiJson(b)).await.map(|_| ()),
                Err(e) => Err(e),
            }
        }
        "risk" => match body(&fields(&["level", "reason"])) {
            Ok(b) => routes::incidents::risk(st, ctx, p(), ApiJson(b)).await.map(|_| ()),
            Err(e) => Err(e),
        },
        "containment" => match body(&fields(&["action", "user", "token", "note"])) {
            Ok(b) => routes::incidents::contain(st, ctx, p(), ApiJson(b)).await.map(|_| ()),
            Err(e) => Err(e),
        },
        "notify-regulator" => match body(&fields(&["reference", "delay_reason"])) {
            Ok(b) => routes::incidents::notify_regulator(st, ctx, p(), ApiJson(b))
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        },
        "notify-subjects" => match body(&fields(&["what_happened", "what_to_do"])) {
            Ok(b) => routes::incidents::notify_subjects(st, ctx, p(), ApiJson(b))
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        },
        "note" => match body(&fields(&["text"])) {
            Ok(b) => routes::incidents::add_note(st, ctx, p(), ApiJson(b)).await.map(|_| ()),
            Err(e) => Err(e),
        },
        _ => Err(ApiError::NotFound("no such action".into())),
    };
    match result {
        Ok(()) => Redirect::to(&format!("/incidents/{id}?done={action}")).into_response(),
        Err(e) => error_page(&s, Some(&staff), e),
    }
}

#[derive(serde::Deserialize)]
pub struct RetentionQuery {
    days: Option<u32>,
}

pub async fn retention(State(s): State<AppState>, staff: Staff, Query(q): Query<RetentionQuery>) -> Response {
    let ctx = match staff.ctx(&s).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let days = q.days.unwrap_or(30).min(3660);
    let (preview, review) = match s.service.retention_overview_for(&ctx.0, days).await {
        Ok(p) => p,
        Err(e) => return error_page(&s, Some(&staff), e.into()),
    };
    let body = html! {
        form.search method="get" action="/retention" {
            label for="days" { (t::DAYS_AHEAD) }
            input id="days" name="days" type="number" min="0" max="3660" value=(days);
            button type="submit" { (t::PREVIEW) }
        }
        table #retention-preview {
            thead { tr { th { (t::RECORD) } th { (t::RULE) } th { (t::ACTION) } th { (t::COUNT) } } }
            tbody { @for r in &preview { tr { td { (r.record) } td { (r.rule) } td { (r.action) } td { (r.count) } } } }
        }
        h2 { (t::REVIEW_LIST) }
        @if review.is_empty() { p { (t::NOTHING_TO_REVIEW) } }
        @else {
            table {
                thead { tr { th { (t::RECORD) } th { (t::RULE) } th { (t::DUE) } th { span.sr { (t::OPEN) } } } }
                tbody { @for r in &review { tr { td { (r.record) } td { (r.rule) } td { (super::html::when(r.due_at)) }
                    td { @if let Some(sub) = r.subject_id { a href={"/contacts/" (sub)} { (t::OPEN) } } } } } }
            }
        }
    };
    ok_page(&s, &staff, t::RETENTION, "/retention", body)
}

#[derive(serde::Deserialize, Default)]
pub struct AuditFilter {
    subject_id: Option<String>,
    actor: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
}

pub async fn audit(State(s): State<AppState>, staff: Staff, Query(f): Query<AuditFilter>) -> Response {
    let ctx = match staff.ctx(&s).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let mut q = serde_json::Map::new();
    for (k, v) in [
        ("subject_id", &f.subject_id),
        ("actor", &f.actor),
        ("from", &f.from),
        ("to", &f.to),
        ("cursor", &f.cursor),
    ] {
        if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            q.insert(k.into(), Value::String(v.into()));
        }
    }
    let head = routes::audit::tree_head(State(s.clone()), Ctx(ctx.0.clone()))
        .await
        .map(|j| serde_json::to_value(j.0).unwrap_or_default());
    let (entries, errors) = match body(&Value::Object(q)) {
        Ok(p) => match routes::audit::list(State(s.clone()), ctx, ApiQuery(p)).await {
            Ok(Json(v)) => (serde_json::to_value(v).unwrap_or_default(), Errors::none()),
            Err(e @ ApiError::Validation(_)) => (
                Value::Null,
                Errors::from_api(&e, &["subject_id", "actor", "from", "to"]),
            ),
            Err(e) => return error_page(&s, Some(&staff), e),
        },
        Err(e) => (
            Value::Null,
            Errors::from_api(&e, &["subject_id", "actor", "from", "to"]),
        ),
    };
    let value = |o: &Option<String>| o.clone().unwrap_or_default();
    let body = html! {
        @match &head {
            Ok(h) => { h2 { (t::TREE_HEAD) } (dl(h, &["signature", "public_key"])) }
            Err(_) => {}
        }
        form method="post" action="/audit/verify" { (csrf(&staff)) button #verify type="submit" { (t::VERIFY_LOG) } }
        h2 { (t::ENTRIES) }
        form.search method="get" action="/audit" {
            (input("subject_id", t::CONTACT_ID, "text", &value(&f.subject_id), errors.field("subject_id")))
            (input("actor", t::ACTOR_USER_ID_TOKEN_ID, "text", &value(&f.actor), errors.field("actor")))
            (input("from", t::FROM_RFC_3339, "text", &value(&f.from), errors.field("from")))
            (input("to", t::TO_RFC_3339, "text", &value(&f.to), errors.field("to")))
            button type="submit" { (t::FILTER) }
        }
        @for m in &errors.general { div.alert.error { p { (m) } } }
        table #audit {
            thead { tr { th { "#" } th { (t::WHEN) } th { (t::ACTION) } th { (t::OUTCOME) } th { (t::ACTOR) } th { (t::PURPOSE) } th { (t::CONTACT) } } }
            tbody {
                @for e in entries["items"].as_array().cloned().unwrap_or_default() {
                    @let r = &e["entry"];
                    tr {
                        td { (cell(&e["index"])) }
                        td { (short_time(&r["at"])) }
                        td { (cell(&r["action"])) }
                        td { (cell(&r["outcome"])) }
                        td { (cell(&r["actor"]["role"])) " " (cell(&r["actor"]["kind"])) }
                        td { (cell(&r["purpose"])) }
                        td { @if let Some(sid) = r["subject_id"].as_str() { a href={"/audit?subject_id=" (sid)} { (sid.get(..8).unwrap_or(sid)) "…" } } }
                    }
                }
            }
        }
        @if let Some(n) = entries["next_cursor"].as_str() { p { a rel="next" href={"/audit?cursor=" (n)} { (t::NEXT_PAGE) } } }
    };
    ok_page(&s, &staff, t::AUDIT, "/audit", body)
}

pub async fn audit_verify(State(s): State<AppState>, staff: Staff, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    if !staff.is(&["dpo", "auditor", "admin"]) {
        return error_page(
            &s,
            Some(&staff),
            ApiError::Forbidden("only the privacy officer, auditors and administrators verify the log".into()),
        );
    }
    let body = match s.service.verify_audit_log().await {
        Ok(r) => html! {
            div.alert.ok #verify-result role="status" {
                p { (t::THE_AUDIT_LOG_VERIFIES) (r.entries) " entries, " (r.heads_checked) " signed tree head(s) checked." }
                p { (t::ROOT) code { (r.root.iter().map(|b| format!("{b:02x}")).collect::<String>()) } }
            }
        },
        Err(e) => html! {
            div.alert.error #verify-result role="alert" { p { (t::THE_AUDIT_LOG_DOES_NOT) (sentence(&e.to_string())) } }
        },
    };
    ok_page(&s, &staff, t::VERIFY_LOG, "/audit", body)
}

pub async fn art30(State(s): State<AppState>, staff: Staff) -> Response {
    match s.service.record_of_processing(&staff.principal) {
        Ok(r) => {
            let doc = r.to_html();
            let inner = doc
                .find("<body>")
                .and_then(|a| doc.rfind("</body>").map(|b| doc[a + 6..b].to_string()))
                .unwrap_or(doc);
            let body = html! {
                p { a href="/api/v1/reports/art30?format=html" { (t::PRINTABLE_DOCUMENT) } " · "
                    a href="/api/v1/reports/art30?format=markdown" { (t::MARKDOWN) } }
                div.report { (trusted(inner)) }
            };
            ok_page(&s, &staff, t::ART30, "/reports/art30", body)
        }
        Err(e) => error_page(&s, Some(&staff), e.into()),
    }
}

/// The security self-audit (`steward doctor`) as a page.
pub async fn security_report(State(s): State<AppState>, staff: Staff) -> Response {
    // When the whole log verified within a day (`steward serve` does it
    // daily), only the entries since are verified (the page says when the
    // whole log ran); the CLI and the API verify the whole log every time.
    let reuse = chrono::Duration::hours(24);
    let report = match s.service.security_report_as(&staff.principal, Some(reuse)).await {
        Ok(r) => r,
        Err(e) => return error_page(&s, Some(&staff), e.into()),
    };
    let body = html! {
        p #security-score {
            (t::SCORE) strong { (report.score) "/100" } ": "
            (report.passed) " pass, " (report.warnings) " warn, " (report.failures) " fail."
        }
        table #security-controls {
            thead { tr { th { (t::CONTROL) } th { (t::STATE) } th { (t::EVIDENCE) } th { (t::FIX) } th { (t::GDPR_ART) } th { "ISO/IEC 27001" } } }
            tbody {
                @for c in &report.controls {
                    tr data-control=(c.id) {
                        td { strong { (c.title) } br; code { (c.id) } }
                        td { span class={"badge " (c.status.as_str())} { (c.status.as_str()) } }
                        td { (c.evidence) }
                        td { (c.fix) }
                        td { (c.gdpr.join(", ")) }
                        td { (c.iso27001.join(", ")) }
                    }
                }
            }
        }
        p.hint { (t::THE_SAME_REPORT_STEWARD_DOCTOR) }
    };
    ok_page(&s, &staff, t::SECURITY_REPORT, "/reports/security", body)
}

#[derive(serde::Deserialize, Default)]
pub struct PeriodQuery {
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
}

/// The compliance report's period form, with links to the report itself.
pub async fn compliance_page(State(s): State<AppState>, staff: Staff) -> Response {
    let today = chrono::Utc::now().date_naive();
    let start = today - chrono::Duration::days(30);
    let body = html! {
        p { (t::THE_REPORT_COVERS_REQUESTS_CONSENT) }
        form.card #compliance-form method="get" action="/reports/compliance/report" {
            (input("from", t::FIRST_DAY, "date", &start.to_string(), None))
            (input("to", t::LAST_DAY, "date", &today.to_string(), None))
            div.field {
                label for="f-format" { (t::FORMAT) }
                select id="f-format" name="format" {
                    option value="html" { (t::HTML_WITH_CHARTS) }
                    option value="csv" { (t::CSV_FIGURES) }
                    option value="json" { "JSON" }
                }
            }
            button type="submit" { (t::OPEN_THE_REPORT) }
        }
    };
    ok_page(&s, &staff, t::COMPLIANCE_REPORT, "/reports/compliance", body)
}

/// The report itself: HTML (its own inline styles, no script), CSV or JSON.
pub async fn compliance_file(State(s): State<AppState>, staff: Staff, Query(q): Query<PeriodQuery>) -> Response {
    let now = chrono::Utc::now();
    let bound = |name: &str, v: &Option<String>, end: bool, default| match v.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => steward_service::compliance::parse_bound(name, v, end).map_err(ApiError::from),
        None => Ok(default),
    };
    let period = bound("from", &q.from, false, now - chrono::Duration::days(30))
        .and_then(|from| bound("to", &q.to, true, now).map(|to| (from, to)));
    let (from, to) = match period {
        Ok(p) => p,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let report = match s.service.compliance_report_for(&staff.principal, from, to).await {
        Ok(r) => r,
        Err(e) => return error_page(&s, Some(&staff), e.into()),
    };
    use axum::http::header;
    match q.format.as_deref().unwrap_or("html") {
        "csv" => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"compliance-report.csv\""),
            ],
            steward_service::compliance_render::to_csv(&report),
        )
            .into_response(),
        "json" => Json(serde_json::to_value(&report).unwrap_or(Value::Null)).into_response(),
        _ => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                // Its own styles inline; still no script, no framing.
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
                ),
            ],
            steward_service::compliance_render::to_html(&report),
        )
            .into_response(),
    }
}
