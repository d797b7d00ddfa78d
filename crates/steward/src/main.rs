//! The `steward` binary: a thin CLI over the service layer.
//!
//! Exit codes: 0 success, 1 a check failed or the operation was refused,
//! 2 usage error. Errors are one sentence on stderr, never a backtrace.

mod audit;
mod bench;
mod bench_pages;
mod bench_pg;
mod cli;
mod contacts;
mod doctor;
mod drp;
mod mail;
mod scim;
mod users;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    cli::init_tracing(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", one_sentence(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes as one line.
fn one_sentence(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    let mut line = parts.join(": ");
    if !line.ends_with('.') {
        line.push('.');
    }
    line
}
