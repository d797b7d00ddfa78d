//! `steward audit verify | export | tree-head`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use base64::Engine;

use crate::cli::{open, service_err, AuditCommand, AuditFormat, Cli};
use crate::contacts::create_private_file;

pub async fn run(cli: &Cli, cmd: &AuditCommand) -> Result<ExitCode> {
    let service = open(cli).await?;
    let result = match cmd {
        AuditCommand::Verify => match service.verify_audit_log().await {
            Ok(report) => {
                println!(
                    "The audit log is intact: {} entries, {} signed tree heads verified.",
                    report.entries, report.heads_checked
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(steward_service::audit::AuditVerifyError::Broken(e)) => {
                eprintln!("audit verify: {e}");
                Ok(ExitCode::from(1))
            }
            Err(e) => Err(anyhow::anyhow!("{e}")),
        },
        AuditCommand::Export { format, output } => export(&service, *format, output.as_deref()).await,
        AuditCommand::TreeHead => {
            let head = service.sign_tree_head().await.map_err(service_err)?;
            let b64 = base64::engine::general_purpose::STANDARD;
            println!(
                "{}",
                serde_json::json!({
                    "tree_size": head.tree_size,
                    "root_hash": b64.encode(head.root),
                    "timestamp_ms": head.timestamp_ms,
                    "signature": b64.encode(&head.signature),
                    "public_key": b64.encode(service.audit_public_key()),
                    "key_id": head.key_id,
                    "signed_bytes": b64.encode(head.signed_bytes()),
                })
            );
            Ok(ExitCode::SUCCESS)
        }
    };
    // Closing signs nothing: `verify` changes nothing it checked.
    service.close().await;
    result
}

async fn export(
    service: &steward_service::Service,
    format: AuditFormat,
    output: Option<&std::path::Path>,
) -> Result<ExitCode> {
    let sink: Box<dyn Write> = match output {
        Some(p) => Box::new(create_private_file(p)?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut sink = std::io::BufWriter::new(sink);
    let mut count = 0u64;
    let mut from = 0u64;
    loop {
        let chunk = service.audit_export_chunk(from, 10_000).await.map_err(service_err)?;
        let Some(last) = chunk.last() else { break };
        from = last.index + 1;
        for e in &chunk {
            match format {
                AuditFormat::Jsonl => sink.write_all(&e.bytes)?,
                AuditFormat::Ocsf => serde_json::to_writer(&mut sink, &steward_audit::to_ocsf(&e.entry))?,
            }
            sink.write_all(b"\n")?;
            count += 1;
        }
    }
    sink.flush().context("cannot write the export")?;
    eprintln!("Exported {count} audit entries.");
    Ok(ExitCode::SUCCESS)
}
