//! Consent endpoints: per-contact consent records and receipts (staff),
//! the public consent endpoint and double opt-in confirmation (data
//! subjects; no staff login; Global Privacy Control honoured), privacy
//! notices, and the Art. 30 record of processing.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use steward_domain::SubjectId;
use steward_service::consent::{ConsentInput, ConsentView};

use super::contacts::PageParams;
use crate::extract::{path_id, ApiJson, ApiQuery, Authed, ClientAddr, Ctx};
use crate::problem::{ApiError, ApiResult};
use crate::AppState;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ConsentInput")]
pub struct ConsentBody {
    purpose: String,
    granted: bool,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    notice_version: Option<String>,
    /// Free-text evidence; with `ip` and `user_agent` it is stored sealed.
    #[serde(default)]
    evidence: Option<String>,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    user_agent: Option<String>,
    /// Grant only once the subject confirms the returned one-time token.
    #[serde(default)]
    double_opt_in: bool,
}

/// One consent record (append-only).
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "Consent")]
pub struct ConsentOut {
    id: uuid::Uuid,
    contact_id: uuid::Uuid,
    purpose: String,
    #[schemars(extend("enum" = ["granted", "withdrawn", "pending"]))]
    status: String,
    granted: bool,
    recorded_at: chrono::DateTime<chrono::Utc>,
    /// How it was collected ("api", "web form", …).
    source: String,
    notice_version: Option<String>,
    /// SHA-256 of the notice text it was given under, hex.
    notice_hash: Option<String>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The user who recorded it (none: the person, on a public form).
    recorded_by: Option<String>,
    /// When a double opt-in was confirmed.
    confirmed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The proof (free text, address, user agent): for the compliance purpose only.
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence: Option<serde_json::Map<String, Value>>,
    /// The one-time confirmation code, only when the server runs with --dev-return-tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    confirmation_token: Option<String>,
}

fn view_json(v: &ConsentView) -> ConsentOut {
    ConsentOut {
        id: v.id,
        contact_id: *v.subject_id.as_uuid(),
        purpose: v.purpose.clone(),
        status: v.status.clone(),
        granted: v.status == "granted",
        recorded_at: v.recorded_at,
        source: v.source.clone(),
        notice_version: v.notice_version.clone(),
        notice_hash: v.notice_hash.clone(),
        expires_at: v.expires_at,
        recorded_by: v.recorded_by.clone(),
        confirmed_at: v.confirmed_at,
        evidence: v.evidence.as_ref().and_then(|e| e.as_object().cloned()),
        confirmation_token: None,
    }
}

/// A contact's consent records and, per purpose, where consent stands now.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "ConsentList")]
pub struct ConsentListOut {
    items: Vec<ConsentOut>,
    current: std::collections::BTreeMap<String, CurrentConsent>,
}

/// The current state of one purpose.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct CurrentConsent {
    #[schemars(extend("enum" = ["granted", "withdrawn", "pending", "expired", "none"]))]
    status: &'static str,
    granted: bool,
    since: Option<chrono::DateTime<chrono::Utc>>,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Given under an older notice: the grant ends then unless renewed.
    renew_by: Option<chrono::DateTime<chrono::Utc>>,
}

/// A public consent, accepted (a grant waits for the e-mailed confirmation).
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "PublicConsentAccepted")]
pub struct PublicAcceptedOut {
    #[schemars(extend("enum" = ["pending_confirmation", "accepted"]))]
    status: String,
    /// A Global Privacy Control signal was honoured as an opt-out of sale and sharing.
    gpc: bool,
    /// Only when the server runs with --dev-return-tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    confirmation_token: Option<String>,
}

/// The double opt-in was confirmed.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "ConsentConfirmed")]
pub struct ConfirmedOut {
    #[schemars(extend("const" = true))]
    confirmed: bool,
}

