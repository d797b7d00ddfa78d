//! `/api/v1/audit`: the audit log, its signed tree heads and proofs.
//! Binary values (hashes, entry bytes, signatures, keys) are base64
//! (standard alphabet, padded), as in RFC 9162's JSON API.

use axum::extract::{Path, State};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use steward_domain::SubjectId;
use steward_service::audit::{AccessLogItem, AuditEntryView, AuditQuery};

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

/// Standard base64 of bytes.
type Base64 = String;

/// One entry of the audit log.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "AuditEntry")]
pub struct EntryOut {
    index: u64,
    /// SHA-256(0x00 || entry bytes), base64.
    #[schemars(extend("contentEncoding" = "base64"))]
    leaf_hash: Base64,
    /// The decoded entry: ids, field names, purpose and outcome; never personal data.
    entry: Option<serde_json::Map<String, Value>>,
    /// The client address the entry records, while its month's key is kept.
    client_address: Option<String>,
    /// The exact entry bytes (single-entry answers only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(extend("contentEncoding" = "base64"))]
    entry_base64: Option<Base64>,
}

fn entry_json(e: &AuditEntryView) -> EntryOut {
    EntryOut {
        index: e.index,
        leaf_hash: B64.encode(e.leaf_hash),
        entry: serde_json::from_slice(&e.bytes).ok(),
        client_address: e.client_address.clone(),
        entry_base64: None,
    }
}

/// A page of a list, with the cursor of the next one (none: the last page).
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "{T}Page")]
pub struct Page<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

pub async fn list(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> ApiResult<Json<Page<EntryOut>>> {
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
    Ok(Json(Page {
        items: page.items.iter().map(entry_json).collect(),
        next_cursor: page.next_cursor,
    }))
}

pub async fn entry(State(s): State<AppState>, Ctx(ctx): Ctx, Path(index): Path<String>) -> ApiResult<Json<EntryOut>> {
    let index: u64 = index
        .parse()
        .map_err(|_| ApiError::NotFound("no audit entry with this index exists".into()))?;
    let e = s.service.audit_entry(&ctx, index).await?;
    Ok(Json(EntryOut {
        entry_base64: Some(B64.encode(&e.bytes)),
        ..entry_json(&e)
    }))
}

/// The signed head of the audit log's Merkle tree (RFC 6962).
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "TreeHead")]
pub struct TreeHeadOut {
    tree_size: u64,
    #[schemars(extend("contentEncoding" = "base64"))]
    root_hash: Base64,
    timestamp: Option<DateTime<Utc>>,
    timestamp_ms: i64,
    /// Ed25519 over `signed_bytes`.
    #[schemars(extend("contentEncoding" = "base64"))]
    signature: Base64,
    #[schemars(extend("const" = "Ed25519"))]
    signature_algorithm: &'static str,
    #[schemars(extend("const" = "SHA-256"))]
    hash_algorithm: &'static str,
    #[schemars(extend("contentEncoding" = "base64"))]
    public_key: Base64,
    key_id: String,
    /// `steward-audit-tree-head-v1` and a newline, tree_size (u64 BE), timestamp_ms (i64 BE), root hash (32 bytes).
    #[schemars(extend("contentEncoding" = "base64"))]
    signed_bytes: Base64,
}

pub async fn tree_head(State(s): State<AppState>, Ctx(ctx): Ctx) -> ApiResult<Json<TreeHeadOut>> {
    let h = s.service.tree_head(&ctx).await?;
    Ok(Json(TreeHeadOut {
        tree_size: h.head.tree_size,
        root_hash: B64.encode(h.head.root),
        timestamp: DateTime::<Utc>::from_timestamp_millis(h.head.timestamp_ms),
        timestamp_ms: h.head.timestamp_ms,
        signature: B64.encode(&h.head.signature),
        signature_algorithm: "Ed25519",
        hash_algorithm: "SHA-256",
        public_key: B64.encode(h.public_key),
        key_id: h.head.key_id.clone(),
        signed_bytes: B64.encode(h.head.signed_bytes()),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionParams {
    index: u64,
    tree_size: u64,
}

/// An RFC 6962 audit path: the entry `index` is in the tree of `tree_size` entries.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "InclusionProof")]
pub struct InclusionOut {
    index: u64,
    tree_size: u64,
    #[schemars(extend("contentEncoding" = "base64"))]
    leaf_hash: Base64,
    #[schemars(extend("contentEncoding" = "base64"))]
    root_hash: Base64,
    /// Sibling hashes from the leaf up, base64.
    audit_path: Vec<Base64>,
}

pub async fn inclusion(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(p): ApiQuery<InclusionParams>,
) -> ApiResult<Json<InclusionOut>> {
    let proof = s.service.inclusion_proof(&ctx, p.index, p.tree_size).await?;
    Ok(Json(InclusionOut {
        index: proof.index,
        tree_size: proof.tree_size,
        leaf_hash: B64.encode(proof.leaf_hash),
        root_hash: B64.encode(proof.root),
        audit_path: proof.path.iter().map(|h| B64.encode(h)).collect(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    first: u64,
    second: u64,
}

/// An RFC 6962 consistency proof: the tree of `first` entries is a prefix of the tree of `second`.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "ConsistencyProof")]
pub struct ConsistencyOut {
    first: u64,
    second: u64,
    #[schemars(extend("contentEncoding" = "base64"))]
    first_root_hash: Base64,
    #[schemars(extend("contentEncoding" = "base64"))]
    second_root_hash: Base64,
    consistency_path: Vec<Base64>,
}

pub async fn consistency(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(p): ApiQuery<ConsistencyParams>,
) -> ApiResult<Json<ConsistencyOut>> {
    let proof = s.service.consistency_proof(&ctx, p.first, p.second).await?;
    Ok(Json(ConsistencyOut {
        first: proof.first,
        second: proof.second,
        first_root_hash: B64.encode(proof.first_root),
        second_root_hash: B64.encode(proof.second_root),
        consistency_path: proof.path.iter().map(|h| B64.encode(h)).collect(),
    }))
}

/// `GET /api/v1/contacts/{id}/access-log`: who accessed this person's data.
pub async fn access_log(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Page<AccessLogItem>>> {
    let subject: SubjectId = crate::extract::path_id(&id, "contact")?;
    let query = AuditQuery {
        subject_id: Some(subject),
        cursor: p.cursor().map(str::to_string),
        limit: p.limit(),
        ..AuditQuery::default()
    };
    let page = s.service.audit_query(&ctx, &query).await?;
    Ok(Json(Page {
        items: page
            .items
            .into_iter()
            .map(|e| AccessLogItem::from(e.entry.record))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}
