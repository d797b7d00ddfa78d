//! The pieces every page shares: the signed-in staff member (from the
//! session cookie), form bodies with their CSRF token, the layout with its
//! purpose selector, and error pages made from the API's problem details.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use steward_domain::FieldError;
use steward_service::Principal;

use super::text as t;
use super::PURPOSE_COOKIE;
use crate::extract::{client_address, cookie, request_id, Ctx, SESSION_COOKIE};
use crate::problem::ApiError;
use crate::AppState;

/// The record type whose fields the purpose selector lists.
const CONTACT: &str = "contact";

/// A staff member signed in with a session cookie.
pub struct Staff {
    pub principal: Principal,
    token: String,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// The purpose chosen with the selector (or the role's default).
    pub purpose: Option<String>,
    request_id: Option<String>,
    client: Option<String>,
    /// The path of the page being shown when it was a GET (ids only, never
    /// personal data), so the purpose selector returns to it.
    path: Option<String>,
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).map(str::to_string) else {
            return Err(Redirect::to("/login").into_response());
        };
        let principal = match state.service.authenticate(&token).await {
            Ok(p) => p,
            Err(steward_service::ServiceError::Unauthenticated) => {
                let mut r = Redirect::to("/login").into_response();
                clear_cookies(&mut r);
                return Err(r);
            }
            Err(e) => return Err(error_page(state, None, ApiError::from(e))),
        };
        let inventory = state.service.inventory();
        let allowed = inventory
            .role(&principal.role)
            .map(|r| r.purposes.clone())
            .unwrap_or_default();
        let chosen = cookie(&parts.headers, PURPOSE_COOKIE)
            .filter(|p| allowed.iter().any(|a| a == p))
            .map(str::to_string);
        let purpose = chosen.or_else(|| inventory.role(&principal.role).and_then(|r| r.default_purpose.clone()));
        Ok(Self {
            csrf: state.service.csrf_token_for(&token),
            principal,
            token,
            purpose,
            request_id: request_id(&parts.headers),
            client: client_address(parts),
            path: (parts.method == axum::http::Method::GET).then(|| parts.uri.path().to_string()),
        })
    }
}

impl Staff {
    /// The request context for the chosen purpose, as the API builds it.
    pub async fn ctx(&self, s: &AppState) -> Result<Ctx, ApiError> {
        let ctx = s
            .service
            .context(
                self.principal.clone(),
                self.purpose.as_deref(),
                self.request_id.clone(),
                self.client.clone(),
            )
            .await?;
        Ok(Ctx(ctx))
    }

    /// Checks the form's CSRF token (bound to this session): `Some` holds
    /// the refusal page when it does not match.
    pub fn refuse_forged(&self, s: &AppState, form: &Form) -> Option<Response> {
        if s.service.csrf_matches(&self.token, form.get("_csrf").unwrap_or("")) {
            None
        } else {
            Some(error_page(
                s,
                Some(self),
                ApiError::Forbidden("the form is out of date; reload the page and try again".into()),
            ))
        }
    }

    pub fn is(&self, roles: &[&str]) -> bool {
        roles.contains(&self.principal.role.as_str())
    }
}

/// An `application/x-www-form-urlencoded` body as name/value pairs.
pub struct Form(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self(form_urlencoded::parse(&bytes).into_owned().collect()))
    }
}

impl Form {
    /// The first value of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed, if not empty.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// Every value of `name` (checkboxes).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Field errors by field name, and those that name no field of the form.
pub struct Errors {
    pub by_field: BTreeMap<String, String>,
    pub general: Vec<String>,
}

impl Errors {
    pub fn none() -> Self {
        Self {
            by_field: BTreeMap::new(),
            general: Vec::new(),
        }
    }

