//! `/api/v1/audit`: the audit log, its signed tree heads and proofs.
//! Binary values (hashes, entry bytes, signatures, keys) are base64
//! (standard alphabet, padded), as in RFC 9162's JSON API.

use axum::extract::{Path, State};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use steward_domain::SubjectId;
use steward_service::audit::{AuditEntryView, AuditQuery};

use super::contacts::PageParams;
use crate::extract::{ApiQuery, Ctx};
use crate::problem::{ApiError, ApiResult};
use crate::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    subject_id: Option<String>,
    actor: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

fn time(name: &str, v: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    v.map(|s| {
        DateTime::parse_from_rfc3339(s)
            .map(|d| d.with_timezone(&Utc))
            .map_err(|_| {
                ApiError::Validation(vec![steward_domain::FieldError::new(
                    name,
                    "must be an RFC 3339 date-time",
                )])
            })
    })
    .transpose()
}

fn entry_json(e: &AuditEntryView) -> Value {
    json!({
        "index": e.index,
        "leaf_hash": B64.encode(e.leaf_hash),
        "entry": serde_json::from_slice::<Value>(&e.bytes).unwrap_or(Value::Null),
        "client_address": e.client_address,
    })
}

pub async fn list(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> ApiResult<Json<Value>> {
    let subject_id = p
        .subject_id
        .as_deref()
        .map(|v| {
            v.parse::<SubjectId>().map_err(|_| {
                ApiError::Validation(vec![steward_domain::FieldError::new(
                    "subject_id",
                    "must be a contact id",
                )])
            })
        })
        .transpose()?;
    let query = AuditQuery {
        subject_id,
        actor: p.actor,
        from: time("from", p.from.as_deref())?,
        to: time("to", p.to.as_deref())?,
        cursor: p.cursor,
        limit: p.limit,
    };
    let page = s.service.audit_query(&ctx, &query).await?;
    Ok(Json(json!({
        "items": page.items.iter().map(entry_json).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

pub async fn entry(State(s): State<AppState>, Ctx(ctx): Ctx, Path(index): Path<String>) -> ApiResult<Json<Value>> {
    let index: u64 = index
        .parse()
        .map_err(|_| ApiError::NotFound("no audit entry with this index exists".into()))?;
    let e = s.service.audit_entry(&ctx, index).await?;
    let mut v = entry_json(&e);
    if let Some(obj) = v.as_object_mut() {
        obj.insert("entry_base64".into(), Value::String(B64.encode(&e.bytes)));
    }
    Ok(Json(v))
}

pub async fn tree_head(State(s): State<AppState>, Ctx(ctx): Ctx) -> ApiResult<Json<Value>> {
    let h = s.service.tree_head(&ctx).await?;
    let timestamp = DateTime::<Utc>::from_timestamp_millis(h.head.timestamp_ms).map(|t| t.to_rfc3339());
    Ok(Json(json!({
        "tree_size": h.head.tree_size,
        "root_hash": B64.encode(h.head.root),
        "timestamp": timestamp,
        "timestamp_ms": h.head.timestamp_ms,
        "signature": B64.encode(&h.head.signature),
        "signature_algorithm": "Ed25519",
        "hash_algorithm": "SHA-256",
        "public_key": B64.encode(h.public_key),
        "key_id": h.head.key_id,
        "signed_bytes": B64.encode(h.head.signed_bytes()),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionParams {
    index: u64,
    tree_size: u64,
}

pub async fn inclusion(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(p): ApiQuery<InclusionParams>,
) -> ApiResult<Json<Value>> {
    let proof = s.service.inclusion_proof(&ctx, p.index, p.tree_size).await?;
    Ok(Json(json!({
        "index": proof.index,
        "tree_size": proof.tree_size,
        "leaf_hash": B64.encode(proof.leaf_hash),
        "root_hash": B64.encode(proof.root),
        "audit_path": proof.path.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    first: u64,
    second: u64,
}

pub async fn consistency(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(p): ApiQuery<ConsistencyParams>,
) -> ApiResult<Json<Value>> {
    let proof = s.service.consistency_proof(&ctx, p.first, p.second).await?;
    Ok(Json(json!({
        "first": proof.first,
        "second": proof.second,
        "first_root_hash": B64.encode(proof.first_root),
        "second_root_hash": B64.encode(proof.second_root),
        "consistency_path": proof.path.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
    })))
}

/// `GET /api/v1/contacts/{id}/access-log`: who accessed this person's data.
pub async fn access_log(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    let subject: SubjectId = crate::extract::path_id(&id, "contact")?;
    let query = AuditQuery {
        subject_id: Some(subject),
        cursor: p.cursor().map(str::to_string),
        limit: p.limit(),
        ..AuditQuery::default()
    };
    let page = s.service.audit_query(&ctx, &query).await?;
    Ok(Json(json!({
        "items": page.items.iter().map(|e| {
            let r = &e.entry.record;
            json!({"at": r.at, "action": r.action, "outcome": r.outcome.as_str(), "purpose": r.purpose,
                   "actor_role": r.actor.role, "actor_kind": r.actor.kind.as_str(), "fields": r.fields})
        }).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}
