//! User management, training records and settings (the `admin` role):
//! `/api/v1/users`, `/api/v1/settings`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use steward_domain::UserId;
use steward_service::admin::TrainingRow;
use steward_service::admin::{UserChange, UserView};
use zeroize::Zeroizing;

use super::Items;
use crate::extract::{path_id, ApiJson, Authed};
use crate::problem::ApiResult;
use crate::AppState;

/// A staff account as the API shows it (never its password or secrets).
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "User")]
pub struct UserOut {
    id: uuid::Uuid,
    username: String,
    /// One of the built-in roles.
    role: String,
    disabled: bool,
    created_at: DateTime<Utc>,
    /// A second factor (TOTP) is enrolled.
    mfa_enabled: bool,
    /// Locked after repeated failed sign-ins until then.
    locked_until: Option<DateTime<Utc>>,
    /// Holds a current training record (needed for roles that see personal data).
    training_current: bool,
}

fn user_json(u: &UserView) -> UserOut {
    UserOut {
        id: *u.id.as_uuid(),
        username: u.username.clone(),
        role: u.role.clone(),
        disabled: u.disabled,
        created_at: u.created_at,
        mfa_enabled: u.mfa_enabled,
        locked_until: u.locked_until,
        training_current: u.training_current,
    }
}

/// A staff member's completed training.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "Training")]
pub struct TrainingOut {
    id: uuid::Uuid,
    user_id: uuid::Uuid,
    course: String,
    #[schemars(extend("format" = "date"))]
    completed_on: String,
    #[schemars(extend("format" = "date"))]
    expires_on: Option<String>,
    created_at: DateTime<Utc>,
}

fn training_json(t: &TrainingRow) -> TrainingOut {
    TrainingOut {
        id: t.id,
        user_id: *t.user_id.as_uuid(),
        course: t.course.clone(),
        completed_on: t.completed_on.clone(),
        expires_on: t.expires_on.clone(),
        created_at: t.created_at,
    }
}

pub async fn list(State(s): State<AppState>, Authed(p): Authed) -> ApiResult<Json<Items<UserOut>>> {
    let users = s.service.list_users(Some(&p)).await?;
    Ok(Json(Items {
        items: users.iter().map(user_json).collect(),
    }))
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

pub async fn get(State(s): State<AppState>, Authed(p): Authed, Path(id): Path<String>) -> ApiResult<Json<UserOut>> {
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
) -> ApiResult<Json<UserOut>> {
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

pub async fn training(
    State(s): State<AppState>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<Items<TrainingOut>>> {
    let id: UserId = path_id(&id, "user")?;
    let rows = s.service.list_training(Some(&p), Some(id)).await?;
    Ok(Json(Items {
        items: rows.iter().map(training_json).collect(),
    }))
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
        obj.insert(name.to_string(), steward_service::settings::json_value(name, &value));
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