pub async fn record(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(b): ApiJson<ConsentBody>,
) -> ApiResult<impl IntoResponse> {
    let id: SubjectId = path_id(&id, "contact")?;
    let input = ConsentInput {
        purpose: b.purpose,
        granted: b.granted,
        source: b.source,
        notice_version: b.notice_version,
        evidence: b.evidence,
        ip: b.ip,
        user_agent: b.user_agent.or_else(|| {
            headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        }),
        double_opt_in: b.double_opt_in,
    };
    let (view, token) = s.service.record_consent(&ctx, id, input).await?;
    let body = ConsentOut {
        confirmation_token: token,
        ..view_json(&view)
    };
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn list(State(s): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> ApiResult<Json<ConsentListOut>> {
    let id: SubjectId = path_id(&id, "contact")?;
    let (items, state) = s.service.list_consents(&ctx, id).await?;
    let current = state
        .into_iter()
        .map(|st| {
            let now = CurrentConsent {
                status: st.status,
                granted: st.status == "granted",
                since: st.since,
                expires_at: st.expires_at,
                renew_by: st.renew_by,
            };
            (st.purpose, now)
        })
        .collect();
    Ok(Json(ConsentListOut {
        items: items.iter().map(view_json).collect(),
        current,
    }))
}

fn consent_path(contact: &str, consent: &str) -> ApiResult<(SubjectId, uuid::Uuid)> {
    let c: SubjectId = path_id(contact, "contact")?;
    let r: uuid::Uuid = path_id(consent.trim_end_matches(".jws"), "consent record")?;
    Ok((c, r))
}

/// The Kantara v1.1 receipt as JSON; its JWS is in the `Steward-Receipt-JWS` header.
pub async fn receipt(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((contact, consent)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (c, r) = consent_path(&contact, &consent)?;
    let (receipt, jws, _) = s.service.consent_receipt(&ctx, c, r).await?;
    let mut resp = Json(receipt).into_response();
    if let Ok(v) = HeaderValue::from_str(&jws) {
        resp.headers_mut().insert("steward-receipt-jws", v);
    }
    Ok(resp)
}

/// The receipt as a compact JWS (`application/jose`).
pub async fn receipt_jws(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path((contact, consent)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (c, r) = consent_path(&contact, &consent)?;
    let (_, jws, _) = s.service.consent_receipt(&ctx, c, r).await?;
    Ok(([(header::CONTENT_TYPE, "application/jose")], jws).into_response())
}

/// A JSON Web Key Set (RFC 7517) of the Ed25519 keys (RFC 8037) that
/// verify consent receipts and request certificates.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "Jwks")]
pub struct JwksOut {
    keys: Vec<Jwk>,
}

/// An Ed25519 public key as a JWK.
#[derive(serde::Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Jwk {
    #[schemars(extend("const" = "OKP"))]
    kty: String,
    #[schemars(extend("const" = "Ed25519"))]
    crv: String,
    /// The public key, base64url without padding.
    #[schemars(regex(pattern = r"^[A-Za-z0-9_-]{43}$"))]
    x: String,
    /// The key's id, as the `kid` of the JWS headers it verifies.
    kid: String,
    #[schemars(extend("const" = "EdDSA"))]
    alg: String,
    #[serde(rename = "use")]
    #[schemars(extend("const" = "sig"))]
    use_: String,
}

pub async fn jwks(State(s): State<AppState>) -> ApiResult<Json<JwksOut>> {
    let key: Jwk = serde_json::from_value(s.service.receipt_public_jwk())
        .map_err(|e| steward_service::ServiceError::Internal(format!("the receipt key is not a JWK: {e}")))?;
    Ok(Json(JwksOut { keys: vec![key] }))
}

/// The Global Privacy Control support resource (GPC specification §4).
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "GpcSupport")]
pub struct GpcOut {
    /// Steward honours the `Sec-GPC: 1` signal.
    gpc: bool,
    /// When this resource last changed.
    #[serde(rename = "lastUpdate")]
    last_update: chrono::NaiveDate,
}

/// `/.well-known/gpc.json` per the Global Privacy Control specification.
pub async fn gpc_json() -> Json<GpcOut> {
    Json(GpcOut {
        gpc: true,
        last_update: chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap_or_default(),
    })
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PublicConsent")]
pub struct PublicConsentBody {
    #[schemars(email)]
    email: String,
    purpose: String,
    granted: bool,
    #[serde(default)]
    notice_version: Option<String>,
}

/// Only the exact value "1" of `Sec-GPC` is a GPC signal.
fn gpc(headers: &HeaderMap) -> bool {
    headers.get("sec-gpc").is_some_and(|v| v.as_bytes() == b"1")
}

pub async fn public_consent(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    ApiJson(b): ApiJson<PublicConsentBody>,
) -> ApiResult<impl IntoResponse> {
    let input = ConsentInput {
        purpose: b.purpose,
        granted: b.granted,
        source: Some("web form".into()),
        notice_version: b.notice_version,
        evidence: None,
        ip: client,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(300).collect()),
        double_opt_in: true,
    };
    let out = s.service.public_consent(&b.email, input, gpc(&headers)).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(PublicAcceptedOut {
            status: out.status.to_string(),
            gpc: out.gpc_opt_out,
            confirmation_token: out.confirmation_token,
        }),
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ConsentConfirmation")]
pub struct ConfirmBody {
    #[schemars(length(min = 1))]
    token: String,
}

pub async fn confirm(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(b): ApiJson<ConfirmBody>,
) -> ApiResult<Json<ConfirmedOut>> {
    s.service.confirm_consent(&b.token, client).await.map_err(|e| match e {
        steward_service::ServiceError::NotFound(_) => {
            ApiError::NotFound("this confirmation link is unknown, used or expired".into())
        }
        other => other.into(),
    })?;
    Ok(Json(ConfirmedOut { confirmed: true }))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "NoticeInput")]
pub struct NoticeBody {
    #[schemars(extend("pattern" = r"^\s*[A-Za-z0-9._-]{1,64}\s*$"))]
    version: String,
    #[schemars(extend("pattern" = steward_domain::values::NOT_BLANK_PATTERN, "maxLength" = 200_000))]
    text: String,
    #[serde(default)]
    material: bool,
    #[serde(default)]
    language: Option<String>,
}

pub async fn publish_notice(
    State(s): State<AppState>,
    Authed(p): Authed,
    ApiJson(b): ApiJson<NoticeBody>,
) -> ApiResult<impl IntoResponse> {
    let n = s
        .service
        .publish_notice(&p, &b.version, &b.text, b.material, b.language.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(notice_json(&n))))
}

