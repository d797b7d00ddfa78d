//! The SCIM 2.0 endpoints (RFC 7644) under `/scim/v2`: Users, Groups and
//! discovery, in `application/scim+json` (requests may also be
//! `application/json`), with SCIM's error format. Kept out of the OpenAPI
//! endpoint table: SCIM describes itself (`/Schemas`, `/ResourceTypes`,
//! `/ServiceProviderConfig`).
//!
//! Authentication is a SCIM token (`steward scim token create`) as a
//! bearer token; staff tokens and sessions are refused. The discovery
//! endpoints hold no data and need no token.

pub mod discovery;

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequest, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use steward_domain::UserId;
use steward_service::scim::resource::{self, GROUP_SCHEMA, USER_SCHEMA};
use steward_service::scim::{filter, ScimClient, ScimError};

use crate::extract::{client_address, request_id, BODY_LIMIT};
use crate::AppState;

pub const MEDIA_TYPE: &str = "application/scim+json";
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// A SCIM error as a response (RFC 7644 §3.12).
pub struct Fail(pub ScimError);

impl From<ScimError> for Fail {
    fn from(e: ScimError) -> Self {
        Self(e)
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": status.as_u16().to_string(),
            "detail": e.detail,
        });
        if let Some(t) = e.scim_type {
            body["scimType"] = json!(t);
        }
        let mut resp = scim_json(status, &body);
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scim\""),
            );
        }
        resp
    }
}

type ScimResponse = Result<Response, Fail>;

fn scim_json(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    resp
}

/// The SCIM base URL as the client addressed it, for `meta.location`.
fn base_url(headers: &HeaderMap, https: bool) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .unwrap_or("localhost");
    format!("{}://{host}/scim/v2", if https { "https" } else { "http" })
}

/// The authenticated provisioning client.
pub struct Scim(pub ScimClient);

impl FromRequestParts<AppState> for Scim {
    type Rejection = Fail;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| Fail(ScimError::unauthorized()))?;
        let mut client = state.service.authenticate_scim(token).await?;
        client.request_id = request_id(&parts.headers);
        client.client = client_address(parts);
        Ok(Self(client))
    }
}

/// A SCIM request body: `application/scim+json` or `application/json`, at
/// most [`BODY_LIMIT`], valid JSON.
pub struct ScimBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimBody {
    type Rejection = Fail;

    async fn from_request(req: Request<Body>, _state: &S) -> Result<Self, Self::Rejection> {
        let media = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase());
        if !matches!(media.as_deref(), Some(MEDIA_TYPE | "application/json")) {
            return Err(Fail(ScimError::status(
                415,
                "the request body must be application/scim+json or application/json",
            )));
        }
        let bytes = to_bytes(req.into_body(), BODY_LIMIT)
            .await
            .map_err(|_| Fail(ScimError::status(413, "the request body is larger than 1 MiB")))?;
        let value = serde_json::from_slice(&bytes)
            .map_err(|_| Fail(ScimError::bad("invalidSyntax", "the request body is not valid JSON")))?;
        Ok(Self(value))
    }
}

/// The query parameters of a list request.
struct ListQuery {
    filter: Option<String>,
    start_index: usize,
    count: usize,
    members: bool,
}

fn list_query(raw: Option<&str>) -> Result<ListQuery, Fail> {
    let mut q = ListQuery {
        filter: None,
        start_index: 1,
        count: discovery::MAX_RESULTS,
        members: true,
    };
    let number = |v: &str, name: &str| -> Result<i64, Fail> {
        v.trim()
            .parse::<i64>()
            .map_err(|_| Fail(ScimError::bad("invalidValue", format!("{name} must be an integer"))))
    };
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "filter" => q.filter = Some(v.into_owned()),
            // RFC 7644 §3.4.2.4: below 1 is 1; a negative count is 0.
            "startIndex" => q.start_index = usize::try_from(number(&v, "startIndex")?.max(1)).unwrap_or(1),
            "count" => {
                q.count = usize::try_from(number(&v, "count")?.max(0))
                    .unwrap_or(0)
                    .min(discovery::MAX_RESULTS);
            }
            "excludedAttributes" => {
                q.members = !v.split(',').any(|a| a.trim().eq_ignore_ascii_case("members"));
            }
            _ => {}
        }
    }
    Ok(q)
}

fn list_response(items: Vec<Value>, q: &ListQuery) -> Response {
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(q.start_index - 1).take(q.count).collect();
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": q.start_index,
            "itemsPerPage": page.len(),
            "Resources": page,
        }),
    )
}

fn user_id(raw: &str) -> Result<UserId, Fail> {
    raw.parse().map_err(|_| Fail(ScimError::not_found()))
}

fn https(state: &AppState) -> bool {
    state.secure_cookies
}

