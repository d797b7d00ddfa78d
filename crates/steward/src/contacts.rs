//! `steward contact import` and `steward contact export`: bulk moves of
//! contacts through the service layer, made as a named staff user so the
//! same role, purpose and minimisation rules apply as over HTTP.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};
use steward_domain::inventory::CONTACT;
use steward_service::contacts::{ContactQuery, MAX_PAGE};
use steward_service::{RequestContext, Service, ServiceError};
use tokio::task::JoinSet;

use crate::cli::{open, service_err, Cli, ContactCommand, ExportFormat};

/// Rows in flight at once, so that imports ride group commit.
const IMPORT_CONCURRENCY: usize = 64;

async fn context(service: &Service, user: &str, purpose: Option<&str>) -> Result<RequestContext> {
    let principal = service.local_principal(user).await.map_err(|e| match e {
        ServiceError::NotFound(_) => anyhow::anyhow!("there is no user named '{user}'"),
        other => service_err(other),
    })?;
    service.context(principal, purpose, None).map_err(service_err)
}

pub async fn run(cli: &Cli, cmd: &ContactCommand) -> Result<ExitCode> {
    let service = open(cli).await?;
    let result = match cmd {
        ContactCommand::Import { file, user, purpose, purposes } => {
            let ctx = context(&service, user, purpose.as_deref()).await?;
            import(&service, ctx, file, purposes).await
        }
        ContactCommand::Export { user, purpose, format, output } => {
            let ctx = context(&service, user, purpose.as_deref()).await?;
            export(&service, &ctx, *format, output.as_deref()).await.map(|()| ExitCode::SUCCESS)
        }
    };
    service.close().await;
    result
}

/// One row's outcome, reported by line number and reason (never values).
struct RowReport {
    line: u64,
    error: Option<String>,
}

fn describe(e: &ServiceError) -> String {
    match e {
        ServiceError::Invalid(errors) => errors.iter().map(|e| format!("{} {}", e.field, e.message)).collect::<Vec<_>>().join("; "),
        other => other.to_string(),
    }
}

async fn import(service: &Arc<Service>, ctx: RequestContext, file: &Path, default_purposes: &[String]) -> Result<ExitCode> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .trim(csv::Trim::All)
        .from_path(file)
        .with_context(|| format!("cannot open {}", file.display()))?;
    let headers = reader.byte_headers().context("cannot read the CSV header")?.clone();
    let headers: Vec<String> = headers
        .iter()
        .map(|h| std::str::from_utf8(h).map(|s| s.trim_start_matches('\u{feff}').to_string()))
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("the CSV header is not valid UTF-8"))?;
    let inventory = service.inventory();
    let unknown: Vec<&str> = headers
        .iter()
        .map(String::as_str)
        .filter(|h| *h != "purposes" && inventory.field(CONTACT, h).is_none())
        .collect();
    if !unknown.is_empty() {
        bail!("the CSV header names columns that are not contact fields in the data inventory: {}", unknown.join(", "));
    }
    let total = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("{spinner} importing [{bar:30}] {percent}% {msg}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let ctx = Arc::new(ctx);
    let mut tasks: JoinSet<RowReport> = JoinSet::new();
    let mut reports: Vec<RowReport> = Vec::new();
    let mut record = csv::ByteRecord::new();
    loop {
        let line = reader.position().line() + 1;
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                let reason = match e.kind() {
                    csv::ErrorKind::UnequalLengths { expected_len, len, .. } => format!("has {len} columns, expected {expected_len}"),
                    _ => "is not a well-formed CSV record".to_string(),
                };
                reports.push(RowReport { line, error: Some(reason) });
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
            if value.is_empty() {
                continue;
            }
            if name == "purposes" {
                let list: Vec<Value> = value.split([';', ',']).map(str::trim).filter(|p| !p.is_empty()).map(|p| Value::String(p.into())).collect();
                body.insert(name.clone(), Value::Array(list));
            } else {
                body.insert(name.clone(), Value::String(value.to_string()));
            }
        }
        if bad_encoding {
            reports.push(RowReport { line, error: Some("is not valid UTF-8 text".into()) });
            continue;
        }
        if !body.contains_key("purposes") && !default_purposes.is_empty() {
            body.insert("purposes".into(), Value::Array(default_purposes.iter().map(|p| Value::String(p.clone())).collect()));
        }
        while tasks.len() >= IMPORT_CONCURRENCY {
            if let Some(Ok(r)) = tasks.join_next().await {
                reports.push(r);
            }
        }
        let service = Arc::clone(service);
        let ctx = Arc::clone(&ctx);
        tasks.spawn(async move {
            let error = service.create_contact(&ctx, body).await.err().map(|e| describe(&e));
            RowReport { line, error }
        });
    }
    while let Some(r) = tasks.join_next().await {
        if let Ok(r) = r {
            reports.push(r);
        }
    }
    bar.finish_and_clear();
    reports.sort_by_key(|r| r.line);
    let imported = reports.iter().filter(|r| r.error.is_none()).count();
    let failed: Vec<&RowReport> = reports.iter().filter(|r| r.error.is_some()).collect();
    for r in &failed {
        eprintln!("line {}: {}", r.line, r.error.as_deref().unwrap_or(""));
    }
    println!("Imported {imported} contacts; {} rows refused.", failed.len());
    Ok(if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn create_private_file(path: &Path) -> Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path).with_context(|| format!("cannot create {}", path.display()))
}

async fn export(service: &Service, ctx: &RequestContext, format: ExportFormat, output: Option<&Path>) -> Result<()> {
    let purpose = ctx.purpose.clone().ok_or_else(|| anyhow::anyhow!("the user's role has no purpose for personal data; pass --purpose"))?;
    let fields: Vec<String> = service.inventory().fields_for_purpose(CONTACT, &purpose).to_vec();
    let sink: Box<dyn Write> = match output {
        Some(p) => Box::new(create_private_file(p)?),
        None => Box::new(std::io::stdout().lock()),
    };
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
    let mut query = ContactQuery { limit: Some(MAX_PAGE), ..ContactQuery::default() };
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