/// A published privacy-notice version.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "Notice")]
pub struct NoticeOut {
    id: uuid::Uuid,
    version: String,
    /// BCP 47 language tag.
    language: String,
    /// A material change: consents given under earlier versions need renewal.
    material: bool,
    published_at: chrono::DateTime<chrono::Utc>,
    /// SHA-256 of `text`, lower-case hex.
    #[schemars(regex(pattern = r"^[0-9a-f]{64}$"))]
    text_sha256: String,
    text: String,
}

fn notice_json(n: &steward_service::consent::NoticeRow) -> NoticeOut {
    NoticeOut {
        id: n.id,
        version: n.version.clone(),
        language: n.language.clone(),
        material: n.material,
        published_at: n.published_at,
        text_sha256: n.text_hash.iter().map(|b| format!("{b:02x}")).collect(),
        text: n.text.clone(),
    }
}

pub async fn notices(State(s): State<AppState>) -> ApiResult<Json<super::Items<NoticeOut>>> {
    let list = s.service.list_notices().await?;
    Ok(Json(super::Items {
        items: list.iter().map(notice_json).collect(),
    }))
}

/// A current consent given under a notice older than the latest material
/// version: it ends at `renew_by` unless the person renews it.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "NoticeRenewal")]
pub struct RenewalOut {
    contact_id: uuid::Uuid,
    purpose: String,
    /// The notice version the consent was given under (none: before notices were versioned).
    notice_version: Option<String>,
    renew_by: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn renewals(
    State(s): State<AppState>,
    Authed(p): Authed,
    ApiQuery(_page): ApiQuery<PageParams>,
) -> ApiResult<Json<super::Items<RenewalOut>>> {
    let rows = s.service.consents_needing_renewal(&p).await?;
    let deadline = s.service.renewal().await?.map(|r| r.deadline);
    Ok(Json(super::Items {
        items: rows
            .into_iter()
            .map(|(c, purpose, notice_version)| RenewalOut {
                contact_id: *c.as_uuid(),
                purpose,
                notice_version,
                renew_by: deadline,
            })
            .collect(),
    }))
}

/// How many renewal e-mails were queued.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "RenewalMailQueued")]
pub struct QueuedOut {
    queued: u64,
}

/// `POST /api/v1/notices/renewals/mail`: queue a renewal e-mail to each
/// contact whose consent needs renewal under the latest material notice.
pub async fn renewal_mail(State(s): State<AppState>, Authed(p): Authed) -> ApiResult<(StatusCode, Json<QueuedOut>)> {
    let queued = s.service.queue_renewal_mail(&p).await?;
    Ok((StatusCode::ACCEPTED, Json(QueuedOut { queued })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    #[serde(default)]
    format: Option<String>,
}

/// `GET /api/v1/reports/art30`: the record of processing activities.
pub async fn art30(
    State(s): State<AppState>,
    Authed(p): Authed,
    ApiQuery(q): ApiQuery<ReportParams>,
) -> ApiResult<Response> {
    let record = s.service.record_of_processing(&p)?;
    Ok(match q.format.as_deref().unwrap_or("json") {
        "json" => Json(record.to_json()).into_response(),
        "markdown" | "md" => (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            record.to_markdown(),
        )
            .into_response(),
        "html" => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], record.to_html()).into_response(),
        _ => return Err(ApiError::BadRequest("format must be json, markdown or html".into())),
    })
}
