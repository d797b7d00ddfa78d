//! `steward doctor`: the security self-audit, printed for a person (with
//! colours on a terminal) or as JSON, with an exit code for CI and cron.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use steward_service::doctor::{SecurityReport, Status};

use crate::cli::{open, service_err, Cli, DoctorArgs};

pub async fn run(cli: &Cli, args: &DoctorArgs) -> Result<ExitCode> {
    let service = open(cli).await?;
    let mut install = service.installation();
    install.tls_cert.clone_from(&args.tls_cert);
    let report = service.security_report(&install, chrono::Utc::now()).await;
    service.close().await;
    let report = report.map_err(service_err)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        print!("{}", render(&report, colour));
    }
    Ok(match args.fail_under {
        Some(min) if report.score < min => {
            eprintln!("The score {} is below {min}.", report.score);
            ExitCode::from(1)
        }
        _ => ExitCode::SUCCESS,
    })
}

/// The report as text, one control per paragraph.
#[must_use]
pub fn render(report: &SecurityReport, colour: bool) -> String {
    let paint = |s: Status, text: &str| {
        if !colour {
            return text.to_string();
        }
        let code = match s {
            Status::Pass => "32",
            Status::Warn => "33",
            Status::Fail => "31;1",
        };
        format!("\u{1b}[{code}m{text}\u{1b}[0m")
    };
    let mut out = format!(
        "Steward {} security self-audit, {}: score {}/100 ({} pass, {} warn, {} fail)\n",
        report.version,
        report.generated_at.format("%Y-%m-%d %H:%M UTC"),
        report.score,
        report.passed,
        report.warnings,
        report.failures
    );
    for c in &report.controls {
        let label = match c.status {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        out.push_str(&format!(
            "\n{} {} — {} [GDPR Art. {}; ISO/IEC 27001 {}]\n     {}\n",
            paint(c.status, label),
            c.id,
            c.title,
            c.gdpr.join(", "),
            c.iso27001.join(", "),
            c.evidence
        ));
        if !c.fix.is_empty() {
            out.push_str(&format!("     fix: {}\n", c.fix));
        }
    }
    out
}
