//! Bulk import of contacts from CSV through the one door: every row is a
//! `create_contact` with the same validation, minimisation, encryption and
//! audit as the API. Used by `steward contact import` and by the console's
//! import page; both report per line, by line number and reason, never by
//! value.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;

use serde_json::{Map, Value};
use steward_domain::inventory::CONTACT;
use steward_domain::records::normalise_contact_field;
use tokio::task::JoinSet;

use crate::{RequestContext, Service, ServiceError};

/// Columns `contact export` writes that are not fields; import ignores them
/// (a re-imported contact gets a new id), so an export can be imported.
pub const EXPORT_METADATA: [&str; 4] = ["id", "created_at", "updated_at", "version"];

/// Rows in flight at once, so that imports ride group commit.
const IMPORT_CONCURRENCY: usize = 64;

/// One row's outcome, reported by line number and reason (never values).
#[derive(Clone, Debug)]
pub struct RowReport {
    pub line: u64,
    pub error: Option<String>,
}

/// How far an import has got, for a progress display.
#[derive(Clone, Copy, Debug, Default)]
pub struct ImportProgress {
    /// Bytes of the file read so far.
    pub bytes: u64,
    /// Rows finished (imported or refused).
    pub rows: u64,
    /// Rows refused so far.
    pub refused: u64,
}

