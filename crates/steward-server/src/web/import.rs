//! The console's CSV import: the file is posted (multipart, kept in memory
//! only, never written to disk), imported in the background through the
//! service's one door, and followed on a page that reloads itself with the
//! progress until the per-line report is ready. Reports carry line numbers
//! and reasons, never values.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use steward_service::import::{ImportProgress, RowReport};
use steward_service::ServiceError;
use uuid::Uuid;

use super::html::{csrf, error_page, layout, respond, sentence, Staff};
use super::text as t;
use crate::problem::ApiError;
use crate::AppState;

/// The largest file the console imports at once (the API's 1 MiB body
/// limit does not apply to this page).
pub const MAX_IMPORT_BYTES: usize = 32 * 1024 * 1024;

/// How long a finished import's report stays available.
const KEEP: Duration = Duration::from_secs(3600);

struct Job {
    owner: String,
    started: Instant,
    total: u64,
    progress: ImportProgress,
    outcome: Option<Result<Vec<RowReport>, String>>,
}

fn jobs() -> &'static Mutex<HashMap<Uuid, Job>> {
    static JOBS: OnceLock<Mutex<HashMap<Uuid, Job>>> = OnceLock::new();
    JOBS.get_or_init(Mutex::default)
}

fn with_jobs<T>(f: impl FnOnce(&mut HashMap<Uuid, Job>) -> T) -> T {
    let mut guard = jobs().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut guard)
}

/// The parts of a `multipart/form-data` body by field name (the browser's
/// file upload). Only what the import form sends is understood: named
/// parts with their raw bytes.
fn multipart(headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, Vec<u8>>> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = params.split(';').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.eq_ignore_ascii_case("boundary")
            .then(|| v.trim_matches('"').to_string())
    })?;
    if boundary.is_empty() || boundary.len() > 200 {
        return None;
    }
    let delimiter = format!("--{boundary}").into_bytes();
    let find = |hay: &[u8], from: usize| -> Option<usize> {
        hay.get(from..)?
            .windows(delimiter.len())
            .position(|w| w == delimiter.as_slice())
            .map(|p| p + from)
    };
    let mut parts = HashMap::new();
    let mut at = find(body, 0)? + delimiter.len();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            return Some(parts);
        }
        let start = at + 2; // CRLF after the delimiter
        let next = find(body, start)?;
        // The part ends with CRLF before the next delimiter.
        let part = body.get(start..next.checked_sub(2)?)?;
        let split = part.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&part[..split]).ok()?;
        let content = &part[split + 4..];
        let name = head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            if !k.trim().eq_ignore_ascii_case("content-disposition") {
                return None;
            }
            v.split(';').find_map(|p| {
                let (k, v) = p.trim().split_once('=')?;
                (k == "name").then(|| v.trim_matches('"').to_string())
            })
        })?;
        parts
            .entry(name)
            .and_modify(|v: &mut Vec<u8>| {
                v.push(b';');
                v.extend_from_slice(content);
            })
            .or_insert_with(|| content.to_vec());
        at = next + delimiter.len();
    }
}

fn may_import(s: &AppState, staff: &Staff) -> bool {
    s.service
        .inventory()
        .role(&staff.principal.role)
        .is_some_and(|r| r.actions.iter().any(|a| a == "contact.write"))
}

pub async fn form(State(s): State<AppState>, staff: Staff) -> Response {
    if !may_import(&s, &staff) {
        return error_page(&s, Some(&staff), ApiError::Forbidden(t::IMPORT_NOT_ALLOWED.into()));
    }
    let purposes: Vec<String> = s
        .service
        .inventory()
        .collection_purposes()
        .map(str::to_string)
        .collect();
    let body = html! {
        p { (t::IMPORT_HELP) }
        form.card #import-form method="post" action="/contacts/import" enctype="multipart/form-data" {
            (csrf(&staff))
            label for="f-file" { (t::IMPORT_FILE) }
            input id="f-file" name="file" type="file" accept=".csv,text/csv" required;
            fieldset {
                legend { (t::IMPORT_PURPOSES) }
                @for p in &purposes {
                    label.check {
                        input type="checkbox" name="purposes" value=(p);
                        " " (p)
                    }
                }
            }
            button type="submit" { (t::IMPORT_START) }
        }
    };
    respond(
        StatusCode::OK,
        layout(&s, Some(&staff), t::IMPORT_TITLE, "/contacts", None, body),
    )
}

