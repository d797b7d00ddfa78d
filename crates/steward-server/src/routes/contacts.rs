//! `/api/v1/contacts` and `/api/v1/contacts/{id}/interactions`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};
use steward_domain::SubjectId;
use steward_service::contacts::{ContactQuery, InteractionInput};

use crate::extract::{path_id, ApiJson, ApiQuery, Ctx};
use crate::problem::ApiResult;
use crate::{views, AppState};

/// `?q=`, `?cursor=`, `?limit=`, or one exact-search field such as
/// `?email=` or `?phone=` (any contact field the inventory marks
/// `search = "exact"`).
pub type ListParams = std::collections::BTreeMap<String, String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    cursor: Option<String>,
    limit: Option<u32>,
}

impl PageParams {
    #[must_use]
    pub fn cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }
    #[must_use]
    pub fn limit(&self) -> Option<u32> {
        self.limit
    }
}

pub async fn create(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<impl IntoResponse> {
    let c = s.service.create_contact(&ctx, body).await?;
    Ok((
        StatusCode::CREATED,
        [("location", format!("/api/v1/contacts/{}", c.id))],
        Json(views::contact(&c)),
    ))
}

pub async fn get(State(s): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id: SubjectId = path_id(&id, "contact")?;
    Ok(Json(views::contact(&s.service.get_contact(&ctx, id).await?)))
}

pub async fn patch(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    let id: SubjectId = path_id(&id, "contact")?;
    Ok(Json(views::contact(&s.service.update_contact(&ctx, id, body).await?)))
}

pub async fn delete(State(s): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id: SubjectId = path_id(&id, "contact")?;
    s.service.delete_contact(&ctx, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<Json<Value>> {
    let mut query = ContactQuery::default();
    for (name, value) in p {
        match name.as_str() {
            "q" => query.q = Some(value),
            "cursor" => query.cursor = Some(value),
            "limit" => {
                query.limit = Some(value.parse().map_err(|_| {
                    crate::problem::ApiError::BadRequest("the query string is invalid: limit must be a number".into())
                })?);
            }
            _ if query.exact.is_none() => query.exact = Some((name, value)),
            _ => {
                return Err(crate::problem::ApiError::BadRequest(
                    "search by one field at a time (for example ?email= or ?phone=)".into(),
                ))
            }
        }
    }
    let page = s.service.list_contacts(&ctx, &query).await?;
    Ok(Json(views::page(&page, views::contact)))
}

pub async fn add_interaction(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<InteractionInput>,
) -> ApiResult<impl IntoResponse> {
    let id: SubjectId = path_id(&id, "contact")?;
    let i = s.service.add_interaction(&ctx, id, input).await?;
    Ok((StatusCode::CREATED, Json(views::interaction(&i))))
}

pub async fn list_interactions(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    let id: SubjectId = path_id(&id, "contact")?;
    let page = s.service.list_interactions(&ctx, id, p.cursor(), p.limit()).await?;
    Ok(Json(views::page(&page, views::interaction)))
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestrictionInput {
    restricted: bool,
}

/// `POST /api/v1/contacts/{id}/restriction`: restrict processing (GDPR Art. 18) or lift it.
pub async fn restriction(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<RestrictionInput>,
) -> ApiResult<Json<RestrictionOut>> {
    let id: SubjectId = path_id(&id, "contact")?;
    s.service.set_restriction(&ctx, id, input.restricted).await?;
    Ok(Json(RestrictionOut {
        id: *id.as_uuid(),
        restricted: input.restricted,
    }))
}

/// The contact's processing restriction (GDPR Art. 18) after the change.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "Restriction")]
pub struct RestrictionOut {
    id: uuid::Uuid,
    restricted: bool,
}
