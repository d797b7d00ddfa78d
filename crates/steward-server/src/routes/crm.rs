//! `/api/v1/organizations` and `/api/v1/deals`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::Value;
use steward_domain::{DealId, OrganizationId};
use steward_service::crm::{DealInput, OrganizationInput};

use super::contacts::PageParams;
use crate::extract::{path_id, ApiJson, ApiQuery, Ctx};
use crate::problem::ApiResult;
use crate::{views, AppState};

pub async fn create_organization(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(input): ApiJson<OrganizationInput>,
) -> ApiResult<impl IntoResponse> {
    let o = s.service.create_organization(&ctx, input).await?;
    Ok((StatusCode::CREATED, Json(views::organization(&o))))
}

pub async fn get_organization(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let id: OrganizationId = path_id(&id, "organization")?;
    Ok(Json(views::organization(&s.service.get_organization(&ctx, id).await?)))
}

pub async fn list_organizations(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    let page = s.service.list_organizations(&ctx, p.cursor(), p.limit()).await?;
    Ok(Json(views::page(&page, views::organization)))
}

pub async fn create_deal(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiJson(input): ApiJson<DealInput>,
) -> ApiResult<impl IntoResponse> {
    let d = s.service.create_deal(&ctx, input).await?;
    Ok((StatusCode::CREATED, Json(views::deal(&d))))
}

pub async fn get_deal(State(s): State<AppState>, Ctx(ctx): Ctx, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id: DealId = path_id(&id, "deal")?;
    Ok(Json(views::deal(&s.service.get_deal(&ctx, id).await?)))
}

pub async fn list_deals(
    State(s): State<AppState>,
    Ctx(ctx): Ctx,
    ApiQuery(p): ApiQuery<PageParams>,
) -> ApiResult<Json<Value>> {
    let page = s.service.list_deals(&ctx, p.cursor(), p.limit()).await?;
    Ok(Json(views::page(&page, views::deal)))
}