async fn list_users(
    State(s): State<AppState>,
    Scim(c): Scim,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ScimResponse {
    let q = list_query(raw.as_deref())?;
    let f = q
        .filter
        .as_deref()
        .map(|f| filter::parse(f, &["userName", "externalId"], USER_SCHEMA))
        .transpose()?;
    let base = base_url(&headers, https(&s));
    let users = s.service.scim_users(&c, f.as_ref()).await?;
    Ok(list_response(
        users.iter().map(|u| resource::user_json(u, &base)).collect(),
        &q,
    ))
}

fn created(user: &resource::ScimUser, base: &str) -> Response {
    let body = resource::user_json(user, base);
    let mut resp = scim_json(StatusCode::CREATED, &body);
    if let Ok(v) = HeaderValue::from_str(&format!("{base}/Users/{}", user.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

async fn create_user(
    State(s): State<AppState>,
    Scim(c): Scim,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> ScimResponse {
    let user = s.service.scim_create_user(&c, &body).await?;
    Ok(created(&user, &base_url(&headers, https(&s))))
}

async fn get_user(
    State(s): State<AppState>,
    Scim(c): Scim,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ScimResponse {
    let user = s.service.scim_user(&c, user_id(&id)?).await?;
    Ok(scim_json(
        StatusCode::OK,
        &resource::user_json(&user, &base_url(&headers, https(&s))),
    ))
}

async fn replace_user(
    State(s): State<AppState>,
    Scim(c): Scim,
    headers: HeaderMap,
    Path(id): Path<String>,
    ScimBody(body): ScimBody,
) -> ScimResponse {
    let user = s.service.scim_replace_user(&c, user_id(&id)?, &body).await?;
    Ok(scim_json(
        StatusCode::OK,
        &resource::user_json(&user, &base_url(&headers, https(&s))),
    ))
}

async fn patch_user(
    State(s): State<AppState>,
    Scim(c): Scim,
    headers: HeaderMap,
    Path(id): Path<String>,
    ScimBody(body): ScimBody,
) -> ScimResponse {
    let user = s.service.scim_patch_user(&c, user_id(&id)?, &body).await?;
    Ok(scim_json(
        StatusCode::OK,
        &resource::user_json(&user, &base_url(&headers, https(&s))),
    ))
}

async fn delete_user(State(s): State<AppState>, Scim(c): Scim, Path(id): Path<String>) -> ScimResponse {
    s.service.scim_delete_user(&c, user_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn list_groups(
    State(s): State<AppState>,
    Scim(c): Scim,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ScimResponse {
    let q = list_query(raw.as_deref())?;
    let f = q
        .filter
        .as_deref()
        .map(|f| filter::parse(f, &["displayName"], GROUP_SCHEMA))
        .transpose()?;
    let base = base_url(&headers, https(&s));
    let groups = s.service.scim_groups(&c, f.as_ref()).await?;
    Ok(list_response(
        groups
            .iter()
            .map(|g| resource::group_json(g, &base, q.members))
            .collect(),
        &q,
    ))
}

async fn get_group(
    State(s): State<AppState>,
    Scim(c): Scim,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ScimResponse {
    let q = list_query(raw.as_deref())?;
    let group = s.service.scim_group(&c, &id).await?;
    Ok(scim_json(
        StatusCode::OK,
        &resource::group_json(&group, &base_url(&headers, https(&s)), q.members),
    ))
}

async fn patch_group(
    State(s): State<AppState>,
    Scim(c): Scim,
    Path(id): Path<String>,
    ScimBody(body): ScimBody,
) -> ScimResponse {
    s.service.scim_patch_group(&c, &id, &body).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Creating, replacing or deleting a group would change the roles, which
/// come from the data inventory.
async fn groups_fixed(_c: Scim) -> Fail {
    Fail(ScimError::status(
        501,
        "groups are Steward's roles, defined in the data inventory; only their members can be changed",
    ))
}

async fn service_provider_config(State(s): State<AppState>, headers: HeaderMap) -> Response {
    scim_json(
        StatusCode::OK,
        &discovery::service_provider_config(&base_url(&headers, https(&s))),
    )
}

async fn schemas(State(s): State<AppState>, headers: HeaderMap) -> ScimResponse {
    let all = discovery::schemas(&base_url(&headers, https(&s)));
    Ok(list_response(all, &list_query(None)?))
}

async fn schema(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> ScimResponse {
    discovery::schemas(&base_url(&headers, https(&s)))
        .into_iter()
        .find(|v| v["id"] == json!(id))
        .map(|v| scim_json(StatusCode::OK, &v))
        .ok_or_else(|| Fail(ScimError::not_found()))
}

async fn resource_types(State(s): State<AppState>, headers: HeaderMap) -> ScimResponse {
    let all = discovery::resource_types(&base_url(&headers, https(&s)));
    Ok(list_response(all, &list_query(None)?))
}

async fn resource_type(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> ScimResponse {
    discovery::resource_types(&base_url(&headers, https(&s)))
        .into_iter()
        .find(|v| v["id"] == json!(id))
        .map(|v| scim_json(StatusCode::OK, &v))
        .ok_or_else(|| Fail(ScimError::not_found()))
}

async fn not_found() -> Fail {
    Fail(ScimError::not_found())
}

async fn method_not_allowed() -> Fail {
    Fail(ScimError::status(405, "this method is not supported on this endpoint"))
}

/// The SCIM router, merged into the application router.
pub fn routes() -> Router<AppState> {
    let scim = Router::new()
        .route("/Users", get(list_users).post(create_user).fallback(method_not_allowed))
        .route(
            "/Users/{id}",
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user)
                .fallback(method_not_allowed),
        )
        .route(
            "/Groups",
            get(list_groups).post(groups_fixed).fallback(method_not_allowed),
        )
        .route(
            "/Groups/{id}",
            get(get_group)
                .patch(patch_group)
                .put(groups_fixed)
                .delete(groups_fixed)
                .fallback(method_not_allowed),
        )
        .route(
            "/ServiceProviderConfig",
            get(service_provider_config).fallback(method_not_allowed),
        )
        .route("/Schemas", get(schemas).fallback(method_not_allowed))
        .route("/Schemas/{id}", get(schema).fallback(method_not_allowed))
        .route("/ResourceTypes", get(resource_types).fallback(method_not_allowed))
        .route("/ResourceTypes/{id}", get(resource_type).fallback(method_not_allowed))
        .fallback(not_found);
    Router::new().nest("/scim/v2", scim)
}
