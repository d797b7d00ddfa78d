//! Retention endpoints (privacy officer, compliance purpose).

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use steward_service::retention::{DueRecord, RetentionHistory, RetentionReport, RuleCount};

use crate::extract::{ApiJson, ApiQuery, Ctx};
use crate::problem::ApiResult;
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviewParams {
    #[serde(default)]
    days: Option<u32>,
}

/// What the schedules make due in the next `days` days, by rule.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "RetentionPreview")]
pub struct PreviewOut {
    days: u32,
    /// Every rule in force, with what it will delete or put on review.
    items: Vec<RuleCount>,
}

/// `GET /api/v1/retention/preview?days=N` (default 30).
pub async fn preview(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(p): ApiQuery<PreviewParams>,
) -> ApiResult<Json<PreviewOut>> {
    let days = p.days.unwrap_or(30);
    let items = s.service.retention_preview_for(&ctx, days).await?;
    Ok(Json(PreviewOut { days, items }))
}

/// The privacy officer's review list.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "RetentionReviewList")]
pub struct ReviewOut {
    items: Vec<DueRecord>,
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RetentionRunInput")]
pub struct RunBody {
    #[serde(default)]
    dry_run: bool,
}

/// `POST /api/v1/retention/run {"dry_run": bool}`.
pub async fn run(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<RunBody>,
) -> ApiResult<Json<RetentionReport>> {
    Ok(Json(s.service.retention_run_for(&ctx, b.dry_run).await?))
}

/// `GET /api/v1/retention/review`: contacts whose review period has ended.
pub async fn review(State(s): State<AppState>, Ctx(ctx): Ctx) -> ApiResult<Json<ReviewOut>> {
    let items = s.service.retention_review_for(&ctx).await?;
    Ok(Json(ReviewOut { items }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// First day reported (UTC); default: a year ago.
    #[serde(default)]
    since: Option<chrono::NaiveDate>,
}

/// `GET /api/v1/retention/report?since=YYYY-MM-DD`: per run and rule what
/// the schedules deleted, totals per rule, and the anonymised aggregates.
pub async fn report(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(p): ApiQuery<ReportParams>,
) -> ApiResult<Json<RetentionHistory>> {
    let since = p.since.map_or_else(
        || chrono::Utc::now() - chrono::Duration::days(365),
        |d| d.and_time(chrono::NaiveTime::MIN).and_utc(),
    );
    Ok(Json(s.service.retention_history_for(&ctx, since).await?))
}
