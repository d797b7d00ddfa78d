//! Sign-in, second factors, sessions and a user's own API tokens:
//! `/api/v1/auth/*` and `/api/v1/tokens`.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use steward_domain::TokenId;
use steward_service::admin::TokenView;
use steward_service::ServiceError;
use zeroize::Zeroizing;

use super::Items;
use crate::extract::{path_id, ApiJson, Authed, ClientAddr, CSRF_COOKIE, SESSION_COOKIE};
use crate::problem::{ApiError, ApiResult};
use crate::AppState;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    username: String,
    #[schemars(with = "String", extend("format" = "password"))]
    password: Zeroizing<String>,
    /// A current TOTP code, or a recovery code, once a second factor is on.
    #[serde(default)]
    totp: Option<String>,
    /// `"cookie"`: also set an HttpOnly session cookie and a CSRF cookie
    /// (for the web console).
    #[serde(default)]
    #[schemars(extend("enum" = ["token", "cookie", null]))]
    session: Option<String>,
}

/// A session: its bearer token and how long it lasts.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "LoginOutput")]
pub struct LoginOut {
    /// The session's bearer token (also set as a cookie with `session: "cookie"`).
    token: String,
    #[schemars(extend("const" = "Bearer"))]
    token_type: &'static str,
    /// Seconds until the session expires at the latest.
    expires_in: i64,
    /// A second factor was verified at sign-in.
    mfa: bool,
    /// The role must enrol TOTP before it can read personal data.
    mfa_enrollment_required: bool,
}

pub async fn login(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(input): ApiJson<LoginInput>,
) -> ApiResult<Response> {
    let cookie = match input.session.as_deref() {
        None | Some("token") => false,
        Some("cookie") => true,
        Some(_) => {
            return Err(ApiError::Validation(vec![steward_domain::FieldError::new(
                "session",
                "must be \"token\" or \"cookie\"",
            )]))
        }
    };
    let outcome = s
        .service
        .login(&input.username, input.password, input.totp.as_deref(), client)
        .await
        .map_err(|e| match e {
            ServiceError::Unauthenticated => {
                ApiError::Unauthorized("the username, password or one-time code is wrong".into())
            }
            other => other.into(),
        })?;
    let body = LoginOut {
        token: outcome.token.as_str().to_string(),
        token_type: "Bearer",
        expires_in: outcome.expires_in_seconds,
        mfa: outcome.mfa,
        mfa_enrollment_required: outcome.mfa_enrollment_required,
    };
    let mut resp = Json(body).into_response();
    if cookie {
        let csrf = s.service.csrf_token_for(&outcome.token);
        let max_age = outcome.expires_in_seconds;
        for c in [
            format!(
                "{SESSION_COOKIE}={}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age}",
                outcome.token.as_str()
            ),
            format!("{CSRF_COOKIE}={csrf}; Path=/; Secure; SameSite=Strict; Max-Age={max_age}"),
        ] {
            if let Ok(v) = HeaderValue::from_str(&c) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
        }
    }
    Ok(resp)
}

