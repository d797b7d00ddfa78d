//! Administration: users, roles, training records and settings — pages
//! without personal data of contacts.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use maud::html;
use serde_json::{json, Value};

use super::html::{cell, csrf, error_page, input, notice, page, respond, Errors, Form, Staff};
use super::text as t;
use crate::extract::{parse_json, ApiJson, Authed};
use crate::problem::ApiError;
use crate::routes::users;
use crate::AppState;

fn body<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T, ApiError> {
    parse_json(&serde_json::to_vec(v).unwrap_or_default())
}

#[derive(serde::Deserialize, Default)]
pub struct Flash {
    done: Option<String>,
}

pub async fn users(State(s): State<AppState>, staff: Staff, Query(f): Query<Flash>) -> Response {
    users_page(&s, &staff, f.done.as_deref(), &Errors::none()).await
}

async fn users_page(s: &AppState, staff: &Staff, done: Option<&str>, errors: &Errors) -> Response {
    let list = match users::list(State(s.clone()), Authed(staff.principal.clone())).await {
        Ok(Json(v)) => serde_json::to_value(v).unwrap_or_default(),
        Err(e) => return error_page(s, Some(staff), e),
    };
    let roles: Vec<String> = s.service.inventory().roles.keys().cloned().collect();
    let body = html! {
        @if done.is_some() { (notice(t::SAVED_2)) }
        table #users {
            thead { tr { th { (t::USER) } th { (t::ROLE) } th { (t::SECOND_FACTOR) } th { (t::TRAINING_CURRENT) } th { (t::DISABLED) } th { (t::CHANGE) } th { (t::TRAINING) } } }
            tbody {
                @for u in list["items"].as_array().cloned().unwrap_or_default() {
                    @let id = cell(&u["id"]);
                    tr {
                        td { (cell(&u["username"])) }
                        td { (cell(&u["role"])) }
                        td { (if u["mfa_enabled"] == true { "on" } else { "off" }) }
                        td { (if u["training_current"] == true { "yes" } else { "no" }) }
                        td { (if u["disabled"] == true { "yes" } else { "no" }) }
                        td {
                            form.inline method="post" action={"/admin/users/" (id)} {
                                (csrf(staff))
                                label.sr for={"role-" (id)} { (t::ROLE) }
                                select id={"role-" (id)} name="role" { @for r in &roles { option value=(r) selected[u["role"] == r.as_str()] { (r) } } }
                                label.check { input type="checkbox" name="disabled" value="true" checked[u["disabled"] == true]; " disabled" }
                                button type="submit" { (t::SAVE) }
                            }
                            form.inline method="post" action={"/admin/users/" (id) "/revoke-tokens"} {
                                (csrf(staff))
                                button type="submit" { (t::SIGN_OUT_EVERYWHERE) }
                            }
                        }
                        td {
                            form.inline method="post" action={"/admin/users/" (id) "/training"} {
                                (csrf(staff))
                                label.sr for={"course-" (id)} { (t::COURSE) }
                                input id={"course-" (id)} name="course" placeholder="course";
                                label.sr for={"done-" (id)} { (t::COMPLETED_ON) }
                                input id={"done-" (id)} name="completed_on" type="date";
                                button type="submit" { (t::RECORD) }
                            }
                        }
                    }
                }
            }
        }
        h2 { (t::NEW_USER) }
        @if !errors.is_empty() { div.alert.error role="alert" { @for m in &errors.general { p { (m) } } } }
        form.card method="post" action="/admin/users" {
            (csrf(staff))
            (input("username", t::USERNAME, "text", "", errors.field("username")))
            div.field { label for="f-role" { (t::ROLE) } select id="f-role" name="role" { @for r in &roles { option value=(r) { (r) } } } }
            (input("password", t::PASSWORD, "password", "", errors.field("password")))
            button type="submit" { (t::CREATE) }
        }
    };
    respond(StatusCode::OK, page(s, Some(staff), t::USERS, "/admin/users", body))
}

pub async fn create_user(State(s): State<AppState>, staff: Staff, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let v = json!({
        "username": form.get("username").unwrap_or("").trim(),
        "role": form.get("role").unwrap_or(""),
        "password": form.get("password").unwrap_or(""),
    });
    let result = match body(&v) {
        Ok(b) => users::create(State(s.clone()), Authed(staff.principal.clone()), ApiJson(b))
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to("/admin/users?done=created").into_response(),
        Err(e @ (ApiError::Validation(_) | ApiError::Conflict(_))) => {
            let errors = Errors::from_api(&e, &["username", "password"]);
            let mut r = users_page(&s, &staff, None, &errors).await;
            *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            r
        }
        Err(e) => error_page(&s, Some(&staff), e),
    }
}

pub async fn update_user(State(s): State<AppState>, staff: Staff, Path(id): Path<String>, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let v = json!({ "role": form.get("role"), "disabled": form.get("disabled") == Some("true") });
    let result = match body(&v) {
        Ok(b) => users::patch(State(s.clone()), Authed(staff.principal.clone()), Path(id), ApiJson(b))
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to("/admin/users?done=saved").into_response(),
        Err(e) => error_page(&s, Some(&staff), e),
    }
}

pub async fn revoke_tokens(State(s): State<AppState>, staff: Staff, Path(id): Path<String>, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    match users::revoke_tokens(State(s.clone()), Authed(staff.principal.clone()), Path(id)).await {
        Ok(_) => Redirect::to("/admin/users?done=revoked").into_response(),
        Err(e) => error_page(&s, Some(&staff), e),
    }
}

pub async fn add_training(State(s): State<AppState>, staff: Staff, Path(id): Path<String>, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let v = json!({ "course": form.get("course").unwrap_or("").trim(), "completed_on": form.get("completed_on").unwrap_or("") });
    let result = match body(&v) {
        Ok(b) => users::add_training(State(s.clone()), Authed(staff.principal.clone()), Path(id), ApiJson(b))
            .await
            .map(|_| ()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Redirect::to("/admin/users?done=training").into_response(),
        Err(e) => error_page(&s, Some(&staff), e),
    }
}

pub async fn settings(State(s): State<AppState>, staff: Staff, Query(f): Query<Flash>) -> Response {
    let table = match s.service.settings_for(&staff.principal).await {
        Ok(t) => t,
        Err(e) => return error_page(&s, Some(&staff), e.into()),
    };
    let body = html! {
        @if f.done.is_some() { (notice(t::SAVED_2)) }
        table #settings {
            thead { tr { th { (t::SETTING) } th { (t::VALUE) } th { (t::MEANING) } } }
            tbody {
                @for (name, value, help) in &table {
                    tr {
                        td { code { (name) } }
                        td {
                            form.inline method="post" action="/admin/settings" {
                                (csrf(&staff))
                                input type="hidden" name="name" value=(name);
                                label.sr for={"s-" (name)} { (name) }
                                input id={"s-" (name)} name="value" value=(value);
                                button type="submit" { (t::SAVE) }
                            }
                        }
                        td { (help) }
                    }
                }
            }
        }
    };
    respond(
        StatusCode::OK,
        page(&s, Some(&staff), t::SETTINGS, "/admin/settings", body),
    )
}

pub async fn put_setting(State(s): State<AppState>, staff: Staff, form: Form) -> Response {
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    let name = form.get("name").unwrap_or("");
    let value = form.get("value").unwrap_or("").trim();
    match s.service.set_setting_by(&staff.principal, name, value).await {
        Ok(_) => Redirect::to("/admin/settings?done=saved").into_response(),
        Err(e) => error_page(&s, Some(&staff), e.into()),
    }
}
