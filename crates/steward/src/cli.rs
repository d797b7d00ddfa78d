//! Command-line interface: global options, subcommands and their dispatch.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use steward_service::{Config, Service, ServiceError};
use zeroize::Zeroizing;

#[derive(Debug, Parser)]
#[command(
    name = "steward",
    version,
    about = "Steward: a CRM that protects the personal data it holds"
)]
pub struct Cli {
    /// Where Steward keeps its database and key files.
    #[arg(long, global = true, env = "STEWARD_DATA_DIR", default_value = "./steward-data")]
    pub data_dir: PathBuf,
    /// Database URL: sqlite://PATH (default: DATA_DIR/steward.db) or postgres://…
    #[arg(long, global = true, env = "STEWARD_DATABASE_URL")]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the data dir, database schema and keys (changes nothing if they exist).
    Init,
    /// Serve the HTTP API.
    Serve(ServeArgs),
    /// Manage staff users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Import and export contacts.
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Measure throughput against baselines taken in the same run.
    Bench(crate::bench::BenchArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "STEWARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// PEM certificate chain for HTTPS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a staff user; the password is read from standard input.
    Create {
        username: String,
        /// One of the roles in the data inventory: admin, dpo, sales, support, marketing, auditor.
        #[arg(long)]
        role: String,
        /// Read the password from standard input (first line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it (shown once; stored hashed).
    Create {
        username: String,
        /// Days until the token expires (default: never).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in_days: Option<u32>,
        /// A label for the token.
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Import contacts from a CSV file whose header names inventory fields.
    Import {
        file: PathBuf,
        /// The staff user the import is made as (their role and purpose apply).
        #[arg(long = "as", value_name = "USERNAME")]
        user: String,
        /// Purpose of the import (default: the user's role default).
        #[arg(long)]
        purpose: Option<String>,
        /// Collection purposes for rows without a `purposes` column, comma-separated
        /// (default: the import's purpose).
        #[arg(long, value_delimiter = ',')]
        purposes: Vec<String>,
    },
    /// Export the contacts usable for a purpose, with the fields it needs.
    Export {
        /// The staff user the export is made as.
        #[arg(long = "as", value_name = "USERNAME")]
        user: String,
        #[arg(long)]
        purpose: Option<String>,
        #[arg(long, value_enum, default_value = "csv")]
        format: ExportFormat,
        /// Write to this file (created with mode 0600) instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

pub fn init_tracing(cli: &Cli) {
    let default = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("STEWARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour codes only for a terminal: logs redirected to a file or a
    // journal stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        .try_init();
}

fn config(cli: &Cli) -> Config {
    Config {
        data_dir: cli.data_dir.clone(),
        database_url: cli.database_url.clone(),
    }
}

pub async fn open(cli: &Cli) -> Result<Arc<Service>> {
    Ok(Arc::new(Service::open(&config(cli)).await?))
}

/// Turns a service error into a CLI error sentence.
pub fn service_err(e: ServiceError) -> anyhow::Error {
    match e {
        ServiceError::Invalid(errors) => {
            let parts: Vec<_> = errors.iter().map(|e| format!("{} {}", e.field, e.message)).collect();
            anyhow::anyhow!("{}", parts.join("; "))
        }
        other => anyhow::anyhow!("{other}"),
    }
}

/// What `init` may create: the key files present and, for the default
/// SQLite database, whether its file exists. Compared before and after, it
/// tells whether anything was created.
fn state_files(cli: &Cli) -> (Vec<std::ffi::OsString>, bool) {
    let mut keys: Vec<_> = std::fs::read_dir(steward_service::keys::keys_dir(&cli.data_dir))
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.file_name())).collect())
        .unwrap_or_default();
    keys.sort();
    let database = cli.database_url.is_some() || cli.data_dir.join("steward.db").is_file();
    (keys, database)
}

/// `s` quoted for a POSIX shell when it holds anything but plain path characters.
fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Init => {
            let before = state_files(&cli);
            let service = open(&cli).await?;
            service.close().await;
            if !before.0.is_empty() && before == state_files(&cli) {
                println!(
                    "Steward is already initialised in {} (nothing changed).",
                    cli.data_dir.display()
                );
            } else {
                println!(
                    "Initialised Steward in {}: database schema and keys created.",
                    cli.data_dir.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => serve(&cli, args).await,
        Command::User(UserCommand::Create {
            username,
            role,
            password_stdin: _,
        }) => {
            let mut input = Zeroizing::new(String::new());
            std::io::stdin()
                .read_to_string(&mut input)
                .context("cannot read the password from standard input")?;
            let password = Zeroizing::new(input.lines().next().unwrap_or("").to_string());
            if password.is_empty() {
                bail!("no password on standard input");
            }
            let service = open(&cli).await?;
            let result = service.create_user(username, role, password).await;
            service.close().await;
            result.map_err(service_err)?;
            eprintln!("Created user '{username}' with role '{role}'.");
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(TokenCommand::Create {
            username,
            expires_in_days,
            name,
        }) => {
            let service = open(&cli).await?;
            let result = service.create_api_token(username, name.clone(), *expires_in_days).await;
            service.close().await;
            let token = result.map_err(|e| match e {
                ServiceError::NotFound(_) => anyhow::anyhow!("there is no user named '{username}'"),
                other => service_err(other),
            })?;
            println!("{}", token.as_str());
            Ok(ExitCode::SUCCESS)
        }
        Command::Contact(cmd) => crate::contacts::run(&cli, cmd).await,
        Command::Bench(args) => crate::bench::run(&cli, args).await,
    }
}

async fn serve(cli: &Cli, args: &ServeArgs) -> Result<ExitCode> {
    if args.tls_cert.is_some() {
        bail!("HTTPS is not available in this build yet (it arrives with the encryption-in-transit work); serve plain HTTP on loopback behind a TLS proxy meanwhile");
    }
    let service = open(cli).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("Steward is serving on http://{addr} (database: {})", service.backend());
    if service.count_users().await.map_err(service_err)? == 0 {
        let dir = shell_quote(&cli.data_dir.display().to_string());
        // The program as it was invoked (e.g. target/release/steward), so the
        // printed commands work as they stand.
        let program = std::env::args()
            .next()
            .filter(|p| p.contains('/'))
            .map_or_else(|| "steward".to_string(), |p| shell_quote(&p));
        println!("No users yet. Create one and an API token with:");
        println!(
            "  echo 'a-long-password' | {program} --data-dir {dir} user create alice --role sales --password-stdin"
        );
        println!("  {program} --data-dir {dir} token create alice");
        println!("then call the API with: curl -H \"Authorization: Bearer TOKEN\" http://{addr}/api/v1/contacts");
    } else {
        println!("Sign in with POST /api/v1/auth/login, or create an API token with: steward token create USERNAME");
    }
    steward_server::serve(listener, Arc::clone(&service), shutdown_signal())
        .await
        .context("the server failed")?;
    eprintln!("Steward stopped; all acknowledged writes are committed.");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
