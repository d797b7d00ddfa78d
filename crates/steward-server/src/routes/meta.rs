//! `/healthz` and `/api/v1/openapi.json`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::Value;

use crate::problem::{ApiError, ApiResult};
use crate::{openapi, AppState};

/// The server is up and its store answers.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "Health")]
pub struct HealthOut {
    #[schemars(extend("const" = "ok"))]
    status: &'static str,
}

pub async fn healthz(State(s): State<AppState>) -> ApiResult<(StatusCode, Json<HealthOut>)> {
    if s.service.ready().await {
        Ok((StatusCode::OK, Json(HealthOut { status: "ok" })))
    } else {
        Err(ApiError::Unavailable)
    }
}

pub async fn openapi_json(State(s): State<AppState>) -> Json<Value> {
    Json(openapi::document(s.service.inventory()))
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such resource".into())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