pub async fn logout(State(s): State<AppState>, Authed(p): Authed) -> ApiResult<Response> {
    s.service.logout(&p).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        if let Ok(v) = HeaderValue::from_str(&format!("{name}=; Path=/; Max-Age=0; Secure; SameSite=Strict")) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

/// Who is signed in.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "Me")]
pub struct MeOut {
    id: uuid::Uuid,
    username: String,
    role: String,
    mfa_enabled: bool,
    /// Signed in with a password only while a second factor is required:
    /// only enrolment and sign-out are allowed.
    mfa_pending: bool,
    recovery_codes_left: u64,
    /// The purpose the token is limited to, if any.
    token_scope: Option<String>,
}

pub async fn me(State(s): State<AppState>, Authed(p): Authed) -> ApiResult<Json<MeOut>> {
    let (mfa, recovery_codes_left) = s.service.mfa_status(p.user_id).await?;
    Ok(Json(MeOut {
        id: *p.user_id.as_uuid(),
        username: p.username.clone(),
        role: p.role.clone(),
        mfa_enabled: mfa,
        mfa_pending: p.mfa_pending,
        recovery_codes_left,
        token_scope: p.scope.clone(),
    }))
}

/// A new TOTP secret, to be confirmed with a code.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "TotpEnrollment")]
pub struct EnrollmentOut {
    /// RFC 4648 base32, no padding.
    secret: String,
    otpauth_uri: String,
}

pub async fn totp_enroll(State(s): State<AppState>, Authed(p): Authed) -> ApiResult<Json<EnrollmentOut>> {
    let e = s.service.totp_enroll(&p).await?;
    Ok(Json(EnrollmentOut {
        secret: e.secret_base32.as_str().to_string(),
        otpauth_uri: e.otpauth_uri.as_str().to_string(),
    }))
}

/// The second factor is on; the recovery codes are shown this once.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "TotpConfirmed")]
pub struct ConfirmedOut {
    enabled: bool,
    recovery_codes: Vec<String>,
    detail: &'static str,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TotpConfirm")]
pub struct ConfirmInput {
    code: String,
}

pub async fn totp_confirm(
    State(s): State<AppState>,
    Authed(p): Authed,
    ApiJson(input): ApiJson<ConfirmInput>,
) -> ApiResult<Json<ConfirmedOut>> {
    let codes = s.service.totp_confirm(&p, &input.code).await?;
    Ok(Json(ConfirmedOut {
        enabled: true,
        recovery_codes: codes,
        detail: "the second factor is on; sign in again with a code to get a session with full access",
    }))
}

/// An API token or session (never its secret).
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "Token")]
pub struct TokenOut {
    id: uuid::Uuid,
    kind: &'static str,
    name: Option<String>,
    /// The purpose the token is limited to, if any.
    purpose: Option<String>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    /// Issued after a second factor.
    mfa: bool,
}

#[must_use]
pub fn token_json(t: &TokenView) -> TokenOut {
    TokenOut {
        id: *t.id.as_uuid(),
        kind: t.kind,
        name: t.name.clone(),
        purpose: t.purpose.clone(),
        created_at: t.created_at,
        expires_at: t.expires_at,
        last_used_at: t.last_used_at,
        revoked_at: t.revoked_at,
        mfa: t.mfa,
    }
}

fn list_of(tokens: &[TokenView], sessions: bool) -> Items<TokenOut> {
    Items {
        items: tokens
            .iter()
            .filter(|t| steward_service::admin::is_session(t.kind) == sessions)
            .map(token_json)
            .collect(),
    }
}

pub async fn sessions(State(s): State<AppState>, Authed(p): Authed) -> ApiResult<Json<Items<TokenOut>>> {
    Ok(Json(list_of(&s.service.own_tokens(&p).await?, true)))
}

pub async fn tokens(State(s): State<AppState>, Authed(p): Authed) -> ApiResult<Json<Items<TokenOut>>> {
    Ok(Json(list_of(&s.service.own_tokens(&p).await?, false)))
}

/// A new token with its secret, shown this once.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "CreatedToken")]
pub struct CreatedToken {
    #[serde(flatten)]
    token: TokenOut,
    /// The bearer secret; only its hash is stored.
    #[serde(rename = "token")]
    secret: String,
}

pub async fn revoke(State(s): State<AppState>, Authed(p): Authed, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id: TokenId = path_id(&id, "token")?;
    s.service.revoke_own_token(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenInput {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    #[schemars(range(min = 1))]
    expires_in_days: Option<u32>,
    /// Limit the token to this purpose.
    #[serde(default)]
    purpose: Option<String>,
}

pub async fn create_token(
    State(s): State<AppState>,
    Authed(p): Authed,
    ApiJson(input): ApiJson<TokenInput>,
) -> ApiResult<impl IntoResponse> {
    let (view, secret) = s
        .service
        .create_own_token(&p, input.name, input.expires_in_days, input.purpose)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            token: token_json(&view),
            secret: secret.to_string(),
        }),
    ))
}
