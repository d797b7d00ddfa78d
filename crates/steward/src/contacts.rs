//! `steward contact import` and `steward contact export`: bulk moves of
//! contacts through the service layer, made as a named staff user so the
//! same role, purpose and minimisation rules apply as over HTTP.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};
use steward_domain::inventory::CONTACT;
use steward_domain::records::normalise_contact_field;
use steward_service::contacts::{ContactQuery, MAX_PAGE};
use steward_service::{RequestContext, Service, ServiceError};
use tokio::task::JoinSet;

use crate::cli::{open, service_err, Cli, ContactCommand, ExportFormat};

/// Columns `contact export` writes that are not fields; import ignores them
/// (a re-imported contact gets a new id), so an export can be imported.
const EXPORT_METADATA: [&str; 4] = ["id", "created_at", "updated_at", "version"];

/// Rows in flight at once, so that imports ride group commit.
const IMPORT_CONCURRENCY: usize = 64;

async fn context(service: &Service, user: &str, purpose: Option<&str>) -> Result<RequestContext> {
    let principal = service.local_principal(user).await.map_err(|e| match e {
        ServiceError::NotFound(_) => anyhow::anyhow!("there is no user named '{user}'"),
        other => service_err(other),
    })?;
    service
        .context(principal, purpose, None, None)
        .await
        .map_err(service_err)
}

pub async fn run(cli: &Cli, cmd: &ContactCommand) -> Result<ExitCode> {
    let service = open(cli).await?;
    let result = run_with(&service, cmd).await;
    service.close().await;
    result
}

async fn run_with(service: &Arc<Service>, cmd: &ContactCommand) -> Result<ExitCode> {
    match cmd {
        ContactCommand::Import {
            file,
            user,
            purpose,
            purposes,
        } => {
            let ctx = context(service, user, purpose.as_deref()).await?;
            import(service, ctx, file, purposes).await
        }
        ContactCommand::Export {
            user,
            purpose,
            format,
            output,
        } => {
            let ctx = context(service, user, purpose.as_deref()).await?;
            export(service, &ctx, *format, output.as_deref())
                .await
                .map(|()| ExitCode::SUCCESS)
        }
    }
}

/// One row's outcome, reported by line number and reason (never values).
pub(crate) struct RowReport {
    pub line: u64,
    pub error: Option<String>,
}

fn describe(e: &ServiceError) -> String {
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
}

