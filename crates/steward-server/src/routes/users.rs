//! User management, training records and settings (the `admin` role):
//! `/api/v1/users`, `/api/v1/settings`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use steward_domain::UserId;
use steward_service::admin::TrainingRow;
use steward_service::admin::{UserChange, UserView};
use zeroize::Zeroizing;

use crate::extract::{path_id, ApiJson, Authed};
use crate::problem::ApiResult;
use crate::AppState;

fn user_json(u: &UserView) -> Value {
    json!({
        "id": u.id.to_string(), "username": u.username, "role": u.role, "disabled": u.disabled,
        "created_at": u.created_at, "mfa_enabled": u.mfa_enabled, "locked_until": u.locked_until,
        "training_current": u.training_current,
    })
}

fn training_json(t: &TrainingRow) -> Value {
    json!({ "id": t.id.to_string(), "user_id": t.user_id.to_string(), "course": t.course,
            "completed_on": t.completed_on, "expires_on": t.expires_on, "created_at": t.created_at })
}

pub async fn list(State(s): State<AppState>, Authed(p): Authed) -> ApiResult<Json<Value>> {
    let users = s.service.list_users(Some(&p)).await?;
    Ok(Json(
        json!({ "items": users.iter().map(user_json).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    #[schemars(regex(pattern = r"^[a-z0-9._-]{1,64}$"))]
    username: String,
    #[schemars(extend("enum" = steward_domain::inventory::BUILT_IN_ROLES))]
    role: String,
    #[schemars(with = "String", length(min = 8), extend("format" = "password"))]
    password: Zeroizing<String>,
}

pub async fn create(
    State(s): State<AppState>,
    Authed(p): Authed,
    ApiJson(input): ApiJson<NewUser>,
) -> ApiResult<impl IntoResponse> {
    let u = s
        .service
        .create_user_by(&p, &input.username, &input.role, input.password)
        .await?;
    Ok((StatusCode::CREATED, Json(user_json(&u))))
}

pub async fn get(State(s): State<AppState>, Authed(p): Authed, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id: UserId = path_id(&id, "user")?;
    Ok(Json(user_json(&s.service.get_user_view(&p, id).await?)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "UserPatch")]
pub struct Patch {
    #[serde(default)]
    #[schemars(extend("enum" = ["admin", "dpo", "sales", "support", "marketing", "auditor", null]))]
    role: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
}

pub async fn patch(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<Patch>,
) -> ApiResult<Json<Value>> {
    let id: UserId = path_id(&id, "user")?;
    let u = s
        .service
        .update_user(
            Some(&p),
            id,
            UserChange {
                role: input.role,
                disabled: input.disabled,
            },
        )
        .await?;
    Ok(Json(user_json(&u)))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordInput {
    #[schemars(with = "String", length(min = 8), extend("format" = "password"))]
    password: Zeroizing<String>,
}

pub async fn reset_password(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<PasswordInput>,
) -> ApiResult<StatusCode> {
    let id: UserId = path_id(&id, "user")?;
    s.service.reset_password(Some(&p), id, input.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn reset_mfa(State(s): State<AppState>, Authed(p): Authed, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id: UserId = path_id(&id, "user")?;
    s.service.reset_mfa(Some(&p), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn revoke_tokens(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id: UserId = path_id(&id, "user")?;
    s.service.revoke_user_tokens(Some(&p), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn training(State(s): State<AppState>, Authed(p): Authed, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let id: UserId = path_id(&id, "user")?;
    let rows = s.service.list_training(Some(&p), Some(id)).await?;
    Ok(Json(
        json!({ "items": rows.iter().map(training_json).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingInput {
    course: String,
    #[schemars(extend("format" = "date"))]
    completed_on: String,
    #[serde(default)]
    #[schemars(extend("format" = "date"))]
    expires_on: Option<String>,
}

pub async fn add_training(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<TrainingInput>,
) -> ApiResult<impl IntoResponse> {
    let id: UserId = path_id(&id, "user")?;
    let row = s
        .service
        .add_training(
            Some(&p),
            id,
            &input.course,
            &input.completed_on,
            input.expires_on.as_deref(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(training_json(&row))))
}

pub async fn settings(State(s): State<AppState>, Authed(p): Authed) -> ApiResult<Json<Value>> {
    let table = s.service.settings_for(&p).await?;
    let mut obj = serde_json::Map::new();
    for (name, value, _) in table {
        let v = match value.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            other => other
                .parse::<i64>()
                .map_or_else(|_| Value::String(other.to_string()), Value::from),
        };
        obj.insert(name.to_string(), v);
    }
    Ok(Json(Value::Object(obj)))
}

pub async fn put_settings(
    State(s): State<AppState>,
    Authed(p): Authed,
    ApiJson(input): ApiJson<serde_json::Map<String, Value>>,
) -> ApiResult<Json<Value>> {
    // Each value of the JSON type the description gives its setting
    // (SettingsInput), all checked before any is changed.
    let schema = steward_service::settings::change_schema();
    let mut changes = Vec::with_capacity(input.len());
    for (name, value) in &input {
        let ty = schema["properties"][name.as_str()]["type"].as_str().unwrap_or("string");
        let text = match (ty, value) {
            ("boolean", Value::Bool(b)) => b.to_string(),
            ("integer", Value::Number(n)) if n.as_i64().is_some() => n.to_string(),
            // JSON Schema counts 7.0 as an integer.
            ("integer", Value::Number(n)) if n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() < 1e15) => {
                format!("{}", n.as_f64().unwrap_or_default() as i64)
            }
            ("string", Value::String(v)) => v.clone(),
            _ => {
                return Err(crate::problem::ApiError::Validation(vec![
                    steward_domain::FieldError::new(name, format!("must be a JSON {ty}")),
                ]))
            }
        };
        changes.push((name, text));
    }
    for (name, text) in changes {
        s.service.set_setting_by(&p, name, &text).await?;
    }
    settings(State(s), Authed(p)).await
}
