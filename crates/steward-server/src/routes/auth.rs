//! Sign-in, second factors, sessions and a user's own API tokens:
//! `/api/v1/auth/*` and `/api/v1/tokens`.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use steward_domain::TokenId;
use steward_service::admin::TokenView;
use steward_service::ServiceError;
use zeroize::Zeroizing;

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
    let body = json!({
        "token": outcome.token.as_str(),
        "token_type": "Bearer",
        "expires_in": outcome.expires_in_seconds,
        "mfa": outcome.mfa,
        "mfa_enrollment_required": outcome.mfa_enrollment_required,
    });
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

pub async fn me(State(s): State<AppState>, Authed(p): Authed) -> ApiResult<Json<Value>> {
    let (mfa, recovery_codes_left) = s.service.mfa_status(p.user_id).await?;
    Ok(Json(json!({
        "id": p.user_id.to_string(),
        "username": p.username,
        "role": p.role,
        "mfa_enabled": mfa,
        "mfa_pending": p.mfa_pending,
        "recovery_codes_left": recovery_codes_left,
        "token_scope": p.scope,
    })))
}

pub async fn totp_enroll(State(s): State<AppState>, Authed(p): Authed) -> ApiResult<Json<Value>> {
    let e = s.service.totp_enroll(&p).await?;
    Ok(Json(
        json!({ "secret": e.secret_base32.as_str(), "otpauth_uri": e.otpauth_uri.as_str() }),
    ))
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
) -> ApiResult<Json<Value>> {
    let codes = s.service.totp_confirm(&p, &input.code).await?;
    Ok(Json(json!({
        "enabled": true,
        "recovery_codes": codes,
        "detail": "the second factor is on; sign in again with a code to get a session with full access",
    })))
}

pub fn token_json(t: &TokenView) -> Value {
    json!({
        "id": t.id.to_string(), "kind": t.kind, "name": t.name, "purpose": t.purpose,
        "created_at": t.created_at, "expires_at": t.expires_at, "last_used_at": t.last_used_at,
        "revoked_at": t.revoked_at, "mfa": t.mfa,
    })
}

fn list_of(tokens: &[TokenView], sessions: bool) -> Value {
    let items: Vec<Value> = tokens
        .iter()
        .filter(|t| steward_service::admin::is_session(t.kind) == sessions)
        .map(token_json)
        .collect();
    json!({ "items": items })
}

pub async fn sessions(State(s): State<AppState>, Authed(p): Authed) -> ApiResult<Json<Value>> {
    Ok(Json(list_of(&s.service.own_tokens(&p).await?, true)))
}

pub async fn tokens(State(s): State<AppState>, Authed(p): Authed) -> ApiResult<Json<Value>> {
    Ok(Json(list_of(&s.service.own_tokens(&p).await?, false)))
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
    let mut body = token_json(&view);
    if let Some(obj) = body.as_object_mut() {
        obj.insert("token".into(), Value::String(secret.to_string()));
    }
    Ok((StatusCode::CREATED, Json(body)))
}
