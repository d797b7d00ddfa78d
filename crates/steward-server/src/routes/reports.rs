//! `GET /api/v1/reports/security`: the self-audit of the running
//! installation (`steward doctor`), for administrators, auditors and the
//! privacy officer.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use steward_service::doctor::SecurityReport;

use crate::extract::{ApiQuery, Authed};
use crate::problem::{ApiError, ApiResult};
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplianceParams {
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
}

/// `GET /api/v1/reports/compliance?from=&to=&format=json|html|csv`.
pub async fn compliance(
    State(s): State<AppState>,
    Authed(p): Authed,
    ApiQuery(q): ApiQuery<ComplianceParams>,
) -> ApiResult<Response> {
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "html" | "csv") {
        return Err(ApiError::BadRequest("format must be json, html or csv".into()));
    }
    let now = chrono::Utc::now();
    let from = match &q.from {
        Some(v) => steward_service::compliance::parse_bound("from", v, false)?,
        None => now - chrono::Duration::days(30),
    };
    let to = match &q.to {
        Some(v) => steward_service::compliance::parse_bound("to", v, true)?,
        None => now,
    };
    let report = s.service.compliance_report_for(&p, from, to).await?;
    Ok(match format {
        "html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            steward_service::compliance_render::to_html(&report),
        )
            .into_response(),
        "csv" => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            steward_service::compliance_render::to_csv(&report),
        )
            .into_response(),
        _ => Json(report).into_response(),
    })
}

pub async fn security(State(s): State<AppState>, Authed(p): Authed) -> ApiResult<Json<SecurityReport>> {
    Ok(Json(s.service.security_report_for(&p).await?))
}
