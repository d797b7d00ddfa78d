//! `steward contact import` and `steward contact export`: bulk moves of
//! contacts through the service layer, made as a named staff user so the
//! same role, purpose and minimisation rules apply as over HTTP.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use steward_domain::inventory::CONTACT;
use steward_service::contacts::{ContactQuery, MAX_PAGE};
use steward_service::import::RowReport;
use steward_service::{RequestContext, Service, ServiceError};

use crate::cli::{open, service_err, Cli, ContactCommand, ExportFormat};

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
    service
        .check_import_purposes(default_purposes, "--purposes")
        .map_err(service_err)?;
    let input = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let total = input.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if progress {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    }
    .with_style(
        ProgressStyle::with_template("{spinner} importing [{bar:30}] {percent}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let ticker = bar.clone();
    let reports = service
        .import_contacts_csv(
            ctx,
            std::io::BufReader::new(input),
            &file.display().to_string(),
            default_purposes,
            move |p| ticker.set_position(p.bytes),
        )
        .await
        .map_err(service_err);
    bar.finish_and_clear();
    reports
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
