//! The staff console: sign-in, second factor, sessions, the purpose
//! selector, contacts, organisations and deals.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use serde_json::{Map, Value};
use steward_domain::inventory::{FieldKind, SearchKind};
use steward_domain::{DealId, OrganizationId, SubjectId};
use steward_service::audit::AuditQuery;
use steward_service::contacts::{ContactQuery, ContactView, InteractionInput};
use steward_service::ServiceError;
use zeroize::Zeroizing;

use super::html::{
    cell, clear_cookies, csrf, dl, error_page, input, notice, page, respond, sentence, set_cookie, when, Errors, Form,
    Staff,
};
use super::{qr, text as t, PURPOSE_COOKIE};
use crate::extract::{client_address, path_id, SESSION_COOKIE};
use crate::problem::ApiError;
use crate::AppState;

const CONTACT: &str = "contact";

#[derive(serde::Deserialize, Default)]
pub struct Flash {
    done: Option<String>,
    cursor: Option<String>,
}

fn flash(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "created" => Some(t::CREATED),
        "saved" => Some(t::SAVED),
        "mfa" => Some(t::MFA_AGAIN),
        "hold" => Some(t::THE_LEGAL_HOLD_IS_PLACED),
        "released" => Some(t::THE_LEGAL_HOLD_IS_RELEASED),
        "restricted" => Some(t::PROCESSING_IS_RESTRICTED_ONLY_THE),
        "unrestricted" => Some(t::THE_RESTRICTION_IS_LIFTED),
        _ => None,
    }
}

fn ok_page(s: &AppState, staff: &Staff, title: &str, here: &str, body: Markup) -> Response {
    respond(StatusCode::OK, page(s, Some(staff), title, here, body))
}

pub async fn home(State(s): State<AppState>, staff: Staff, Query(f): Query<Flash>) -> Response {
    let (mfa, _) = s
        .service
        .mfa_status(staff.principal.user_id)
        .await
        .unwrap_or((false, 0));
    let body = html! {
        @if let Some(m) = flash(f.done.as_deref()) { (notice(m)) }
        @if staff.principal.mfa_pending {
            div.alert.warn role="alert" { p { (t::MFA_REQUIRED) " " a href="/security/mfa" { (t::MFA_ENROL) } } }
        } @else if !mfa {
            div.alert.warn { p { (t::MFA_OFF) " " a href="/security/mfa" { (t::MFA_ENROL) } } }
        }
        p { (t::SIGNED_IN_AS) " " strong { (staff.principal.username) } ", " (staff.principal.role) "." }
    };
    ok_page(&s, &staff, t::HOME, "/", body)
}

fn login_form(error: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = error { div.alert.error role="alert" { p { (e) } } }
        form.card method="post" action="/login" {
            div.field { label for="username" { (t::USERNAME) } input id="username" name="username" autocomplete="username" required; }
            div.field { label for="password" { (t::PASSWORD) } input id="password" name="password" type="password" autocomplete="current-password" required; }
            div.field {
                label for="code" { (t::CODE) }
                input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" aria-describedby="code-hint";
                p.hint id="code-hint" { (t::CODE_HINT) }
            }
            button type="submit" { (t::SIGN_IN) }
        }
    }
}

pub async fn login_page(State(s): State<AppState>) -> Response {
    respond(StatusCode::OK, page(&s, None, t::SIGN_IN, "/login", login_form(None)))
}

pub async fn login(State(s): State<AppState>, parts: axum::http::request::Parts, form: Form) -> Response {
    let username = form.get("username").unwrap_or("").trim().to_string();
    let password = Zeroizing::new(form.get("password").unwrap_or("").to_string());
    let code = form.text("code").map(str::to_string);
    let client = client_address(&parts);
    match s.service.login(&username, password, code.as_deref(), client).await {
        Ok(outcome) => {
            let to = if outcome.mfa_enrollment_required {
                "/security/mfa"
            } else {
                "/"
            };
            let mut r = Redirect::to(to).into_response();
            set_cookie(
                &s,
                &mut r,
                SESSION_COOKIE,
                outcome.token.as_str(),
                Some(outcome.expires_in_seconds),
            );
            r
        }
        Err(e) => {
            let (status, message) = match e {
                ServiceError::Unauthenticated => (StatusCode::UNAUTHORIZED, t::WRONG_LOGIN.to_string()),
                other => {
                    let e = ApiError::from(other);
                    let p = e.problem();
                    (
                        StatusCode::from_u16(p.status).unwrap_or(StatusCode::UNAUTHORIZED),
                        sentence(&p.detail),
                    )
                }
            };
            respond(status, page(&s, None, t::SIGN_IN, "/login", login_form(Some(&message))))
        }
    }
}

pub async fn logout(State(s): State<AppState>, staff: Staff, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let _ = s.service.logout(&staff.principal).await;
    let mut r = Redirect::to("/login").into_response();
    clear_cookies(&mut r);
    r
}