pub async fn start(State(s): State<AppState>, staff: Staff, headers: HeaderMap, body: Bytes) -> Response {
    let Some(parts) = multipart(&headers, &body) else {
        return error_page(
            &s,
            Some(&staff),
            ApiError::BadRequest("the form could not be read; choose the file again".into()),
        );
    };
    let token = parts.get("_csrf").map(|v| String::from_utf8_lossy(v).into_owned());
    let form = super::html::Form(vec![("_csrf".into(), token.unwrap_or_default())]);
    if let Some(r) = staff.refuse_forged(&s, &form) {
        return r;
    }
    if !may_import(&s, &staff) {
        return error_page(&s, Some(&staff), ApiError::Forbidden(t::IMPORT_NOT_ALLOWED.into()));
    }
    let file = match parts.get("file") {
        Some(f) if !f.is_empty() => f.clone(),
        _ => return error_page(&s, Some(&staff), ApiError::BadRequest(t::IMPORT_NO_FILE.into())),
    };
    let purposes: Vec<String> = parts
        .get("purposes")
        .map(|v| {
            String::from_utf8_lossy(v)
                .split(';')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if let Err(e) = s.service.check_import_purposes(&purposes, "the purposes list") {
        return error_page(&s, Some(&staff), e.into());
    }
    let ctx = match staff.ctx(&s).await {
        Ok(c) => c.0,
        Err(e) => return error_page(&s, Some(&staff), e),
    };
    let id = Uuid::new_v4();
    let owner = staff.principal.user_id.to_string();
    with_jobs(|jobs| {
        jobs.retain(|_, j| j.started.elapsed() < KEEP);
        jobs.insert(
            id,
            Job {
                owner,
                started: Instant::now(),
                total: file.len() as u64,
                progress: ImportProgress::default(),
                outcome: None,
            },
        );
    });
    let service = s.service.clone();
    tokio::spawn(async move {
        let outcome = service
            .import_contacts_csv(ctx, std::io::Cursor::new(file), "the file", &purposes, |p| {
                with_jobs(|jobs| {
                    if let Some(j) = jobs.get_mut(&id) {
                        j.progress = p;
                    }
                });
            })
            .await
            .map_err(|e| match e {
                ServiceError::Internal(_) => "the import stopped because of an internal error".to_string(),
                other => other.to_string(),
            });
        with_jobs(|jobs| {
            if let Some(j) = jobs.get_mut(&id) {
                j.outcome = Some(outcome);
            }
        });
    });
    Redirect::to(&format!("/contacts/import/{id}")).into_response()
}

pub async fn status(State(s): State<AppState>, staff: Staff, Path(id): Path<String>) -> Response {
    let owner = staff.principal.user_id.to_string();
    let view = Uuid::parse_str(&id).ok().and_then(|id| {
        with_jobs(|jobs| {
            jobs.get(&id)
                .filter(|j| j.owner == owner)
                .map(|j| (j.total, j.progress, j.outcome.clone()))
        })
    });
    let Some((total, progress, outcome)) = view else {
        return error_page(&s, Some(&staff), ApiError::NotFound(t::IMPORT_GONE.into()));
    };
    let Some(outcome) = outcome else {
        let body = html! {
            div #import-progress role="status" aria-live="polite" {
                progress max=(total.max(1)) value=(progress.bytes.min(total)) { (progress.bytes) " / " (total) }
                p {
                    (progress.rows) " rows done, " (progress.refused) " refused so far."
                }
            }
        };
        return respond(
            StatusCode::OK,
            layout(&s, Some(&staff), t::IMPORT_RUNNING, "/contacts", Some(1), body),
        );
    };
    let body = match outcome {
        Err(message) => html! {
            div.alert.error #import-summary role="alert" { p { (sentence(&message)) } }
            p { a href="/contacts/import" { (t::IMPORT_MORE) } }
        },
        Ok(reports) => {
            let refused: Vec<&RowReport> = reports.iter().filter(|r| r.error.is_some()).collect();
            let imported = reports.len() - refused.len();
            html! {
                div.alert.(if refused.is_empty() { "ok" } else { "warn" }) #import-summary role="status" {
                    p { (t::IMPORTED) (imported) " contacts; " (refused.len()) " rows refused." }
                }
                @if !refused.is_empty() {
                    table #import-errors {
                        thead { tr { th scope="col" { (t::IMPORT_LINE) } th scope="col" { (t::IMPORT_REASON) } } }
                        tbody {
                            @for r in &refused {
                                tr data-line=(r.line) {
                                    td { (r.line) }
                                    td { (sentence(r.error.as_deref().unwrap_or(""))) }
                                }
                            }
                        }
                    }
                }
                p { a href="/contacts" { (t::CONTACTS) } " · " a href="/contacts/import" { (t::IMPORT_MORE) } }
            }
        }
    };
    respond(
        StatusCode::OK,
        layout(&s, Some(&staff), t::IMPORT_DONE, "/contacts", None, body),
    )
}
