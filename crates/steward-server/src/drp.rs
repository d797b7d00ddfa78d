//! The Data Rights Protocol 1.0 endpoints for authorised agents, and the
//! privacy officer's registry of agents.
//!
//! Agents' endpoints (`/v1/...`, `/.well-known/data-rights.json`) speak
//! the protocol's own shapes: signed requests arrive as `text/plain`
//! (base64 of an Ed25519 signature followed by the JSON message), answers
//! are JSON, and errors are `{"code", "message", "fatal"}` (§3.06), where
//! `fatal` says that sending the same message again cannot succeed. The
//! registry (`/api/v1/drp/agents`) is Steward API: bearer token of a staff
//! user, problem+json errors. None of it is in the OpenAPI description:
//! the protocol has its own schemas. Handlers are thin: every rule lives in
//! `steward_service::drp`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use steward_service::drp::{AgentView, ExerciseStatus, DRP_VERSION, SUPPORTED_ACTIONS, SUPPORTED_VERIFICATIONS};
use steward_service::ServiceError;

use crate::extract::{ApiJson, ClientAddr, Ctx};
use crate::problem::{ApiError, ApiResult};
use crate::AppState;

/// A protocol error (§3.06).
struct DrpError(ApiError);

impl From<ServiceError> for DrpError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound(what) if what == OFF => Self(ApiError::NotFound(
                "this business does not take Data Rights Protocol requests".into(),
            )),
            other => Self(other.into()),
        }
    }
}

/// What the service calls the protocol while it is off.
const OFF: &str = steward_service::drp::DRP_OFF;

impl IntoResponse for DrpError {
    fn into_response(self) -> Response {
        let p = self.0.problem();
        let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // A client error is final for this message, except a rate limit.
        let fatal = status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS;
        let mut resp = (
            status,
            Json(json!({ "code": p.status.to_string(), "message": p.detail, "fatal": fatal })),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

type DrpResult<T> = Result<T, DrpError>;

/// The pair-wise token in `Authorization: Bearer`.
fn bearer(headers: &HeaderMap) -> DrpResult<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            DrpError(ApiError::Unauthorized(
                "send the pair-wise token from POST /v1/agent/{agent-id} as Authorization: Bearer".into(),
            ))
        })
}

/// A request id from the path; a malformed one is unknown (404).
fn request_id(raw: &str) -> DrpResult<uuid::Uuid> {
    raw.parse()
        .map_err(|_| DrpError(ApiError::NotFound("no data rights request with this id exists".into())))
}

fn status_json(s: &ExerciseStatus) -> Value {
    let mut v = json!({
        "request_id": s.request_id.to_string(),
        "status": s.status,
        "received_at": s.received_at,
    });
    if let Some(obj) = v.as_object_mut() {
        if let Some(r) = &s.agent_request_id {
            obj.insert("agent_request_id".into(), r.clone().into());
        }
        if let Some(r) = s.reason {
            obj.insert("reason".into(), r.into());
        }
        if let Some(t) = s.expected_by {
            obj.insert("expected_by".into(), json!(t));
        }
        if let Some(d) = &s.processing_details {
            obj.insert("processing_details".into(), d.clone().into());
        }
    }
    v
}

/// `GET /.well-known/data-rights.json`: what this business accepts. DRP
/// 0.9 moved discovery to the network's service directory; this document
/// carries the same facts (the §3.05.2 entry) and the older discovery
/// keys, so that either kind of agent finds its way. 404 while DRP is off.
async fn discovery(State(s): State<AppState>, headers: HeaderMap) -> DrpResult<Json<Value>> {
    let d = s.service.drp_discovery().await?.ok_or_else(|| {
        DrpError(ApiError::NotFound(
            "this business does not take Data Rights Protocol requests".into(),
        ))
    })?;
    let scheme = if s.secure_cookies { "https" } else { "http" };
    let api_base = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
        })
        .map(|h| format!("{scheme}://{h}"));
    Ok(Json(json!({
        "version": DRP_VERSION,
        "id": d.business_id,
        "name": d.name,
        "api_base": api_base,
        "actions": SUPPORTED_ACTIONS,
        "supported_actions": SUPPORTED_ACTIONS,
        "supported_verifications": SUPPORTED_VERIFICATIONS,
        "user_relationships": [],
        "privacy_policy_url": d.privacy_policy_url,
    })))
}