pub async fn choose_purpose(State(s): State<AppState>, staff: Staff, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let purpose = form.get("purpose").unwrap_or("");
    let allowed = s
        .service
        .inventory()
        .role(&staff.principal.role)
        .is_some_and(|r| r.purposes.iter().any(|p| p == purpose));
    if !allowed {
        return error_page(
            &s,
            Some(&staff),
            ApiError::Forbidden("your role may not act for this purpose".into()),
        );
    }
    // Back to the page it was chosen on (a path of ours only).
    let back = form
        .get("back")
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or("/");
    let mut r = Redirect::to(back).into_response();
    set_cookie(&s, &mut r, PURPOSE_COOKIE, purpose, None);
    r
}

pub async fn security(State(s): State<AppState>, staff: Staff) -> Response {
    let (mfa, left) = match s.service.mfa_status(staff.principal.user_id).await {
        Ok(v) => v,
        Err(e) => return error_page(&s, Some(&staff), e.into()),
    };
    let tokens = match s.service.own_tokens(&staff.principal).await {
        Ok(v) => v,
        Err(e) => return error_page(&s, Some(&staff), e.into()),
    };
    let body = html! {
        section aria-labelledby="mfa-h" {
            h2 id="mfa-h" { (t::MFA) }
            @if mfa {
                p { (t::MFA_ON) " " (t::RECOVERY_LEFT) ": " (left) "." }
            } @else {
                p { (t::MFA_OFF) }
                p { a.button href="/security/mfa" { (t::MFA_ENROL) } }
            }
        }
        section aria-labelledby="sessions-h" {
            h2 id="sessions-h" { (t::SESSIONS) " and " (t::TOKENS) }
            table {
                thead { tr { th { (t::KIND) } th { (t::NAME) } th { (t::CREATED_2) } th { (t::EXPIRES) } th { (t::LAST_USED) } th { span.sr { (t::ACTIONS) } } } }
                tbody {
                    @for tok in tokens.iter().filter(|t| t.revoked_at.is_none()) {
                        tr {
                            td { (tok.kind) }
                            td { (tok.name.clone().unwrap_or_default()) }
                            td { (when(tok.created_at)) }
                            td { (tok.expires_at.map(when).unwrap_or_default()) }
                            td { (tok.last_used_at.map(when).unwrap_or_default()) }
                            td {
                                @if Some(tok.id) == staff.principal.token_id {
                                    (t::THIS_SESSION)
                                } @else {
                                    form.inline method="post" action={"/security/sessions/" (tok.id) "/revoke"} {
                                        (csrf(&staff))
                                        button type="submit" { (t::REVOKE) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let purposes = s
        .service
        .inventory()
        .role(&staff.principal.role)
        .map(|r| r.purposes.clone())
        .unwrap_or_default();
    let body = html! {
        (body)
        section aria-labelledby="new-token-h" {
            h2 id="new-token-h" { (t::NEW_API_TOKEN) }
            form.card #token-form method="post" action="/security/tokens" {
                (csrf(&staff))
                (input("name", t::NAME_WHAT_IT_IS_FOR, "text", "", None))
                (input("expires_in_days", t::EXPIRES_AFTER_DAYS, "number", "90", None))
                @if !purposes.is_empty() {
                    div.field {
                        label for="f-purpose" { (t::LIMITED_TO_THE_PURPOSE) }
                        select id="f-purpose" name="purpose" {
                            option value="" { "any of my role's purposes" }
                            @for p in &purposes { option value=(p) { (p) } }
                        }
                    }
                }
                button type="submit" { (t::CREATE_TOKEN) }
            }
        }
    };
    ok_page(&s, &staff, t::SECURITY, "/security", body)
}

/// Creates an API token for the signed-in user and shows its secret once.
pub async fn create_token(State(s): State<AppState>, staff: Staff, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let days = match form.text("expires_in_days").map(str::parse::<u32>) {
        None => None,
        Some(Ok(d)) if (1..=3660).contains(&d) => Some(d),
        Some(_) => {
            return error_page(
                &s,
                Some(&staff),
                ApiError::BadRequest("the expiry must be a whole number of days from 1 to 3660".into()),
            )
        }
    };
    let created = s
        .service
        .create_own_token(
            &staff.principal,
            form.text("name").map(str::to_string),
            days,
            form.text("purpose").map(str::to_string),
        )
        .await;
    match created {
        Ok((view, secret)) => {
            let body = html! {
                div.alert.warn role="status" {
                    p { (t::COPY_THE_TOKEN_NOW_IT) }
                }
                p { code #new-token { (secret.as_str()) } }
                p.hint { (t::USE_IT_AS_AUTHORIZATION_BEARER) (view.expires_at.map(when).unwrap_or_else(|| "never".into())) "." }
                p { a href="/security" { (t::SECURITY) } }
            };
            ok_page(&s, &staff, t::API_TOKEN_CREATED, "/security", body)
        }
        Err(e) => error_page(&s, Some(&staff), e.into()),
    }
}

pub async fn revoke_session(State(s): State<AppState>, staff: Staff, Path(id): Path<String>, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let result = match path_id(&id, "session") {
        Ok(id) => s
            .service
            .revoke_own_token(&staff.principal, id)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to("/security").into_response(),
        Err(e) => error_page(&s, Some(&staff), e),
    }
}

pub async fn mfa_page(State(s): State<AppState>, staff: Staff) -> Response {
    let body = html! {
        @if staff.principal.mfa_pending { div.alert.warn role="alert" { p { (t::MFA_REQUIRED) } } }
        form method="post" action="/security/mfa" {
            (csrf(&staff))
            button type="submit" { (t::MFA_ENROL) }
        }
    };
    ok_page(&s, &staff, t::MFA, "/security", body)
}

pub async fn mfa_enroll(State(s): State<AppState>, staff: Staff, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let e = match s.service.totp_enroll(&staff.principal).await {
        Ok(e) => e,
        Err(e) => return error_page(&s, Some(&staff), e.into()),
    };
    let body = html! {
        p { (t::MFA_SCAN) }
        figure.qr { (qr::svg(e.otpauth_uri.as_str())) }
        p { (t::MFA_SECRET) ": " code #totp-secret { (e.secret_base32.as_str()) } }
        (confirm_form(&staff, None))
    };
    ok_page(&s, &staff, t::MFA_ENROL, "/security", body)
}

fn confirm_form(staff: &Staff, error: Option<&str>) -> Markup {
    html! {
        form method="post" action="/security/mfa/confirm" {
            (csrf(staff))
            (input("code", t::THE_CODE, "text", "", error))
            button type="submit" { (t::MFA_CONFIRM) }
        }
    }
}

pub async fn mfa_confirm(State(s): State<AppState>, staff: Staff, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let code = form.get("code").unwrap_or("").trim().to_string();
    match s.service.totp_confirm(&staff.principal, &code).await {
        Ok(codes) => {
            let body = html! {
                (notice(t::MFA_DONE))
                ul.codes #recovery-codes { @for c in &codes { li { code { (c) } } } }
                p { (t::MFA_AGAIN) }
                form method="post" action="/logout" { (csrf(&staff)) button type="submit" { (t::SIGN_OUT) } }
            };
            ok_page(&s, &staff, t::MFA, "/security", body)
        }
        Err(e) => {
            let e = ApiError::from(e);
            let msg = sentence(&e.problem().detail);
            let body = html! { (confirm_form(&staff, Some(&msg))) };
            respond(
                StatusCode::UNPROCESSABLE_ENTITY,
                page(&s, Some(&staff), t::MFA, "/security", body),
            )
        }
    }
}

/// The contact fields shown for the chosen purpose, in inventory order.
fn visible_fields(s: &AppState, staff: &Staff) -> Vec<String> {
    staff
        .purpose
        .as_deref()
        .map(|p| s.service.inventory().fields_for_purpose(CONTACT, p).to_vec())
        .unwrap_or_default()
}

fn contact_table(fields: &[String], items: &[ContactView]) -> Markup {
    let columns: Vec<&String> = fields.iter().filter(|f| f.as_str() != "notes").take(5).collect();
    html! {
        @if items.is_empty() {
            p { (t::NO_CONTACTS) }
        } @else {
            table #contacts {
                thead { tr { @for c in &columns { th scope="col" { (c.replace('_', " ")) } } th { span.sr { (t::OPEN) } } } }
                tbody {
                    @for c in items {
                        tr {
                            @for f in &columns { td { (c.fields.get(f.as_str()).cloned().unwrap_or_default()) } }
                            td { a href={"/contacts/" (c.id)} { (t::OPEN) } }
                        }
                    }
                }
            }
        }
    }
}

fn search_form(staff: &Staff, q: &str) -> Markup {
    html! {
        form.search role="search" method="post" action="/contacts" {
            (csrf(staff))
            label for="q" { (t::SEARCH_LABEL) }
            input id="q" name="q" type="search" value=(q) autocomplete="off";
            button type="submit" { (t::SEARCH) }
        }
    }
}

async fn contact_list(s: &AppState, staff: &Staff, query: ContactQuery, q: &str, flash_msg: Option<&str>) -> Response {
    let ctx = match staff.ctx(s).await {
        Ok(c) => c,
        Err(e) => return error_page(s, Some(staff), e),
    };
    let page_result = s.service.list_contacts(&ctx.0, &query).await;
    let (items, next) = match page_result {
        Ok(p) => (p.items, p.next_cursor),
        Err(e) => {
            let e = ApiError::from(e);
            if matches!(e, ApiError::Validation(_)) {
                let errs = Errors::from_api(&e, &[]);
                let body = html! {
                    (search_form(staff, q))
                    div.alert.error role="alert" { @for m in &errs.general { p { (m) } } }
                };
                return respond(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    page(s, Some(staff), t::CONTACTS, "/contacts", body),
                );
            }
            return error_page(s, Some(staff), e);
        }
    };
    let fields = visible_fields(s, staff);
    let body = html! {
        @if let Some(m) = flash_msg { (notice(m)) }
        div.actions {
            a.button href="/contacts/new" { (t::NEW_CONTACT) }
            " "
            a href="/contacts/export.csv" download { (t::EXPORT_CSV) }
            " "
            a href="/contacts/import" { (t::IMPORT_CSV) }
        }
        (search_form(staff, q))
        (contact_table(&fields, &items))
        @if let Some(next) = next {
            @if q.is_empty() {
                p { a rel="next" href={"/contacts?cursor=" (next)} { (t::NEXT_PAGE) } }
            } @else {
                form method="post" action="/contacts" {
                    (csrf(staff))
                    input type="hidden" name="q" value=(q);
                    input type="hidden" name="cursor" value=(next);
                    button type="submit" { (t::NEXT_PAGE) }
                }
            }
        }
    };
    respond(StatusCode::OK, page(s, Some(staff), t::CONTACTS, "/contacts", body))
}

pub async fn contacts(State(s): State<AppState>, staff: Staff, Query(f): Query<Flash>) -> Response {
    let query = ContactQuery {
        cursor: f.cursor.clone(),
        limit: Some(25),
        ..ContactQuery::default()
    };
    contact_list(&s, &staff, query, "", flash(f.done.as_deref())).await
}

/// Searches are posted, so that addresses and names never reach a URL.
pub async fn search(State(s): State<AppState>, staff: Staff, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let q = form.get("q").unwrap_or("").trim().to_string();
    let mut query = ContactQuery {
        cursor: form.text("cursor").map(str::to_string),
        limit: Some(25),
        ..ContactQuery::default()
    };
    if !q.is_empty() {
        let exact_kind = if q.contains('@') {
            Some(FieldKind::Email)
        } else if q.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c))
            && q.chars().filter(char::is_ascii_digit).count() >= 5
        {
            Some(FieldKind::Phone)
        } else {
            None
        };
        let exact_field = exact_kind.and_then(|k| {
            s.service.inventory().record_type(CONTACT).and_then(|rt| {
                rt.fields
                    .iter()
                    .find(|(_, f)| f.kind == k && f.search == Some(SearchKind::Exact))
                    .map(|(n, _)| n.clone())
            })
        });
        match exact_field {
            Some(field) => query.exact = Some((field, q.clone())),
            None => query.q = Some(q.clone()),
        }
    }
    contact_list(&s, &staff, query, &q, None).await
}

/// The contact form: the inventory's fields (for an edit, those the
/// purpose shows) with inline errors.
fn contact_form(
    s: &AppState,
    staff: &Staff,
    action: &str,
    fields: &[String],
    values: &Map<String, Value>,
    purposes: Option<&[String]>,
    errors: &Errors,
) -> Markup {
    let inventory = s.service.inventory();
    let rt = inventory.record_type(CONTACT);
    html! {
        @if !errors.is_empty() {
            div.alert.error role="alert" {
                p { (t::FIX_ERRORS) }
                @for m in &errors.general { p { (m) } }
            }
        }
        form.card method="post" action=(action) novalidate {
            (csrf(staff))
            @if let Some(chosen) = purposes {
                fieldset.field.invalid[errors.field("purposes").is_some()] {
                    legend { (t::COLLECTED_FOR) }
                    p.hint { (t::COLLECTED_FOR_HINT) }
                    @for p in inventory.collection_purposes() {
                        label.check {
                            input type="checkbox" name="purposes" value=(p) checked[chosen.iter().any(|c| c == p)];
                            " " (p)
                        }
                    }
                    @if let Some(e) = errors.field("purposes") { p.error { (e) } }
                }
            }
            @for name in fields {
                @let kind = rt.and_then(|r| r.fields.get(name)).map(|f| match f.kind {
                    FieldKind::Email => "email",
                    FieldKind::Phone => "tel",
                    FieldKind::Date => "date",
                    _ => "text",
                }).unwrap_or("text");
                @let value = values.get(name).map(cell).unwrap_or_default();
                (input(name, &name.replace('_', " "), kind, &value, errors.field(name)))
            }
            button type="submit" { (if purposes.is_some() { t::CREATE } else { t::SAVE }) }
        }
    }
}

fn all_contact_fields(s: &AppState) -> Vec<String> {
    s.service
        .inventory()
        .record_type(CONTACT)
        .map(|rt| rt.fields.keys().cloned().collect())
        .unwrap_or_default()
}

pub async fn new_contact(State(s): State<AppState>, staff: Staff) -> Response {
    let chosen: Vec<String> = staff.purpose.clone().into_iter().collect();
    let body = contact_form(
        &s,
        &staff,
        "/contacts/new",
        &all_contact_fields(&s),
        &Map::new(),
        Some(&chosen),
        &Errors::none(),
    );
    ok_page(&s, &staff, t::NEW_CONTACT, "/contacts", body)
}

pub async fn create_contact(State(s): State<AppState>, staff: Staff, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let fields = all_contact_fields(&s);
    let mut body = Map::new();
    for name in &fields {
        if let Some(v) = form.text(name) {
            body.insert(name.clone(), Value::String(v.to_string()));
        }
    }
    let purposes: Vec<String> = form.all("purposes").into_iter().map(str::to_string).collect();
    let mut request = body.clone();
    request.insert("purposes".into(), Value::from(purposes.clone()));
    let result = match staff.ctx(&s).await {
        Ok(ctx) => s.service.create_contact(&ctx.0, request).await.map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(c) => Redirect::to(&format!("/contacts/{}?done=created", c.id)).into_response(),
        Err(e @ ApiError::Validation(_)) => {
            let mut names: Vec<&str> = fields.iter().map(String::as_str).collect();
            names.push("purposes");
            let errors = Errors::from_api(&e, &names);
            let markup = contact_form(&s, &staff, "/contacts/new", &fields, &body, Some(&purposes), &errors);
            respond(
                StatusCode::UNPROCESSABLE_ENTITY,
                page(&s, Some(&staff), t::NEW_CONTACT, "/contacts", markup),
            )
        }
        Err(e) => error_page(&s, Some(&staff), e),
    }
}

fn contact_id(raw: &str) -> Result<SubjectId, ApiError> {
    path_id(raw, "contact")
}

pub async fn contact(
    State(s): State<AppState>,
    staff: Staff,
    Path(id): Path<String>,
    Query(f): Query<Flash>,
) -> Response {
    let ctx = match staff.ctx(&s).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let id = match contact_id(&id) {
        Ok(id) => id,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let c = match s.service.get_contact(&ctx.0, id).await {
        Ok(c) => c,
        Err(ServiceError::Forbidden(m)) if m.contains("restricted") => {
            let body = html! { div.alert.warn role="alert" { p { (t::RESTRICTED) } } };
            return respond(
                StatusCode::FORBIDDEN,
                page(&s, Some(&staff), t::CONTACT, "/contacts", body),
            );
        }
        Err(e) => return error_page(&s, Some(&staff), e.into()),
    };
    let interactions = s.service.list_interactions(&ctx.0, id, None, Some(50)).await.ok();
    let consents = s.service.list_consents(&ctx.0, id).await.ok();
    let holds = s.service.list_legal_holds(&ctx.0, id).await.ok();
    let log = s
        .service
        .audit_query(
            &ctx.0,
            &AuditQuery {
                subject_id: Some(id),
                limit: Some(20),
                ..AuditQuery::default()
            },
        )
        .await
        .ok();
    let deals = s.service.list_deals(&ctx.0, None, Some(200)).await.ok();
    let restricted = c.restricted;
    let compliance = ctx.0.purpose.as_deref() == Some(steward_domain::inventory::COMPLIANCE);
    let org = match c
        .fields
        .get("organization_id")
        .and_then(|o| o.parse::<OrganizationId>().ok())
    {
        Some(o) => s.service.get_organization(&ctx.0, o).await.ok(),
        None => None,
    };
    let body = html! {
        @if let Some(m) = flash(f.done.as_deref()) { (notice(m)) }
        @if restricted { div.alert.warn role="alert" { p { (t::RESTRICTED) } } }
        div.actions { a.button href={"/contacts/" (c.id) "/edit"} { (t::EDIT) } }
        dl.record #contact-fields {
            @for (k, v) in &c.fields {
                dt { (k.replace('_', " ")) }
                dd data-field=(k) { (v) }
            }
            dt { (t::COLLECTED_FOR) } dd { (c.purposes.join(", ")) }
            dt { (t::CREATED_2) } dd { (when(c.created_at)) }
            dt { (t::UPDATED) } dd { (when(c.updated_at)) }
        }
        @if let Some(o) = &org {
            p { (t::ORGANISATION) a href={"/organizations/" (o.id)} { (o.name) } }
        }
        section aria-labelledby="int-h" {
            h2 id="int-h" { (t::INTERACTIONS) }
            @match &interactions {
                Some(p) => {
                    ul.timeline {
                        @for i in &p.items {
                            li { time { (when(i.occurred_at)) } " · " (i.kind.as_str()) @if let Some(sum) = &i.summary { " — " (sum) } }
                        }
                    }
                    form.card method="post" action={"/contacts/" (c.id) "/interactions"} {
                        (csrf(&staff))
                        div.field {
                            label for="kind" { (t::KIND) }
                            select id="kind" name="kind" { @for k in ["note", "call", "email", "meeting"] { option value=(k) { (k) } } }
                        }
                        div.field { label for="summary" { (t::SUMMARY) } textarea id="summary" name="summary" rows="3" {} }
                        button type="submit" { (t::ADD_INTERACTION) }
                    }
                },
                None => p { (t::NOT_SHOWN) },
            }
        }
        @if let Some(deals) = &deals {
            @let mine: Vec<_> = deals.items.iter().filter(|d| d.deal.contact_id == Some(c.id)).collect();
            @if !mine.is_empty() {
                section aria-labelledby="deals-h" {
                    h2 id="deals-h" { (t::DEALS) }
                    ul { @for d in mine { li { a href={"/deals/" (d.deal.id)} { (d.deal.title) } " · " (d.deal.stage.as_str()) } } }
                }
            }
        }
        section aria-labelledby="consent-h" {
            h2 id="consent-h" { (t::CONSENTS) }
            @match &consents {
                Some((_, states)) => {
                    table #consents {
                        thead { tr { th { (t::PURPOSE) } th { (t::STATUS_2) } th { (t::SINCE) } th { (t::ENDS) } } }
                        tbody {
                            @for st in states {
                                tr data-purpose=(st.purpose) {
                                    td { (st.purpose) } td.status { (st.status) }
                                    td { (st.since.map(when).unwrap_or_default()) }
                                    td { (st.renew_by.or(st.expires_at).map(when).unwrap_or_default()) }
                                }
                            }
                        }
                    }
                },
                None => p { (t::NOT_SHOWN) },
            }
        }
        @if let Some(holds) = &holds {
            section aria-labelledby="holds-h" {
                h2 id="holds-h" { (t::LEGAL_HOLDS) }
                @if holds.is_empty() { p { (t::NONE) } }
                ul #holds {
                    @for h in holds {
                        li {
                            (when(h.created_at)) " — " (h.reason)
                            @if h.released_at.is_some() { " (released)" }
                            @else if compliance {
                                " "
                                form.inline method="post" action={"/contacts/" (c.id) "/holds/" (h.id) "/release"} {
                                    (csrf(&staff))
                                    button type="submit" { (t::RELEASE) }
                                }
                            }
                        }
                    }
                }
                @if compliance {
                    form.card #hold-form method="post" action={"/contacts/" (c.id) "/holds"} {
                        (csrf(&staff))
                        (input("reason", t::REASON_FOR_A_NEW_LEGAL, "text", "", None))
                        button type="submit" { (t::PLACE_A_LEGAL_HOLD) }
                    }
                }
            }
        }
        @if compliance {
            section aria-labelledby="restrict-h" {
                h2 id="restrict-h" { (t::RESTRICTION_OF_PROCESSING_ART_18) }
                form.card #restriction-form method="post" action={"/contacts/" (c.id) "/restriction"} {
                    (csrf(&staff))
                    input type="hidden" name="restricted" value=(if restricted { "false" } else { "true" });
                    button type="submit" { @if restricted { (t::LIFT_THE_RESTRICTION) } @else { (t::RESTRICT_PROCESSING) } }
                }
            }
        }
        @if let Some(log) = &log {
            section aria-labelledby="log-h" {
                h2 id="log-h" { (t::ACCESS_LOG) }
                table {
                    thead { tr { th { (t::WHEN) } th { (t::ACTION) } th { (t::PURPOSE) } th { (t::ROLE) } th { (t::FIELDS) } } }
                    tbody {
                        @for e in &log.items {
                            @let r = &e.entry.record;
                            tr { td { (when(r.at)) } td { (r.action) } td { (r.purpose.clone().unwrap_or_default()) } td { (r.actor.role.clone().unwrap_or_default()) } td { (r.fields.join(", ")) } }
                        }
                    }
                }
            }
        }
    };
    respond(StatusCode::OK, page(&s, Some(&staff), t::CONTACT, "/contacts", body))
}

pub async fn edit_contact(State(s): State<AppState>, staff: Staff, Path(id): Path<String>) -> Response {
    let (ctx, id) = match (staff.ctx(&s).await, contact_id(&id)) {
        (Ok(c), Ok(id)) => (c, id),
        (Err(e), _) | (_, Err(e)) => return error_page(&s, Some(&staff), e),
    };
    match s.service.get_contact(&ctx.0, id).await {
        Ok(c) => {
            let fields = visible_fields(&s, &staff);
            let values: Map<String, Value> = c
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            let body = contact_form(
                &s,
                &staff,
                &format!("/contacts/{id}/edit"),
                &fields,
                &values,
                None,
                &Errors::none(),
            );
            ok_page(&s, &staff, t::EDIT, "/contacts", body)
        }
        Err(e) => error_page(&s, Some(&staff), e.into()),
    }
}

pub async fn update_contact(State(s): State<AppState>, staff: Staff, Path(id): Path<String>, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let (ctx, id) = match (staff.ctx(&s).await, contact_id(&id)) {
        (Ok(c), Ok(id)) => (c, id),
        (Err(e), _) | (_, Err(e)) => return error_page(&s, Some(&staff), e),
    };
    let before = match s.service.get_contact(&ctx.0, id).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, Some(&staff), e.into()),
    };
    let fields = visible_fields(&s, &staff);
    let mut change = Map::new();
    let mut values = Map::new();
    for name in &fields {
        let new = form.text(name);
        let old = before.fields.get(name).map(String::as_str);
        if let Some(v) = new {
            values.insert(name.clone(), Value::String(v.to_string()));
        }
        match (old, new) {
            (Some(o), Some(n)) if o == n => {}
            (None, None) => {}
            (_, Some(n)) => {
                change.insert(name.clone(), Value::String(n.to_string()));
            }
            (Some(_), None) => {
                change.insert(name.clone(), Value::Null);
            }
        }
    }
    if change.is_empty() {
        return Redirect::to(&format!("/contacts/{id}")).into_response();
    }
    match s
        .service
        .update_contact(&ctx.0, id, change)
        .await
        .map_err(ApiError::from)
    {
        Ok(_) => Redirect::to(&format!("/contacts/{id}?done=saved")).into_response(),
        Err(e @ ApiError::Validation(_)) => {
            let names: Vec<&str> = fields.iter().map(String::as_str).collect();
            let errors = Errors::from_api(&e, &names);
            let markup = contact_form(
                &s,
                &staff,
                &format!("/contacts/{id}/edit"),
                &fields,
                &values,
                None,
                &errors,
            );
            respond(
                StatusCode::UNPROCESSABLE_ENTITY,
                page(&s, Some(&staff), t::EDIT, "/contacts", markup),
            )
        }
        Err(e) => error_page(&s, Some(&staff), e),
    }
}

pub async fn add_interaction(State(s): State<AppState>, staff: Staff, Path(id): Path<String>, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let (ctx, id) = match (staff.ctx(&s).await, contact_id(&id)) {
        (Ok(c), Ok(id)) => (c, id),
        (Err(e), _) | (_, Err(e)) => return error_page(&s, Some(&staff), e),
    };
    let input = InteractionInput {
        kind: form.get("kind").unwrap_or("").to_string(),
        summary: form.get("summary").unwrap_or("").to_string(),
        occurred_at: None,
    };
    match s.service.add_interaction(&ctx.0, id, input).await {
        Ok(_) => Redirect::to(&format!("/contacts/{id}")).into_response(),
        Err(e) => error_page(&s, Some(&staff), e.into()),
    }
}

/// Every contact of the list the purpose may see, with the fields it shows.
pub async fn export_csv(State(s): State<AppState>, staff: Staff) -> Response {
    let ctx = match staff.ctx(&s).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let fields = visible_fields(&s, &staff);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header_row = vec!["id".to_string()];
    header_row.extend(fields.iter().cloned());
    let _ = w.write_record(&header_row);
    let mut cursor = None;
    loop {
        let query = ContactQuery {
            cursor: cursor.clone(),
            limit: Some(200),
            ..ContactQuery::default()
        };
        let page_result = match s.service.list_contacts(&ctx.0, &query).await {
            Ok(p) => p,
            Err(e) => return error_page(&s, Some(&staff), e.into()),
        };
        for c in &page_result.items {
            let mut row = vec![c.id.to_string()];
            row.extend(
                fields
                    .iter()
                    .map(|f| neutralise(c.fields.get(f).map_or("", String::as_str))),
            );
            let _ = w.write_record(&row);
        }
        match page_result.next_cursor {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    let bytes = w.into_inner().unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"contacts.csv\""),
        ],
        bytes,
    )
        .into_response()
}

/// Spreadsheet formula injection: a cell that starts like a formula is
/// prefixed with an apostrophe.
fn neutralise(v: &str) -> String {
    let mut chars = v.chars();
    let first = chars.next();
    let signed_text = matches!(first, Some('+' | '-')) && !chars.next().is_some_and(|c| c.is_ascii_digit());
    if matches!(first, Some('=' | '@' | '\t' | '\r')) || signed_text {
        format!("'{v}")
    } else {
        v.to_string()
    }
}

pub async fn organizations(State(s): State<AppState>, staff: Staff, Query(f): Query<Flash>) -> Response {
    let ctx = match staff.ctx(&s).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    match s
        .service
        .list_organizations(&ctx.0, f.cursor.as_deref(), Some(50))
        .await
    {
        Ok(p) => {
            let body = html! {
                table {
                    thead { tr { th { (t::NAME) } th { (t::DOMAIN) } th { (t::CREATED_2) } } }
                    tbody { @for o in &p.items { tr { td { a href={"/organizations/" (o.id)} { (o.name) } } td { (o.domain.clone().unwrap_or_default()) } td { (when(o.created_at)) } } } }
                }
                @if let Some(n) = &p.next_cursor { p { a rel="next" href={"/organizations?cursor=" (n)} { (t::NEXT_PAGE) } } }
            };
            ok_page(&s, &staff, t::ORGANIZATIONS, "/organizations", body)
        }
        Err(e) => error_page(&s, Some(&staff), e.into()),
    }
}

pub async fn organization(State(s): State<AppState>, staff: Staff, Path(id): Path<String>) -> Response {
    let ctx = match staff.ctx(&s).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let id: OrganizationId = match path_id(&id, "organization") {
        Ok(id) => id,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    match s.service.get_organization(&ctx.0, id).await {
        Ok(o) => {
            let body = dl(&crate::views::organization(&o), &["id"]);
            ok_page(&s, &staff, t::ORGANISATION_2, "/organizations", body)
        }
        Err(e) => error_page(&s, Some(&staff), e.into()),
    }
}

pub async fn deals(State(s): State<AppState>, staff: Staff, Query(f): Query<Flash>) -> Response {
    let ctx = match staff.ctx(&s).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    match s.service.list_deals(&ctx.0, f.cursor.as_deref(), Some(50)).await {
        Ok(p) => {
            let body = html! {
                table {
                    thead { tr { th { (t::TITLE) } th { (t::STAGE) } th { (t::AMOUNT) } th { (t::UPDATED) } } }
                    tbody {
                        @for d in &p.items {
                            @let v = crate::views::deal(d);
                            tr {
                                td { a href={"/deals/" (d.deal.id)} { (cell(&v["title"])) } }
                                td { (cell(&v["stage"])) }
                                td { (cell(&v["amount"])) " " (cell(&v["currency"])) }
                                td { (when(d.deal.updated_at)) }
                            }
                        }
                    }
                }
                @if let Some(n) = &p.next_cursor { p { a rel="next" href={"/deals?cursor=" (n)} { (t::NEXT_PAGE) } } }
            };
            ok_page(&s, &staff, t::DEALS, "/deals", body)
        }
        Err(e) => error_page(&s, Some(&staff), e.into()),
    }
}

pub async fn deal(State(s): State<AppState>, staff: Staff, Path(id): Path<String>) -> Response {
    let ctx = match staff.ctx(&s).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let id: DealId = match path_id(&id, "deal") {
        Ok(id) => id,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    match s.service.get_deal(&ctx.0, id).await {
        Ok(d) => {
            let v = crate::views::deal(&d);
            let body = html! {
                (dl(&v, &["id", "contact_id", "organization_id"]))
                @if let Some(c) = d.deal.contact_id.filter(|_| v.get("contact_id").is_some()) { p { a href={"/contacts/" (c)} { (t::CONTACT) } } }
                @if let Some(o) = d.deal.organization_id.filter(|_| v.get("organization_id").is_some()) { p { a href={"/organizations/" (o)} { (t::ORGANISATION_2) } } }
            };
            ok_page(&s, &staff, t::DEAL, "/deals", body)
        }
        Err(e) => error_page(&s, Some(&staff), e.into()),
    }
}

/// Legal holds and restriction, from the contact page (compliance purpose).
pub async fn contact_action(
    State(s): State<AppState>,
    staff: Staff,
    Path(params): Path<Vec<(String, String)>>,
    form: Form,
) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let ctx = match staff.ctx(&s).await {
        Ok(c) => c,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (id, action, hold) = (get("id"), get("action"), get("hold"));
    let st = State(s.clone());
    let result: Result<&str, ApiError> = match (action.as_str(), hold.is_empty()) {
        ("holds", true) => match json_body(serde_json::json!({ "reason": form.get("reason").unwrap_or("").trim() })) {
            Ok(b) => crate::routes::dsr::place_hold(st, ctx, Path(id.clone()), crate::extract::ApiJson(b))
                .await
                .map(|_| "hold"),
            Err(e) => Err(e),
        },
        ("release", false) => crate::routes::dsr::release_hold(st, ctx, Path((id.clone(), hold)))
            .await
            .map(|_| "released"),
        ("restriction", true) => {
            let restricted = form.get("restricted") == Some("true");
            match json_body(serde_json::json!({ "restricted": restricted })) {
                Ok(b) => crate::routes::contacts::restriction(st, ctx, Path(id.clone()), crate::extract::ApiJson(b))
                    .await
                    .map(|_| if restricted { "restricted" } else { "unrestricted" }),
                Err(e) => Err(e),
            }
        }
        _ => Err(ApiError::NotFound("no such action".into())),
    };
    match result {
        Ok(done) => Redirect::to(&format!("/contacts/{id}?done={done}")).into_response(),
        Err(e) => error_page(&s, Some(&staff), e),
    }
}

/// A handler argument built from JSON, with the API's own validation.
fn json_body<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    crate::extract::parse_json(&serde_json::to_vec(&v).unwrap_or_default())
}