impl InFlight {
    fn new() -> Self {
        Self {
            tasks: JoinSet::new(),
            rows: HashMap::new(),
            unique_values: HashMap::new(),
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
        reports.push(report.unwrap_or_else(|| RowReport {
            line,
            error: Some("could not be imported because of an internal error".into()),
        }));
        true
    }
}

/// The values of unique fields in a row, normalised as far as needed to
/// tell that two rows would collide.
fn unique_keys(service: &Service, body: &Map<String, Value>) -> Vec<String> {
    let inventory = service.inventory();
    body.iter()
        .filter(|(name, _)| inventory.field(CONTACT, name).is_some_and(|f| f.unique))
        .filter_map(|(name, value)| {
            normalise_contact_field(inventory, name, value)
                .ok()
                .map(|v| format!("{name}\u{0}{}", v.to_lowercase()))
        })
        .collect()
}

/// Checks the `--purposes` list once, instead of refusing every row for it.
fn check_default_purposes(service: &Service, purposes: &[String]) -> Result<()> {
    let inventory = service.inventory();
    for p in purposes {
        if !inventory.purpose(p).is_some_and(|p| p.collection) {
            let known: Vec<&str> = inventory.collection_purposes().collect();
            bail!(
                "--purposes names '{p}', which is not a purpose data may be collected for; use one or more of {}",
                known.join(", ")
            );
        }
    }
    Ok(())
}

async fn import(
    service: &Arc<Service>,
    ctx: RequestContext,
    file: &Path,
    default_purposes: &[String],
) -> Result<ExitCode> {
    let reports = import_rows(service, ctx, file, default_purposes, true).await?;
    let imported = reports.iter().filter(|r| r.error.is_none()).count();
    let failed: Vec<&RowReport> = reports.iter().filter(|r| r.error.is_some()).collect();
    for r in &failed {
        eprintln!("line {}: {}", r.line, r.error.as_deref().unwrap_or(""));
    }
    println!("Imported {imported} contacts; {} rows refused.", failed.len());
    Ok(if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Imports the rows of a CSV file through the one door (the same
/// validation, minimisation, encryption and audit as the API), in file
/// order; returns a report per row, sorted by line.
pub(crate) async fn import_rows(
    service: &Arc<Service>,
    ctx: RequestContext,
    file: &Path,
    default_purposes: &[String],
    progress: bool,
) -> Result<Vec<RowReport>> {
    if ctx.purpose.is_none() {
        bail!("the user's role has no purpose for personal data; pass --purpose");
    }
    check_default_purposes(service, default_purposes)?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_path(file)
        .with_context(|| format!("cannot open {}", file.display()))?;
    let headers = reader.byte_headers().context("cannot read the CSV header")?.clone();
    if headers.is_empty() {
        bail!(
            "{} is empty; the first line must be a header naming contact fields",
            file.display()
        );
    }
    let headers: Vec<String> = headers
        .iter()
        .map(|h| std::str::from_utf8(h).map(|s| s.trim_start_matches('\u{feff}').trim().to_string()))
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("the CSV header is not valid UTF-8"))?;
    let inventory = service.inventory();
    let unknown: Vec<String> = headers
        .iter()
        .enumerate()
        .filter(|(_, h)| {
            h.as_str() != "purposes" && !EXPORT_METADATA.contains(&h.as_str()) && inventory.field(CONTACT, h).is_none()
        })
        .map(|(i, h)| describe_column(i, h))
        .collect();
    if !unknown.is_empty() && unknown.len() == headers.len() {
        // Most likely a file without a header row: its first line is a
        // person's data, which must not be echoed.
        bail!(
            "the first line of {} names no contact field; it must be a header such as given_name,family_name,email",
            file.display()
        );
    }
    if !unknown.is_empty() {
        bail!(
            "the CSV header names columns that are not contact fields in the data inventory: {} (the first line must be a header such as given_name,family_name,email)",
            unknown.join(", ")
        );
    }
    for (i, h) in headers.iter().enumerate() {
        if headers[..i].contains(h) {
            bail!("the CSV header names the column '{h}' more than once");
        }
    }
    let total = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let bar = if progress {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    }
    .with_style(
        ProgressStyle::with_template("{spinner} importing [{bar:30}] {percent}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let ctx = Arc::new(ctx);
    let mut in_flight = InFlight::new();
    let mut reports: Vec<RowReport> = Vec::new();
    let mut record = csv::ByteRecord::new();
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
                        bar.finish_and_clear();
                        let imported = reports.iter().filter(|r| r.error.is_none()).count();
                        bail!(
                            "cannot read {} after line {}: {io} ({imported} contacts were imported before that)",
                            file.display(),
                            line.saturating_sub(1)
                        );
                    }
                    _ => "is not a well-formed CSV record".to_string(),
                };
                reports.push(RowReport {
                    line,
                    error: Some(reason),
                });
                continue;
            }
        }
        let line = record.position().map_or(line, csv::Position::line);
        bar.set_position(record.position().map_or(0, csv::Position::byte));
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
            reports.push(RowReport {
                line,
                error: Some("is not valid UTF-8 text".into()),
            });
            continue;
        }
        if body.keys().all(|k| k == "purposes") {
            reports.push(RowReport {
                line,
                error: Some("has no contact field values".into()),
            });
            continue;
        }
        if !body.contains_key("purposes") && !default_purposes.is_empty() {
            body.insert(
                "purposes".into(),
                Value::Array(default_purposes.iter().map(|p| Value::String(p.clone())).collect()),
            );
        }
        let keys = unique_keys(service, &body);
        if in_flight.holds_any(&keys) {
            // An earlier row with the same unique value is still being
            // written: let it finish first, so the later row is the duplicate.
            while in_flight.join_one(&mut reports).await {}
        }
        while in_flight.tasks.len() >= IMPORT_CONCURRENCY {
            in_flight.join_one(&mut reports).await;
        }
        let service = Arc::clone(service);
        let ctx = Arc::clone(&ctx);
        in_flight.spawn(line, keys, async move {
            let error = service.create_contact(&ctx, body).await.err().map(|e| describe(&e));
            RowReport { line, error }
        });
    }
    while in_flight.join_one(&mut reports).await {}
    bar.finish_and_clear();
    reports.sort_by_key(|r| r.line);
    Ok(reports)
}