/// A row's refusal as one sentence without values.
pub fn describe(e: &ServiceError) -> String {
    match e {
        ServiceError::Invalid(errors) => errors
            .iter()
            .map(|e| format!("{} {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// A header cell as it may be echoed in a message: names that look like
/// column names are shown, anything else (an e-mail address or phone number
/// where a header should be) only by its position.
fn describe_column(index: usize, name: &str) -> String {
    let identifier =
        !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_- ".contains(&b));
    if identifier {
        format!("'{name}'")
    } else {
        format!("column {}", index + 1)
    }
}

/// The rows being imported concurrently, with the unique values they carry,
/// so that two rows of the file with the same unique value are written in
/// file order (the later one is the one refused as a duplicate).
struct InFlight {
    tasks: JoinSet<RowReport>,
    rows: HashMap<tokio::task::Id, (u64, Vec<String>)>,
    unique_values: HashMap<String, usize>,
    done: u64,
    refused: u64,
}

impl InFlight {
    fn new() -> Self {
        Self {
            tasks: JoinSet::new(),
            rows: HashMap::new(),
            unique_values: HashMap::new(),
            done: 0,
            refused: 0,
        }
    }

    fn holds_any(&self, keys: &[String]) -> bool {
        keys.iter().any(|k| self.unique_values.contains_key(k))
    }

    fn spawn(
        &mut self,
        line: u64,
        keys: Vec<String>,
        task: impl std::future::Future<Output = RowReport> + Send + 'static,
    ) {
        for k in &keys {
            *self.unique_values.entry(k.clone()).or_default() += 1;
        }
        let handle = self.tasks.spawn(task);
        self.rows.insert(handle.id(), (line, keys));
    }

    fn push(&mut self, reports: &mut Vec<RowReport>, report: RowReport) {
        self.done += 1;
        if report.error.is_some() {
            self.refused += 1;
        }
        reports.push(report);
    }

    /// Waits for one row; `false` when none is in flight.
    async fn join_one(&mut self, reports: &mut Vec<RowReport>) -> bool {
        let (id, report) = match self.tasks.join_next_with_id().await {
            None => return false,
            Some(Ok((id, report))) => (id, Some(report)),
            Some(Err(e)) => (e.id(), None),
        };
        let (line, keys) = self.rows.remove(&id).unwrap_or((0, Vec::new()));
        for k in keys {
            if let Some(n) = self.unique_values.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    self.unique_values.remove(&k);
                }
            }
        }
        let report = report.unwrap_or_else(|| RowReport {
            line,
            error: Some("could not be imported because of an internal error".into()),
        });
        self.push(reports, report);
        true
    }
}

impl Service {
    /// The values of unique fields in a row, normalised as far as needed to
    /// tell that two rows would collide.
    fn unique_keys(&self, body: &Map<String, Value>) -> Vec<String> {
        let inventory = self.inventory();
        body.iter()
            .filter(|(name, _)| inventory.field(CONTACT, name).is_some_and(|f| f.unique))
            .filter_map(|(name, value)| {
                normalise_contact_field(inventory, name, value)
                    .ok()
                    .map(|v| format!("{name}\u{0}{}", v.to_lowercase()))
            })
            .collect()
    }

    /// Checks a list of default purposes once, instead of refusing every
    /// row for it; `option` names where the list came from in the message.
    pub fn check_import_purposes(&self, purposes: &[String], option: &str) -> Result<(), ServiceError> {
        let inventory = self.inventory();
        for p in purposes {
            if !inventory.purpose(p).is_some_and(|p| p.collection) {
                let known: Vec<&str> = inventory.collection_purposes().collect();
                return Err(ServiceError::BadRequest(format!(
                    "{option} names '{p}', which is not a purpose data may be collected for; use one or more of {}",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Imports the rows of a CSV file (header first, naming contact fields
    /// and optionally `purposes`) in file order; returns a report per row,
    /// sorted by line. `source` names the file in messages; `progress` is
    /// called as rows finish. A header that names no contact field, or
    /// unknown or repeated columns, refuses the whole file before any row.
    pub async fn import_contacts_csv<R: Read + Send>(
        self: &Arc<Self>,
        ctx: RequestContext,
        input: R,
        source: &str,
        default_purposes: &[String],
        progress: impl Fn(ImportProgress) + Send + Sync,
    ) -> Result<Vec<RowReport>, ServiceError> {
        if ctx.purpose.is_none() {
            return Err(ServiceError::Forbidden(
                "the user's role has no purpose for personal data".into(),
            ));
        }
        self.check_import_purposes(default_purposes, "the default purposes list")?;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(false)
            .trim(csv::Trim::All)
            .from_reader(input);
        let headers = reader
            .byte_headers()
            .map_err(|_| ServiceError::BadRequest("cannot read the CSV header".into()))?
            .clone();
        if headers.is_empty() {
            return Err(ServiceError::BadRequest(format!(
                "{source} is empty; the first line must be a header naming contact fields"
            )));
        }
        let headers: Vec<String> = headers
            .iter()
            .map(|h| std::str::from_utf8(h).map(|s| s.trim_start_matches('\u{feff}').trim().to_string()))
            .collect::<Result<_, _>>()
            .map_err(|_| ServiceError::BadRequest("the CSV header is not valid UTF-8".into()))?;
        let inventory = self.inventory();
        let unknown: Vec<String> = headers
            .iter()
            .enumerate()
            .filter(|(_, h)| {
                h.as_str() != "purposes"
                    && !EXPORT_METADATA.contains(&h.as_str())
                    && inventory.field(CONTACT, h).is_none()
            })
            .map(|(i, h)| describe_column(i, h))
            .collect();
        if !unknown.is_empty() && unknown.len() == headers.len() {
            // Most likely a file without a header row: its first line is a
            // person's data, which must not be echoed.
            return Err(ServiceError::BadRequest(format!(
                "the first line of {source} names no contact field; it must be a header such as given_name,family_name,email"
            )));
        }
        if !unknown.is_empty() {
            return Err(ServiceError::BadRequest(format!(
                "the CSV header names columns that are not contact fields in the data inventory: {} (the first line must be a header such as given_name,family_name,email)",
                unknown.join(", ")
            )));
        }
        for (i, h) in headers.iter().enumerate() {
            if headers[..i].contains(h) {
                return Err(ServiceError::BadRequest(format!(
                    "the CSV header names the column '{h}' more than once"
                )));
            }
        }
        let ctx = Arc::new(ctx);
        let mut in_flight = InFlight::new();
        let mut reports: Vec<RowReport> = Vec::new();
        let mut record = csv::ByteRecord::new();
        let mut bytes = 0;
        let tick = |f: &InFlight, bytes: u64| {
            progress(ImportProgress {
                bytes,
                rows: f.done,
                refused: f.refused,
            });
        };
        loop {
            let line = reader.position().line() + 1;
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => {
                    let line = e.position().map_or(line, csv::Position::line);
                    let reason = match e.kind() {
                        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                            format!("has {len} columns, expected {expected_len}")
                        }
                        csv::ErrorKind::Io(io) => {
                            // Reading again would fail again: stop, reporting what was done.
                            while in_flight.join_one(&mut reports).await {}
                            let imported = reports.iter().filter(|r| r.error.is_none()).count();
                            return Err(ServiceError::BadRequest(format!(
                                "cannot read {source} after line {}: {io} ({imported} contacts were imported before that)",
                                line.saturating_sub(1)
                            )));
                        }
                        _ => "is not a well-formed CSV record".to_string(),
                    };
                    in_flight.push(
                        &mut reports,
                        RowReport {
                            line,
                            error: Some(reason),
                        },
                    );
                    continue;
                }
            }
            let line = record.position().map_or(line, csv::Position::line);
            bytes = record.position().map_or(bytes, csv::Position::byte);
            let mut body = Map::new();
            let mut bad_encoding = false;
            for (name, raw) in headers.iter().zip(record.iter()) {
                let Ok(value) = std::str::from_utf8(raw) else {
                    bad_encoding = true;
                    break;
                };
                if value.is_empty() || EXPORT_METADATA.contains(&name.as_str()) {
                    continue;
                }
                if name == "purposes" {
                    let list: Vec<Value> = value
                        .split([';', ','])
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(|p| Value::String(p.into()))
                        .collect();
                    body.insert(name.clone(), Value::Array(list));
                } else {
                    body.insert(name.clone(), Value::String(value.to_string()));
                }
            }
            if bad_encoding {
                let error = Some("is not valid UTF-8 text".into());
                in_flight.push(&mut reports, RowReport { line, error });
                continue;
            }
            if body.keys().all(|k| k == "purposes") {
                let error = Some("has no contact field values".into());
                in_flight.push(&mut reports, RowReport { line, error });
                continue;
            }
            if !body.contains_key("purposes") && !default_purposes.is_empty() {
                body.insert(
                    "purposes".into(),
                    Value::Array(default_purposes.iter().map(|p| Value::String(p.clone())).collect()),
                );
            }
            let keys = self.unique_keys(&body);
            if in_flight.holds_any(&keys) {
                // An earlier row with the same unique value is still being
                // written: let it finish first, so the later row is the duplicate.
                while in_flight.join_one(&mut reports).await {}
            }
            while in_flight.tasks.len() >= IMPORT_CONCURRENCY {
                in_flight.join_one(&mut reports).await;
            }
            tick(&in_flight, bytes);
            let service = Arc::clone(self);
            let ctx = Arc::clone(&ctx);
            in_flight.spawn(line, keys, async move {
                let error = service.create_contact(&ctx, body).await.err().map(|e| describe(&e));
                RowReport { line, error }
            });
        }
        while in_flight.join_one(&mut reports).await {
            tick(&in_flight, bytes);
        }
        tick(&in_flight, bytes);
        reports.sort_by_key(|r| r.line);
        Ok(reports)
    }
}
