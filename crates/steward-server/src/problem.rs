//! RFC 9457 problem details: every error response is
//! `application/problem+json` with a stable `type`, `title`, `status` and a
//! `detail` that never carries personal data or internal detail.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use steward_domain::FieldError;
use steward_service::ServiceError;

/// Base of every problem `type` URI.
pub const PROBLEM_BASE: &str = "https://steward.dev/problems/";

#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// An API error: one variant per problem type, each documenting its status.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the body is not well-formed JSON, or a parameter is malformed.
    BadRequest(String),
    /// 401: missing or bad credentials.
    Unauthorized(String),
    /// 403: the role, purpose or lawful basis does not allow this.
    Forbidden(String),
    /// 404: no such record or route.
    NotFound(String),
    /// 405
    MethodNotAllowed,
    /// 409: conflicts with stored state.
    Conflict(String),
    /// 410: existed, but no longer available.
    Gone(String),
    /// 413: the body is larger than the limit.
    PayloadTooLarge(usize),
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 423: the account is locked after repeated failed sign-ins.
    Locked(String),
    /// 429: too many attempts.
    TooManyRequests(String),
    /// 422: invalid or not-minimal data, field by field.
    Validation(Vec<FieldError>),
    /// 500: logged by request id, shown without detail.
    Internal,
    /// 503: the database does not answer.
    Unavailable,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized", "Authentication required"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::Gone(_) => (StatusCode::GONE, "gone", "Gone"),
            Self::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Request body too large",
            ),
            Self::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            Self::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation", "Invalid request data"),
            Self::Locked(_) => (StatusCode::LOCKED, "locked", "Account locked"),
            Self::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "too-many-requests", "Too many requests"),
            Self::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
        }
    }

    #[must_use]
    pub fn problem(&self) -> Problem {
        let (status, slug, title) = self.parts();
        let (detail, errors) = match self {
            Self::Locked(d)
            | Self::TooManyRequests(d)
            | Self::BadRequest(d)
            | Self::Unauthorized(d)
            | Self::Forbidden(d)
            | Self::NotFound(d)
            | Self::Conflict(d)
            | Self::Gone(d) => (d.clone(), vec![]),
            Self::MethodNotAllowed => ("this method is not allowed on this resource".into(), vec![]),
            Self::PayloadTooLarge(limit) => (format!("the request body exceeds the limit of {limit} bytes"), vec![]),
            Self::UnsupportedMediaType => (
                "the request body must be JSON, sent with Content-Type: application/json".into(),
                vec![],
            ),
            Self::Validation(errors) => {
                let names: Vec<_> = errors.iter().map(|e| format!("{} {}", e.field, e.message)).collect();
                (names.join("; "), errors.clone())
            }
            Self::Internal => (
                "an internal error occurred; it has been logged with this request's id".into(),
                vec![],
            ),
            Self::Unavailable => ("the service is not ready; try again shortly".into(), vec![]),
        };
        Problem {
            kind: format!("{PROBLEM_BASE}{slug}"),
            title,
            status: status.as_u16(),
            detail,
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if matches!(self, Self::Unauthorized(_)) {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Unauthenticated => {
                Self::Unauthorized("the bearer token is missing, invalid, expired or revoked".into())
            }
            ServiceError::Forbidden(m) => Self::Forbidden(m),
            ServiceError::NotFound(what) => Self::NotFound(format!("no {what} with this id exists")),
            ServiceError::Conflict(m) => Self::Conflict(m),
            ServiceError::Gone(m) => Self::Gone(m),
            ServiceError::Invalid(errors) => Self::Validation(errors),
            ServiceError::BadRequest(m) => Self::BadRequest(m),
            ServiceError::Locked(m) => Self::Locked(m),
            ServiceError::TooManyRequests(m) => Self::TooManyRequests(m),
            ServiceError::Internal(m) => {
                // The message names ids and causes, never personal values.
                tracing::error!(error = %m, "internal error");
                Self::Internal
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
