//! `GET /api/v1/reports/security`: the self-audit of the running
//! installation (`steward doctor`), for administrators, auditors and the
//! privacy officer.

use axum::extract::State;
use axum::Json;
use serde_json::Value;

use crate::extract::Authed;
use crate::problem::ApiResult;
use crate::AppState;

pub async fn security(State(s): State<AppState>, Authed(p): Authed) -> ApiResult<Json<Value>> {
    let report = s.service.security_report_for(&p).await?;
    Ok(Json(serde_json::to_value(&report).unwrap_or(Value::Null)))
}