    /// Splits a problem into field-level messages (for the fields in
    /// `fields`) and general ones.
    pub fn from_api(e: &ApiError, fields: &[&str]) -> Self {
        let mut out = Self::none();
        let problem = e.problem();
        if problem.errors.is_empty() {
            out.general.push(sentence(&problem.detail));
        }
        for FieldError { field, message } in problem.errors {
            if fields.contains(&field.as_str()) {
                out.by_field.insert(field, sentence(&message));
            } else {
                out.general.push(sentence(&format!("{field} {message}")));
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.by_field.is_empty() && self.general.is_empty()
    }

    pub fn field(&self, name: &str) -> Option<&str> {
        self.by_field.get(name).map(String::as_str)
    }
}

/// Capitalised, with a full stop.
pub fn sentence(s: &str) -> String {
    let mut c = s.chars();
    let mut out = match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    };
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// The hidden CSRF input of a form.
pub fn csrf(staff: &Staff) -> Markup {
    html! { input type="hidden" name="_csrf" value=(staff.csrf); }
}

/// A labelled text input with its inline error.
pub fn input(name: &str, label: &str, kind: &str, value: &str, error: Option<&str>) -> Markup {
    input_with_id(&format!("f-{name}"), name, label, kind, value, error)
}

/// [`input`] with its own id, for a page with several forms asking for the
/// same field (ids must be unique for labels to point at their input).
pub fn input_with_id(id: &str, name: &str, label: &str, kind: &str, value: &str, error: Option<&str>) -> Markup {
    let err_id = format!("e-{id}");
    html! {
        div.field.invalid[error.is_some()] {
            label for=(id) { (label) }
            @if let Some(e) = error {
                input id=(id) name=(name) type=(kind) value=(value) autocomplete="off" aria-invalid="true" aria-describedby=(err_id);
                p.error id=(err_id) { (e) }
            } @else {
                input id=(id) name=(name) type=(kind) value=(value) autocomplete="off";
            }
        }
    }
}

/// A page: the layout with the navigation for the staff member's role and
/// the purpose selector.
pub fn page(s: &AppState, staff: Option<&Staff>, title: &str, here: &str, body: Markup) -> Markup {
    layout(s, staff, title, here, None, body)
}

/// A page that reloads itself every `refresh` seconds (progress without
/// JavaScript), or the plain page.
pub fn layout(
    s: &AppState,
    staff: Option<&Staff>,
    title: &str,
    here: &str,
    refresh: Option<u32>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(secs) = refresh {
                    meta http-equiv="refresh" content=(secs);
                }
                title { (title) " · " (t::PRODUCT) }
                link rel="stylesheet" href="/assets/steward.css";
                script src="/assets/steward.js" defer {}
            }
            body {
                a.skip href="#main" { (t::SKIP) }
                header.top {
                    a.brand href="/" { (t::PRODUCT) }
                    @if let Some(staff) = staff {
                        (nav(s, staff, here))
                        (purpose_selector(s, staff, here))
                        div.who {
                            span { (t::SIGNED_IN_AS) " " strong { (staff.principal.username) } " (" (staff.principal.role) ")" }
                            " "
                            a href="/security" { (t::SECURITY) }
                            form.inline method="post" action="/logout" {
                                (csrf(staff))
                                button type="submit" { (t::SIGN_OUT) }
                            }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

fn nav(s: &AppState, staff: &Staff, here: &str) -> Markup {
    let mut links: Vec<(&str, &str)> = vec![("/", t::HOME)];
    // The records the role may read, as the inventory grants them (custom
    // roles included).
    let inventory = s.service.inventory();
    let role = inventory.role(&staff.principal.role);
    let may = |action: &str| role.is_some_and(|r| r.actions.iter().any(|a| a == action));
    if may("contact.read") && role.is_some_and(|r| !r.purposes.is_empty()) {
        links.push(("/contacts", t::CONTACTS));
    }
    if may("organization.read") {
        links.push(("/organizations", t::ORGANIZATIONS));
    }
    if may("deal.read") {
        links.push(("/deals", t::DEALS));
    }
    if staff.is(&["dpo", "compliance"]) {
        links.extend([
            ("/requests", t::REQUESTS),
            ("/notices", t::CONSENT),
            ("/incidents", t::INCIDENTS),
            ("/retention", t::RETENTION),
        ]);
    }
    if staff.is(&["dpo", "auditor", "admin"]) {
        links.push(("/audit", t::AUDIT));
        links.push(("/reports/art30", t::ART30));
        links.push(("/reports/security", t::SECURITY_REPORT));
        if !staff.is(&["admin"]) {
            links.push(("/reports/compliance", t::COMPLIANCE_REPORT));
        }
    }
    if staff.is(&["auditor"]) {
        links.push(("/incidents", t::INCIDENTS));
    }
    if staff.is(&["admin"]) {
        links.push(("/admin/users", t::USERS));
        links.push(("/admin/settings", t::SETTINGS));
    }
    html! {
        nav aria-label=(t::NAV_LABEL) {
            ul {
                @for (href, label) in links {
                    @let current = href == here || (href != "/" && here.starts_with(href));
                    li { a href=(href) aria-current=[current.then_some("page")] { (label) } }
                }
            }
        }
    }
}

fn purpose_selector(s: &AppState, staff: &Staff, here: &str) -> Markup {
    let inventory = s.service.inventory();
    let purposes = inventory
        .role(&staff.principal.role)
        .map(|r| r.purposes.clone())
        .unwrap_or_default();
    if purposes.is_empty() {
        return html! { p.purpose { (t::NO_PURPOSE) } };
    }
    let fields: Vec<&str> = staff
        .purpose
        .as_deref()
        .map(|p| {
            inventory
                .fields_for_purpose(CONTACT, p)
                .iter()
                .map(String::as_str)
                .collect()
        })
        .unwrap_or_default();
    html! {
        form.purpose method="post" action="/purpose" {
            (csrf(staff))
            input type="hidden" name="back" value=(staff.path.as_deref().unwrap_or(here));
            label for="purpose" { (t::PURPOSE) }
            select id="purpose" name="purpose" {
                @for p in &purposes {
                    option value=(p) selected[staff.purpose.as_deref() == Some(p.as_str())] { (p) }
                }
            }
            button type="submit" { (t::USE_PURPOSE) }
            p.allowed id="purpose-fields" {
                (t::PURPOSE_FIELDS) ": "
                @for (i, f) in fields.iter().enumerate() {
                    @if i > 0 { ", " }
                    code { (f) }
                }
            }
        }
    }
}

/// A complete HTML response.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut r = (status, markup.into_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}

/// The page for an error: sign-in for a missing session, otherwise the
/// problem's title and detail with its status.
pub fn error_page(s: &AppState, staff: Option<&Staff>, e: ApiError) -> Response {
    if matches!(e, ApiError::Unauthorized(_)) {
        return Redirect::to("/login").into_response();
    }
    let problem = e.problem();
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = html! {
        div.alert.error role="alert" {
            p { (sentence(&problem.detail)) }
        }
        p { a href="/" { (t::HOME) } }
    };
    respond(status, page(s, staff, problem.title, "", body))
}

/// A flash message chosen by key (never echoes input).
pub fn notice(message: &str) -> Markup {
    html! { div.alert.ok role="status" { p { (message) } } }
}

/// Drops the session cookie and the purpose.
pub fn clear_cookies(r: &mut Response) {
    for name in [SESSION_COOKIE, PURPOSE_COOKIE, crate::extract::CSRF_COOKIE] {
        if let Ok(v) = HeaderValue::from_str(&format!("{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
}

/// Sets a cookie for the console (`Secure` when served over HTTPS).
pub fn set_cookie(s: &AppState, r: &mut Response, name: &str, value: &str, max_age: Option<i64>) {
    let secure = if s.secure_cookies { "; Secure" } else { "" };
    let age = max_age.map(|a| format!("; Max-Age={a}")).unwrap_or_default();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{age}"
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// A time for people: UTC, to the minute.
pub fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A JSON value as text for a table cell.
pub fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A JSON object as a definition list (for records with many members).
pub fn dl(v: &serde_json::Value, skip: &[&str]) -> Markup {
    html! {
        dl.record {
            @if let Some(map) = v.as_object() {
                @for (k, v) in map {
                    @if !skip.contains(&k.as_str()) {
                        dt { (k.replace('_', " ")) }
                        dd { (cell(v)) }
                    }
                }
            }
        }
    }
}

/// Embeds trusted markup generated by Steward itself (Art. 30 report).
pub fn trusted(markup: String) -> Markup {
    PreEscaped(markup)
}
