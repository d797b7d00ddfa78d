//! The web front-ends `steward serve` serves itself: the staff console at
//! `/` and the privacy portal at `/privacy`.
//!
//! Pages are rendered on the server from templates compiled into the binary
//! (maud) and go through the same service calls — and, where a handler
//! parses input, the same API handlers — as the JSON API: one door to
//! personal data, with its purpose checks, minimisation and audit. Every
//! page works without JavaScript; a small script of our own only updates
//! countdowns. Responses carry a strict Content-Security-Policy, no
//! referrer and no caching; nothing personal goes into a URL, a title or
//! client-side storage (searches are posted, records are named by id).

mod admin;
mod console;
mod dpo;
mod html;
mod import;
mod portal;
mod qr;
pub mod text;

use axum::http::{header, HeaderValue};
use axum::routing::{get, post};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::AppState;

/// The chosen purpose (a purpose name, never personal data).
pub const PURPOSE_COOKIE: &str = "steward_purpose";

/// Scripts and styles from this origin only, no inline script, no framing,
/// forms post only here.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("../../assets/steward.css");
const JS: &str = include_str!("../../assets/steward.js");

async fn css() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
}

async fn js() -> impl axum::response::IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        JS,
    )
}

/// The console's and the portal's routes, with their security headers.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(console::home))
        .route("/login", get(console::login_page).post(console::login))
        .route("/logout", post(console::logout))
        .route("/purpose", post(console::choose_purpose))
        .route("/security", get(console::security))
        .route("/security/mfa", get(console::mfa_page).post(console::mfa_enroll))
        .route("/security/mfa/confirm", post(console::mfa_confirm))
        .route("/security/sessions/{id}/revoke", post(console::revoke_session))
        .route("/security/tokens", post(console::create_token))
        .route("/contacts", get(console::contacts).post(console::search))
        .route("/contacts/new", get(console::new_contact).post(console::create_contact))
        .route("/contacts/export.csv", get(console::export_csv))
        .route(
            "/contacts/import",
            get(import::form)
                .post(import::start)
                .layer(axum::extract::DefaultBodyLimit::max(import::MAX_IMPORT_BYTES)),
        )
        .route("/contacts/import/{id}", get(import::status))
        .route("/contacts/{id}", get(console::contact))
        .route(
            "/contacts/{id}/edit",
            get(console::edit_contact).post(console::update_contact),
        )
        .route("/contacts/{id}/interactions", post(console::add_interaction))
        .route("/contacts/{id}/{action}", post(console::contact_action))
        .route("/contacts/{id}/holds/{hold}/{action}", post(console::contact_action))
        .route("/organizations", get(console::organizations))
        .route("/organizations/{id}", get(console::organization))
        .route("/deals", get(console::deals))
        .route("/deals/{id}", get(console::deal))
        .route("/requests", get(dpo::requests))
        .route("/requests/{id}", get(dpo::request))
        .route("/requests/{id}/{action}", post(dpo::request_action))
        .route("/requests/{id}/certificate", get(dpo::certificate))
        .route("/requests/{id}/export", get(dpo::export))
        .route("/notices", get(dpo::notices).post(dpo::publish_notice))
        .route("/notices/renewals/mail", post(dpo::renewal_mail))
        .route("/incidents", get(dpo::incidents).post(dpo::open_incident))
        .route("/incidents/{id}", get(dpo::incident))
        .route("/incidents/{id}/{action}", post(dpo::incident_action))
        .route("/retention", get(dpo::retention))
        .route("/audit", get(dpo::audit))
        .route("/audit/verify", post(dpo::audit_verify))
        .route("/reports/art30", get(dpo::art30))
        .route("/reports/security", get(dpo::security_report))
        .route("/reports/compliance", get(dpo::compliance_page))
        .route("/reports/compliance/report", get(dpo::compliance_file))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{id}", post(admin::update_user))
        .route("/admin/users/{id}/training", post(admin::add_training))
        .route("/admin/users/{id}/revoke-tokens", post(admin::revoke_tokens))
        .route("/admin/settings", get(admin::settings).post(admin::put_setting))
        .route("/privacy", get(portal::home))
        .route("/privacy/request", post(portal::request))
        .route("/privacy/verify", post(portal::verify))
        .route("/privacy/status", post(portal::status))
        .route("/privacy/download", post(portal::download))
        .route("/privacy/consent", post(portal::consent))
        .route("/privacy/consent/confirm", post(portal::confirm_consent))
        .route("/privacy/notice", get(portal::notice_page))
        .route("/assets/steward.css", get(css))
        .route("/assets/steward.js", get(js))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

#[cfg(test)]
mod tests {
    /// English text belongs in `text.rs` (to be translated later): the page
    /// modules hold no string literal that reads as words for a person.
    #[test]
    fn page_strings_live_in_text_rs() {
        let pages = [
            ("console.rs", include_str!("console.rs")),
            ("dpo.rs", include_str!("dpo.rs")),
            ("admin.rs", include_str!("admin.rs")),
            ("portal.rs", include_str!("portal.rs")),
            ("import.rs", include_str!("import.rs")),
            ("html.rs", include_str!("html.rs")),
        ];
        let mut found = Vec::new();
        for (name, src) in pages {
            for (n, line) in src.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") || code.starts_with("#[") || code.contains("format!") {
                    continue;
                }
                let mut rest = code;
                while let Some(start) = rest.find('"') {
                    let after = &rest[start + 1..];
                    let Some(end) = after.find('"') else { break };
                    let lit = &after[..end];
                    let mut chars = lit.chars();
                    let words = matches!((chars.next(), chars.next()), (Some(a), Some(b)) if a.is_ascii_uppercase() && b.is_ascii_lowercase());
                    if words && lit.len() >= 3 && !lit.contains('{') {
                        found.push(format!("{name}:{}: {lit}", n + 1));
                    }
                    rest = &after[end + 1..];
                }
            }
        }
        assert!(found.is_empty(), "move these to web/text.rs:\n{}", found.join("\n"));
    }
}
