//! Data-subject request endpoints (privacy officer, compliance purpose).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use steward_service::dsr::{DsrInput, DsrView, SubjectRef};

use super::Items;
use crate::extract::{path_id, ApiJson, ApiQuery, Ctx};
use crate::problem::{ApiError, ApiResult};
use crate::AppState;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DsrSubject")]
// Exactly one of the two (a null counts as absent).
#[schemars(extend("oneOf" = [
    {"required": ["email"], "properties": {"email": {"type": "string"}}},
    {"required": ["contact_id"], "properties": {"contact_id": {"type": "string"}}}
]))]
pub struct SubjectBody {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    #[schemars(extend("format" = "uuid"))]
    contact_id: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DsrInput")]
pub struct DsrBody {
    #[schemars(extend("enum" = steward_service::dsr::KINDS))]
    kind: String,
    #[schemars(extend("enum" = ["gdpr", "ccpa"]))]
    regime: String,
    subject: SubjectBody,
    /// For rectification: `{"changes": {field: new value}}`.
    #[serde(default)]
    details: Option<Value>,
    /// When the request arrived (not in the future); deadlines run from it.
    #[serde(default)]
    #[schemars(extend("format" = "date-time"))]
    received_at: Option<String>,
}

/// A data-subject request as the API shows it.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "Dsr")]
pub struct DsrOut {
    id: uuid::Uuid,
    #[schemars(extend("enum" = steward_service::dsr::KINDS))]
    kind: String,
    #[schemars(extend("enum" = ["gdpr", "ccpa"]))]
    regime: String,
    #[schemars(extend("enum" = ["received", "in_progress", "completed", "refused", "withdrawn"]))]
    status: String,
    /// The person concerned, once known.
    contact_id: Option<uuid::Uuid>,
    received_at: DateTime<Utc>,
    /// The legal deadline (with any extension).
    due_at: DateTime<Utc>,
    /// How the deadline stands while the request is open.
    #[schemars(extend("enum" = ["on_time", "due_soon", "overdue", null]))]
    deadline: Option<&'static str>,
    extensions: u32,
    extension_reason: Option<String>,
    verified_at: Option<DateTime<Utc>>,
    verified_by: Option<uuid::Uuid>,
    verification_method: Option<String>,
    completed_at: Option<DateTime<Utc>>,
    outcome: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[must_use]
pub fn dsr_out(v: &DsrView) -> DsrOut {
    let d = &v.row;
    DsrOut {
        id: d.id,
        kind: d.kind.clone(),
        regime: d.regime.clone(),
        status: d.status.clone(),
        contact_id: d.subject_id.map(|s| *s.as_uuid()),
        received_at: d.received_at,
        due_at: d.due_at,
        deadline: v.deadline,
        extensions: d.extensions,
        extension_reason: d.extension_reason.clone(),
        verified_at: d.verified_at,
        verified_by: d.verified_by.map(|u| *u.as_uuid()),
        verification_method: d.verification_method.clone(),
        completed_at: d.completed_at,
        outcome: d.outcome.clone(),
        created_at: d.created_at,
        updated_at: d.updated_at,
    }
}

/// [`dsr_out`] as a JSON value (for the console's pages).
#[must_use]
pub fn view_json(v: &DsrView) -> Value {
    serde_json::to_value(dsr_out(v)).unwrap_or_default()
}

fn invalid(field: &str, message: &str) -> ApiError {
    steward_service::ServiceError::invalid(field, message).into()
}

/// `POST /api/v1/dsr`: record a request; the legal deadline is computed.
pub async fn create(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<DsrBody>,
) -> ApiResult<impl IntoResponse> {
    let subject = match (b.subject.email, b.subject.contact_id) {
        (Some(e), None) => SubjectRef::Email(e),
        (None, Some(c)) => SubjectRef::ContactId(c),
        _ => return Err(invalid("subject", "must give exactly one of email or contact_id")),
    };
    let received_at = match b.received_at {
        None => None,
        Some(raw) => Some(DateTime::<FixedOffset>::parse_from_rfc3339(&raw).map_err(|_| {
            invalid(
                "received_at",
                "must be an RFC 3339 date-time, e.g. 2026-01-31T09:00:00+01:00",
            )
        })?),
    };
    let input = DsrInput {
        kind: b.kind,
        regime: b.regime,
        subject,
        details: b.details,
        received_at,
    };
    let v = s.service.create_dsr(&ctx, input).await?;
    Ok((StatusCode::CREATED, Json(dsr_out(&v))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[serde(default)]
    status: Option<String>,
}

/// `GET /api/v1/dsr?status=open|overdue|due_soon|all`.
pub async fn list(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<Json<Items<DsrOut>>> {
    let filter = p.status.as_deref().unwrap_or("all");
    if !matches!(filter, "open" | "overdue" | "due_soon" | "all") {
        return Err(invalid("status", "must be open, overdue, due_soon or all"));
    }
    let list = s.service.list_dsr(Some(&ctx), Some(filter)).await?;
    Ok(Json(Items {
        items: list.iter().map(dsr_out).collect(),
    }))
}

pub async fn get(State(s): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> ApiResult<Json<DsrOut>> {
    let id: uuid::Uuid = path_id(&id, "request")?;
    Ok(Json(dsr_out(&s.service.get_dsr(&ctx, id).await?)))
}

#[derive(Deserialize, Default, schemars::JsonSchema)]
// The contract names no body for verify: other members (notes from a client) are ignored.
#[schemars(rename = "VerifyInput")]
pub struct VerifyBody {
    #[serde(default)]
    method: Option<String>,
}

pub async fn verify(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<DsrOut>> {
    let id: uuid::Uuid = path_id(&id, "request")?;
    // The body is optional: `{"method": "..."}` says how identity was checked.
    let method = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<VerifyBody>(&body)
            .map_err(|_| {
                invalid(
                    "method",
                    "the body must be a JSON object like {\"method\": \"passport checked\"}",
                )
            })?
            .method
    };
    Ok(Json(dsr_out(&s.service.verify_dsr(&ctx, id, method).await?)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ReasonInput")]
pub struct ReasonBody {
    #[schemars(extend("pattern" = steward_domain::values::NOT_BLANK_PATTERN, "maxLength" = 1000))]
    reason: String,
}

pub async fn extend(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> ApiResult<Json<DsrOut>> {
    let id: uuid::Uuid = path_id(&id, "request")?;
    Ok(Json(dsr_out(&s.service.extend_dsr(&ctx, id, &b.reason).await?)))
}

pub async fn refuse(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> ApiResult<Json<DsrOut>> {
    let id: uuid::Uuid = path_id(&id, "request")?;
    Ok(Json(dsr_out(&s.service.refuse_dsr(&ctx, id, &b.reason).await?)))
}

pub async fn fulfill(State(s): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> ApiResult<Json<DsrOut>> {
    let id: uuid::Uuid = path_id(&id, "request")?;
    Ok(Json(dsr_out(&s.service.fulfill_dsr(&ctx, id).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    #[serde(default)]
    format: Option<String>,
}

/// `GET /api/v1/dsr/{id}/export?format=json|csv|vcard`.
pub async fn export(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<ExportParams>,
) -> ApiResult<axum::response::Response> {
    let id: uuid::Uuid = path_id(&id, "request")?;
    let format = p.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv" | "vcard") {
        return Err(invalid("format", "must be json, csv or vcard"));
    }
    let bundle = s.service.dsr_export(&ctx, id).await?;
    let disposition = |ext: &str| format!("attachment; filename=\"steward-export-{id}.{ext}\"");
    Ok(match format {
        "csv" => (
            [
                (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (axum::http::header::CONTENT_DISPOSITION, disposition("csv")),
            ],
            steward_domain::export::to_csv(&bundle),
        )
            .into_response(),
        "vcard" => (
            [
                (
                    axum::http::header::CONTENT_TYPE,
                    "text/vcard; charset=utf-8".to_string(),
                ),
                (axum::http::header::CONTENT_DISPOSITION, disposition("vcf")),
            ],
            steward_domain::export::to_vcard(&bundle),
        )
            .into_response(),
        _ => Json(bundle).into_response(),
    })
}

/// `GET /api/v1/dsr/{id}/certificate`: the signed certificate of completion;
/// its compact JWS is in the `Steward-Certificate-JWS` header.
pub async fn certificate(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<axum::response::Response> {
    let id: uuid::Uuid = path_id(&id, "request")?;
    let (cert, jws) = s.service.dsr_certificate(&ctx, id).await?;
    let mut resp = Json(cert).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&jws) {
        resp.headers_mut().insert("steward-certificate-jws", v);
    }
    Ok(resp)
}

/// A legal hold on a contact: retention and erasure wait while it is active.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "LegalHold")]
pub struct HoldOut {
    id: uuid::Uuid,
    contact_id: uuid::Uuid,
    reason: String,
    active: bool,
    created_at: DateTime<Utc>,
    created_by: Option<uuid::Uuid>,
    released_at: Option<DateTime<Utc>>,
    released_by: Option<uuid::Uuid>,
}

fn hold_json(h: &steward_service::dsr::LegalHoldRow) -> HoldOut {
    HoldOut {
        id: h.id,
        contact_id: *h.subject_id.as_uuid(),
        reason: h.reason.clone(),
        active: h.released_at.is_none(),
        created_at: h.created_at,
        created_by: h.created_by.map(|u| *u.as_uuid()),
        released_at: h.released_at,
        released_by: h.released_by.map(|u| *u.as_uuid()),
    }
}

/// A public request was taken; it waits for the e-mailed code.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "PublicDsrAccepted")]
pub struct PublicAccepted {
    #[schemars(extend("enum" = ["accepted"]))]
    status: &'static str,
    next: &'static str,
}

/// The e-mailed code confirmed the public request.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "PublicDsrVerified")]
pub struct PublicVerified {
    verified: bool,
    request_id: uuid::Uuid,
}

/// `POST /api/v1/contacts/{id}/legal-holds` with `reason`.
pub async fn place_hold(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> ApiResult<impl IntoResponse> {
    let id: steward_domain::SubjectId = path_id(&id, "contact")?;
    let h = s.service.place_legal_hold(&ctx, id, &b.reason).await?;
    Ok((StatusCode::CREATED, Json(hold_json(&h))))
}

pub async fn list_holds(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Json<Items<HoldOut>>> {
    let id: steward_domain::SubjectId = path_id(&id, "contact")?;
    let holds = s.service.list_legal_holds(&ctx, id).await?;
    Ok(Json(Items {
        items: holds.iter().map(hold_json).collect(),
    }))
}

/// `DELETE /api/v1/contacts/{id}/legal-holds/{hold_id}`: release the hold (kept as a record).
pub async fn release_hold(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((id, hold)): Path<(String, String)>,
) -> ApiResult<Json<HoldOut>> {
    let id: steward_domain::SubjectId = path_id(&id, "contact")?;
    let hold: uuid::Uuid = path_id(&hold, "legal hold")?;
    Ok(Json(hold_json(&s.service.release_legal_hold(&ctx, id, hold).await?)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PublicDsrInput")]
pub struct PublicDsrBody {
    #[schemars(extend("enum" = steward_service::dsr::PUBLIC_KINDS))]
    kind: String,
    #[schemars(extend("enum" = ["gdpr", "ccpa"]))]
    regime: String,
    #[schemars(email)]
    email: String,
}

/// `POST /api/v1/public/dsr`: a data subject files a request (no staff
/// login; rate limited). Always 202 for a valid body: a one-time code goes
/// to the address, never back to the caller.
pub async fn public_create(
    State(s): State<AppState>,
    crate::extract::ClientAddr(client): crate::extract::ClientAddr,
    ApiJson(b): ApiJson<PublicDsrBody>,
) -> ApiResult<impl IntoResponse> {
    s.service.public_dsr(&b.kind, &b.regime, &b.email, client).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PublicAccepted {
            status: "accepted",
            next: "confirm with the code we e-mailed to the address given",
        }),
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CodeInput")]
pub struct TokenBody {
    token: String,
}

/// `POST /api/v1/public/dsr/verify` with the e-mailed code.
pub async fn public_verify(
    State(s): State<AppState>,
    crate::extract::ClientAddr(client): crate::extract::ClientAddr,
    ApiJson(b): ApiJson<TokenBody>,
) -> ApiResult<Json<PublicVerified>> {
    let id = s
        .service
        .verify_public_dsr(&b.token, client)
        .await
        .map_err(|e| match e {
            steward_service::ServiceError::NotFound(_) => {
                ApiError::NotFound("this code is unknown, used or expired".into())
            }
            other => other.into(),
        })?;
    Ok(Json(PublicVerified {
        verified: true,
        request_id: id,
    }))
}
