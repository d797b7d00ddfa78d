//! Breach register endpoints (privacy officer for changes, compliance
//! purpose; dpo and auditor read).

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde::Serialize;
use serde_json::Value;
use steward_service::incident::{
    ContainmentInput, Evidence, EvidenceInput, EvidenceMeta, IncidentChange, IncidentInput, RegulatorInput, RiskInput,
    RiskOutcome, ScopeCriteria, ScopeSnapshot, ScopeVerification, SubjectNoticeInput, SubjectNoticeOutcome,
    TimelineItem,
};

use crate::extract::{path_id, ApiJson, ApiQuery, Ctx};
use crate::problem::{ApiError, ApiResult};
use crate::AppState;

fn incident_id(raw: &str) -> ApiResult<uuid::Uuid> {
    path_id(raw, "incident")
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

pub async fn create(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<IncidentInput>,
) -> ApiResult<impl IntoResponse> {
    let v = s.service.open_incident(&ctx, b).await?;
    Ok((StatusCode::CREATED, Json(to_json(&v))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[serde(default)]
    overdue: Option<bool>,
}

/// `GET /api/v1/incidents[?overdue=true]`.
pub async fn list(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<Json<super::Items<steward_service::incident::IncidentView>>> {
    let items = s.service.list_incidents(&ctx, p.overdue.unwrap_or(false)).await?;
    Ok(Json(super::Items { items }))
}

pub async fn get(State(s): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id = incident_id(&id)?;
    Ok(Json(to_json(&s.service.get_incident(&ctx, id).await?)))
}

pub async fn update(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<IncidentChange>,
) -> ApiResult<Json<Value>> {
    let id = incident_id(&id)?;
    Ok(Json(to_json(&s.service.update_incident(&ctx, id, b).await?)))
}

/// An incident's timeline, oldest first.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "IncidentTimeline")]
pub struct TimelineOut {
    items: Vec<TimelineItem>,
}

pub async fn timeline(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Json<TimelineOut>> {
    let id = incident_id(&id)?;
    let items = s.service.incident_timeline(&ctx, id).await?;
    Ok(Json(TimelineOut { items }))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "NoteInput")]
pub struct NoteBody {
    #[schemars(extend("pattern" = steward_domain::values::PROSE_PATTERN, "maxLength" = 10000))]
    text: String,
}

pub async fn add_note(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<NoteBody>,
) -> ApiResult<impl IntoResponse> {
    let id = incident_id(&id)?;
    let item: TimelineItem = s.service.add_incident_note(&ctx, id, &b.text).await?;
    Ok((StatusCode::CREATED, Json(item)))
}

pub async fn add_evidence(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<EvidenceInput>,
) -> ApiResult<impl IntoResponse> {
    let id = incident_id(&id)?;
    let e = EvidenceMeta::from(s.service.add_incident_evidence(&ctx, id, b).await?);
    Ok((StatusCode::CREATED, Json(e)))
}

pub async fn evidence(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((id, evidence)): Path<(String, String)>,
) -> ApiResult<Json<Evidence>> {
    let id = incident_id(&id)?;
    let evidence: uuid::Uuid = path_id(&evidence, "evidence")?;
    Ok(Json(s.service.incident_evidence(&ctx, id, evidence).await?))
}

pub async fn scope(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ScopeCriteria>,
) -> ApiResult<impl IntoResponse> {
    let id = incident_id(&id)?;
    let snapshot: ScopeSnapshot = s.service.scope_incident(&ctx, id, b).await?;
    Ok((StatusCode::CREATED, Json(snapshot)))
}

pub async fn get_scope(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Json<ScopeSnapshot>> {
    let id = incident_id(&id)?;
    Ok(Json(s.service.incident_scope(&ctx, id).await?))
}

pub async fn verify_scope(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Json<ScopeVerification>> {
    let id = incident_id(&id)?;
    Ok(Json(s.service.verify_incident_scope(&ctx, id).await?))
}

pub async fn risk(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<RiskInput>,
) -> ApiResult<Json<RiskOutcome>> {
    let id = incident_id(&id)?;
    Ok(Json(s.service.assess_incident_risk(&ctx, id, b).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatParams {
    #[serde(default)]
    format: Option<String>,
}

/// `GET /api/v1/incidents/{id}/notification?format=json|markdown|html`.
pub async fn notification(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<FormatParams>,
) -> ApiResult<Response> {
    let id = incident_id(&id)?;
    let format = q.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "markdown" | "md" | "html") {
        return Err(ApiError::BadRequest("format must be json, markdown or html".into()));
    }
    let n = s.service.incident_notification(&ctx, id).await?;
    Ok(match format {
        "json" => Json(n.to_json()).into_response(),
        "html" => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], n.to_html()).into_response(),
        _ => (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            n.to_markdown(),
        )
            .into_response(),
    })
}

pub async fn notify_regulator(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<RegulatorInput>,
) -> ApiResult<Json<Value>> {
    let id = incident_id(&id)?;
    Ok(Json(to_json(&s.service.notify_regulator(&ctx, id, b).await?)))
}

pub async fn notify_subjects(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<SubjectNoticeInput>,
) -> ApiResult<Json<SubjectNoticeOutcome>> {
    let id = incident_id(&id)?;
    Ok(Json(s.service.notify_incident_subjects(&ctx, id, b).await?))
}

pub async fn contain(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ContainmentInput>,
) -> ApiResult<impl IntoResponse> {
    let id = incident_id(&id)?;
    let item: TimelineItem = s.service.contain_incident(&ctx, id, b).await?;
    Ok((StatusCode::CREATED, Json(item)))
}
