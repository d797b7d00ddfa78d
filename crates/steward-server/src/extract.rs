//! Request extractors that turn every kind of bad input into a problem:
//! JSON bodies (size limit, media type, syntax, unknown fields, wrong
//! types), query strings, path ids, and the authenticated request context.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;
use steward_domain::FieldError;
use steward_service::{Principal, RequestContext};

use crate::problem::ApiError;
use crate::AppState;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A JSON body parsed into `T`; errors name the offending field and never
/// echo submitted values.
pub struct ApiJson<T>(pub T);

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| m == "application/json" || (m.starts_with("application/") && m.ends_with("+json")))
}

/// Rewrites serde's message so it never contains a submitted value.
fn safe_message(msg: &str) -> String {
    if msg.starts_with("unknown field") {
        "is not a known field".into()
    } else if let Some(rest) = msg.strip_prefix("missing field") {
        let _ = rest;
        "is required".into()
    } else if msg.starts_with("invalid type") || msg.starts_with("invalid value") || msg.starts_with("invalid length") {
        match msg.rsplit_once(", expected ") {
            Some((_, expected)) => format!(
                "has the wrong type (expected {})",
                expected.split(" at line").next().unwrap_or(expected)
            ),
            None => "has the wrong type".into(),
        }
    } else {
        "is invalid".into()
    }
}

/// Parses a JSON object into `T`, mapping errors to problems. Every request
/// body is an object; serde would otherwise also read a struct from an array.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
            Ok(_) => Err(ApiError::Validation(vec![FieldError::new(
                "body",
                "must be a JSON object",
            )])),
            Err(e) => Err(ApiError::BadRequest(format!(
                "the request body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            ))),
        };
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let msg = inner.to_string();
                    let field = if let Some(name) =
                        msg.strip_prefix("missing field `").and_then(|r| r.split('`').next())
                    {
                        if path == "." {
                            name.to_string()
                        } else {
                            format!("{path}.{name}")
                        }
                    } else if let Some(name) = msg.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
                        let prefix = path.rsplit_once('.').map(|(p, _)| p).unwrap_or("");
                        if prefix.is_empty() || prefix == "." {
                            name.to_string()
                        } else {
                            format!("{prefix}.{name}")
                        }
                    } else if path == "." {
                        "body".to_string()
                    } else {
                        path
                    };
                    let field = if field.chars().count() > 100 {
                        field.chars().take(100).collect()
                    } else {
                        field
                    };
                    Err(ApiError::Validation(vec![FieldError::new(field, safe_message(&msg))]))
                }
                _ => Err(ApiError::BadRequest(format!(
                    "the request body is not valid JSON (line {}, column {})",
                    inner.line(),
                    inner.column()
                ))),
            }
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, _state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let too_large = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n > BODY_LIMIT);
        if too_large {
            return Err(ApiError::PayloadTooLarge(BODY_LIMIT));
        }
        let bytes = axum::body::to_bytes(req.into_body(), BODY_LIMIT)
            .await
            .map_err(|_| ApiError::PayloadTooLarge(BODY_LIMIT))?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Query parameters parsed into `T`; a malformed query is a 400 problem.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| {
                let text = e.body_text();
                let msg = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text);
                ApiError::BadRequest(format!(
                    "the query string is invalid: {}",
                    safe_message(msg).replace("is ", "parameter is ")
                ))
            })
    }
}

/// Parses an id from the path; a malformed id is an unknown id (404).
pub fn path_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(format!("no {what} with this id exists")))
}

/// The request id assigned by the request-id layer.
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The client's IP address, from the connection.
pub fn client_address(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// The client's IP address as an extractor (never fails).
pub struct ClientAddr(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(client_address(parts)))
    }
}

/// The session cookie set by a cookie sign-in (web console).
pub const SESSION_COOKIE: &str = "steward_session";
/// The CSRF cookie; its value must be echoed in [`CSRF_HEADER`] on unsafe methods.
pub const CSRF_COOKIE: &str = "steward_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// Resolves the caller: a bearer token, or the session cookie. Cookie
/// requests with unsafe methods must carry the CSRF token in a header
/// (double submit, bound to the session by a keyed hash).
async fn principal(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    if let Some(token) = bearer {
        return Ok(state.service.authenticate(token).await?);
    }
    let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
        return Err(ApiError::Unauthorized(
            "send an API token as 'Authorization: Bearer TOKEN'".into(),
        ));
    };
    if !parts.method.is_safe() {
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !state.service.csrf_matches(token, sent) {
            return Err(ApiError::Forbidden(format!(
                "a cookie-authenticated request must send the {CSRF_HEADER} header"
            )));
        }
    }
    Ok(state.service.authenticate(token).await?)
}

/// The authenticated caller, without a purpose (account endpoints).
pub struct Authed(pub Principal);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        principal(parts, state).await.map(Authed)
    }
}

/// The authenticated caller and the purpose of the request.
pub struct Ctx(pub RequestContext);

pub const PURPOSE_HEADER: &str = "steward-purpose";

impl FromRequestParts<AppState> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = principal(parts, state).await?;
        let purpose = match parts.headers.get(PURPOSE_HEADER) {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .map_err(|_| ApiError::Forbidden("the Steward-Purpose header is not a purpose name".into()))?
                    .trim(),
            ),
        };
        let ctx = state
            .service
            .context(principal, purpose, request_id(&parts.headers), client_address(parts))
            .await?;
        Ok(Ctx(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        name: String,
        n: Option<u32>,
    }

    #[test]
    fn json_errors_name_fields_without_values() {
        let e = parse_json::<T>(br#"{"name": "x", "extra": 1}"#).unwrap_err().problem();
        assert_eq!(e.status, 422);
        assert_eq!(e.errors[0].field, "extra");
        let e = parse_json::<T>(br#"{"n": 1}"#).unwrap_err().problem();
        assert_eq!(e.errors[0].field, "name");
        assert_eq!(e.errors[0].message, "is required");
        let e = parse_json::<T>(br#"{"name": "secret-value-xyz", "n": "secret-value-abc"}"#)
            .unwrap_err()
            .problem();
        assert_eq!(e.errors[0].field, "n");
        assert!(!serde_json::to_string(&e).unwrap().contains("secret"), "{e:?}");
        let e = parse_json::<T>(br#"{"name": "#).unwrap_err().problem();
        assert_eq!(e.status, 400);
        let e = parse_json::<T>(br#"[1]"#).unwrap_err().problem();
        assert_eq!((e.status, e.errors[0].field.as_str()), (422, "body"));
        let e = parse_json::<T>(br#"["x", 5]"#).unwrap_err().problem();
        assert_eq!(
            (e.status, e.errors[0].field.as_str()),
            (422, "body"),
            "no struct from an array"
        );
        assert_eq!(parse_json::<T>(b"").unwrap_err().problem().status, 400);
        assert_eq!(parse_json::<T>(b"[1,").unwrap_err().problem().status, 400);
    }
}