/// `POST /v1/agent/{agent-id}` (§2.05). A failed validation is `403` with
/// no body, as the spec says; a rate limit is still 429.
async fn pair(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    Path(agent_id): Path<String>,
    body: Bytes,
) -> Response {
    match s.service.drp_pair(&agent_id, &body, client).await {
        Ok(token) => Json(json!({ "agent-id": agent_id, "token": token })).into_response(),
        Err(e @ (ServiceError::TooManyRequests(_) | ServiceError::Internal(_))) => DrpError::from(e).into_response(),
        Err(ServiceError::NotFound(what)) if what == OFF => {
            DrpError::from(ServiceError::NotFound(what)).into_response()
        }
        Err(_) => StatusCode::FORBIDDEN.into_response(),
    }
}

/// `GET /v1/agent/{agent-id}` (§2.06): `{}` when the token is this agent's.
async fn agent_info(
    State(s): State<AppState>,
    Path(agent_id): Path<String>,
    headers: HeaderMap,
) -> DrpResult<Json<Value>> {
    let token = bearer(&headers)?;
    s.service.drp_agent_info(&agent_id, &token).await?;
    Ok(Json(json!({})))
}

/// `POST /v1/data-rights-request` (§2.01).
async fn exercise(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> DrpResult<Json<Value>> {
    let token = bearer(&headers)?;
    let status = s.service.drp_exercise(&token, &body, client).await?;
    Ok(Json(status_json(&status)))
}

/// `GET /v1/data-rights-request/{request_id}` (§2.02).
async fn status(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> DrpResult<Json<Value>> {
    let token = bearer(&headers)?;
    let id = request_id(&id)?;
    let status = s.service.drp_status(&token, id, client).await?;
    Ok(Json(status_json(&status)))
}

/// `DELETE /v1/data-rights-request/{request_id}` (§2.04).
async fn revoke(
    State(s): State<AppState>,
    ClientAddr(client): ClientAddr,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> DrpResult<Json<Value>> {
    let token = bearer(&headers)?;
    let id = request_id(&id)?;
    let status = s.service.drp_revoke(&token, id, &body, client).await?;
    Ok(Json(status_json(&status)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentBody {
    id: String,
    name: String,
    verify_key: String,
}

fn agent_json(a: &AgentView) -> Value {
    json!({
        "id": a.id, "name": a.name, "verify_key": a.verify_key, "paired": a.paired,
        "token_issued_at": a.token_issued_at, "created_at": a.created_at,
    })
}

/// `POST /api/v1/drp/agents` (privacy officer): register an agent.
async fn add_agent(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(b): ApiJson<AgentBody>,
) -> ApiResult<impl IntoResponse> {
    let a = s.service.add_drp_agent(&ctx, &b.id, &b.name, &b.verify_key).await?;
    Ok((StatusCode::CREATED, Json(agent_json(&a))))
}

/// `GET /api/v1/drp/agents` (privacy officer).
async fn list_agents(State(s): State<AppState>, Ctx(ctx): Ctx) -> ApiResult<Json<Value>> {
    let list = s.service.list_drp_agents(Some(&ctx)).await?;
    Ok(Json(
        json!({ "items": list.iter().map(agent_json).collect::<Vec<_>>() }),
    ))
}

/// `DELETE /api/v1/drp/agents/{id}` (privacy officer): its token stops working.
async fn remove_agent(State(s): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.service.remove_drp_agent(Some(&ctx), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/drp/requests/{id}` (privacy officer): which agent filed
/// the request (the DSR of the same id) and what it attested.
async fn agent_request(State(s): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id: uuid::Uuid = crate::extract::path_id(&id, "agent's request")?;
    let r = s.service.drp_request(&ctx, id).await?;
    Ok(Json(json!({
        "request_id": r.request_id.to_string(), "agent_id": r.agent_id, "exercise": r.exercise,
        "agent_request_id": r.agent_request_id, "attested": r.attested, "created_at": r.created_at,
    })))
}

/// The protocol's routes and the agent registry.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/data-rights.json", get(discovery))
        .route("/v1/agent/{agent_id}", post(pair).get(agent_info))
        .route("/v1/data-rights-request", post(exercise))
        // Before 0.9.3 the exercise URL had a trailing slash (§2.01).
        .route("/v1/data-rights-request/", post(exercise))
        .route("/v1/data-rights-request/{request_id}", get(status).delete(revoke))
        .route("/api/v1/drp/agents", get(list_agents).post(add_agent))
        .route("/api/v1/drp/agents/{id}", axum::routing::delete(remove_agent))
        .route("/api/v1/drp/requests/{id}", get(agent_request))
}