pub(crate) fn create_private_file(path: &Path) -> Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let file = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    // The mode above applies only to a new file; an existing one is made private too.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .with_context(|| format!("cannot make {} private (mode 0600)", path.display()))?;
    Ok(file)
}

async fn export(service: &Service, ctx: &RequestContext, format: ExportFormat, output: Option<&Path>) -> Result<()> {
    let purpose = ctx
        .purpose
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the user's role has no purpose for personal data; pass --purpose"))?;
    let fields: Vec<String> = service.inventory().fields_for_purpose(CONTACT, &purpose).to_vec();
    let Some(path) = output else {
        return write_export(
            service,
            ctx,
            &purpose,
            &fields,
            format,
            Box::new(std::io::stdout().lock()),
        )
        .await;
    };
    let file = create_private_file(path)?;
    let result = write_export(service, ctx, &purpose, &fields, format, Box::new(file)).await;
    if result.is_err() {
        // Leave no half-written export of personal data behind.
        let _ = std::fs::remove_file(path);
    }
    result
}

async fn write_export(
    service: &Service,
    ctx: &RequestContext,
    purpose: &str,
    fields: &[String],
    format: ExportFormat,
    sink: Box<dyn Write + '_>,
) -> Result<()> {
    let mut sink = std::io::BufWriter::new(sink);
    let mut csv_writer = None;
    match format {
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let mut header = vec!["id".to_string(), "purposes".to_string()];
            header.extend(fields.iter().cloned());
            w.write_record(&header)?;
            sink.write_all(&w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?;
            csv_writer = Some(header);
        }
        ExportFormat::Json => sink.write_all(b"[")?,
    }
    let mut query = ContactQuery {
        limit: Some(MAX_PAGE),
        ..ContactQuery::default()
    };
    let mut first = true;
    let mut count = 0usize;
    loop {
        let page = service.list_contacts(ctx, &query).await.map_err(service_err)?;
        for c in &page.items {
            count += 1;
            if let Some(header) = &csv_writer {
                let mut w = csv::Writer::from_writer(Vec::new());
                let row: Vec<String> = header
                    .iter()
                    .map(|h| match h.as_str() {
                        "id" => c.id.to_string(),
                        "purposes" => c.purposes.join(";"),
                        f => c.fields.get(f).cloned().unwrap_or_default(),
                    })
                    .collect();
                w.write_record(&row)?;
                sink.write_all(&w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?;
            } else {
                if !first {
                    sink.write_all(b",")?;
                }
                first = false;
                let v = steward_server::views::contact(c);
                sink.write_all(b"\n")?;
                serde_json::to_writer(&mut sink, &v)?;
            }
        }
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => break,
        }
    }
    if matches!(format, ExportFormat::Json) {
        sink.write_all(b"\n]\n")?;
    }
    sink.flush()?;
    eprintln!("Exported {count} contacts for purpose '{purpose}'.");
    Ok(())
}
