//! Command-line interface: global options, subcommands and their dispatch.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use steward_crypto::master::MasterKeySource;
use steward_service::rotation::{rotate_master_key, RotationOptions};
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
    /// Read the master key from this file instead of DATA_DIR/keys/master.key.
    /// (Or give the key itself, 64 hex characters, in STEWARD_MASTER_KEY.)
    #[arg(long, global = true, env = "STEWARD_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
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
    /// SCIM 2.0 provisioning of staff accounts by an identity provider.
    #[command(subcommand)]
    Scim(crate::scim::ScimCommand),
    /// Import and export contacts.
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Manage encryption keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check and export the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Compliance reports derived from the data inventory.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Data-subject requests: what is open, due soon or overdue.
    #[command(subcommand)]
    Dsr(DsrCommand),
    /// The breach register: incidents and their legal clocks.
    #[command(subcommand)]
    Breach(BreachCommand),
    /// Retention schedules: preview what will be deleted, run them now.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// The e-mail outbox (messages to data subjects), for development or a
    /// relay without SMTP.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Show and change settings (MFA and training requirements, session and lockout limits).
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// The Data Rights Protocol: the authorised agents whose requests are accepted.
    #[command(subcommand)]
    Drp(crate::drp::DrpCommand),
    /// Check this installation against named security controls (GDPR Art.
    /// 32(1), ISO/IEC 27001:2022 Annex A): pass/warn/fail, evidence, fix, score.
    Doctor(DoctorArgs),
    /// Measure throughput against baselines taken in the same run.
    Bench(crate::bench::BenchArgs),
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The PEM certificate the server serves (the same as serve's
    /// --tls-cert); without it, TLS counts as off.
    #[arg(long, env = "STEWARD_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when the score is below this (for CI or cron).
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub fail_under: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "STEWARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// PEM certificate chain for HTTPS.
    #[arg(long, env = "STEWARD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[arg(long, env = "STEWARD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Development only: also return double opt-in codes to the caller (they
    /// are always e-mailed through the outbox). Never in production.
    #[arg(long, env = "STEWARD_DEV_RETURN_TOKENS", value_parser = clap::builder::FalseyValueParser::new())]
    pub dev_return_tokens: bool,
    /// Minutes between runs of the retention schedules (0: never).
    #[arg(long, env = "STEWARD_RETENTION_INTERVAL_MINUTES", default_value_t = 60)]
    pub retention_interval_minutes: u64,
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
    /// List users with role, state, second factor and training.
    List,
    /// Disable a user (revokes every token and session).
    Disable { username: String },
    /// Enable a disabled user.
    Enable { username: String },
    /// Change a user's role.
    SetRole { username: String, role: String },
    /// Set a new password (from standard input); signs the user out everywhere.
    ResetPassword {
        username: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Remove a user's second factor so they can enrol again.
    ResetMfa { username: String },
    /// Revoke every token and session of a user.
    RevokeTokens { username: String },
    /// Staff data-protection training records.
    #[command(subcommand)]
    Training(TrainingCommand),
}

#[derive(Debug, Subcommand)]
pub enum TrainingCommand {
    /// Record a completed training.
    Add {
        username: String,
        #[arg(long)]
        course: String,
        /// YYYY-MM-DD
        #[arg(long)]
        completed_on: String,
        /// YYYY-MM-DD
        #[arg(long)]
        expires_on: Option<String>,
    },
    /// List training records (of one user, or all).
    List { username: Option<String> },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    Json,
    Markdown,
    Html,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// The GDPR Art. 30 record of processing activities.
    Art30 {
        #[arg(long, value_enum, default_value = "markdown")]
        format: ReportFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// The compliance report for a period: requests, consent, reads by
    /// purpose and role, breaches, retention, training and the self-audit,
    /// against a signed audit tree head.
    Compliance {
        /// First day (YYYY-MM-DD) or time (RFC 3339); default 30 days ago.
        #[arg(long)]
        from: Option<String>,
        /// Last day (included) or time (excluded); default now.
        #[arg(long)]
        to: Option<String>,
        #[arg(long, value_enum, default_value = "html")]
        format: ComplianceFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ComplianceFormat {
    Html,
    Json,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Print queued messages (decrypted) as JSON lines.
    List {
        /// Only messages not yet sent.
        #[arg(long)]
        unsent: bool,
    },
    /// Mark a message sent.
    MarkSent { id: String },
    /// Deliver every unsent message over SMTP (STEWARD_SMTP_URL, STEWARD_MAIL_FROM).
    Send,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DsrStatus {
    Open,
    DueSoon,
    Overdue,
    All,
}

#[derive(Debug, Subcommand)]
pub enum DsrCommand {
    /// List requests by due date (default: the open ones).
    List {
        #[arg(long, value_enum, default_value = "open")]
        status: DsrStatus,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// What the schedules will delete or put on review in the next N days.
    Preview {
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Carry out what is due now (a bounded batch).
    Run {
        /// Report what would be done and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// At most this many contacts, and this many records of other kinds.
        #[arg(long, default_value_t = steward_service::retention::DEFAULT_BATCH)]
        batch: usize,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// What the retention runs deleted since a date, per rule, and the
    /// counts anonymisation kept.
    Report {
        /// First day reported, YYYY-MM-DD (UTC); default: a year ago.
        #[arg(long)]
        since: Option<chrono::NaiveDate>,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum BreachCommand {
    /// List incidents, newest first, with their legal deadlines.
    List {
        /// Only incidents past an open legal deadline.
        #[arg(long)]
        overdue: bool,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The GDPR Art. 33(3) notification to the supervisory authority.
    Notification {
        /// The incident's id.
        id: String,
        #[arg(long, value_enum, default_value = "markdown")]
        format: ReportFormat,
        /// Write to this file instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Show every setting and its value.
    Show,
    /// Change a setting, e.g. `steward settings set require_mfa false`.
    Set { name: String, value: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AuditFormat {
    /// One canonical entry per line, exactly as stored and hashed.
    Jsonl,
    /// One OCSF API Activity (class 6003) event per line, for a SIEM.
    Ocsf,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every leaf and the Merkle tree, and check every signed tree
    /// head; exit 1 naming the first entry that fails.
    Verify,
    /// Export audit entries as JSON lines.
    Export {
        #[arg(long, value_enum, default_value = "jsonl")]
        format: AuditFormat,
        /// Write to this file (mode 0600) instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Sign a tree head of the log as it is now and print it.
    TreeHead,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Replace the master key: every data key is re-wrapped (data is not
    /// re-encrypted) and the old master key is retired. Stop the server first.
    /// An interrupted rotation leaves everything readable; run it again to finish.
    Rotate {
        /// Keys re-wrapped per transaction.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=100_000), hide = true)]
        batch_size: u32,
        /// Pause between batches, in milliseconds (for testing interruption).
        #[arg(long, hide = true)]
        pause_ms: Option<u64>,
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
        /// Limit the token to one of the user's purposes.
        #[arg(long)]
        purpose: Option<String>,
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

/// How often `serve` signs a tree head of the audit log (when it has grown).
const TREE_HEAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
/// How often `steward serve` verifies the whole audit log.
const WHOLE_LOG_VERIFY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// The environment variable that may carry the master key itself.
pub const MASTER_KEY_ENV: &str = "STEWARD_MASTER_KEY";

pub fn config(cli: &Cli) -> Config {
    let master_key = match (&cli.master_key_file, std::env::var_os(MASTER_KEY_ENV)) {
        (Some(path), _) => Some(MasterKeySource::File(path.clone())),
        (None, Some(_)) => Some(MasterKeySource::Env(MASTER_KEY_ENV.into())),
        (None, None) => None,
    };
    Config {
        data_dir: cli.data_dir.clone(),
        database_url: cli.database_url.clone(),
        master_key,
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
            purpose,
        }) => {
            let service = open(&cli).await?;
            let result = service
                .create_scoped_api_token(username, name.clone(), *expires_in_days, purpose.clone())
                .await;
            service.close().await;
            let token = result.map_err(|e| match e {
                ServiceError::NotFound(_) => anyhow::anyhow!("there is no user named '{username}'"),
                other => service_err(other),
            })?;
            println!("{}", token.as_str());
            Ok(ExitCode::SUCCESS)
        }
        Command::Contact(cmd) => crate::contacts::run(&cli, cmd).await,
        Command::Keys(KeysCommand::Rotate { batch_size, pause_ms }) => {
            let options = RotationOptions {
                batch_size: *batch_size,
                pause: pause_ms.map(std::time::Duration::from_millis),
            };
            let report =
                rotate_master_key(&config(&cli), &options, &|n| eprintln!("re-wrapped {n} subject keys")).await?;
            println!(
                "Rotated the master key {} → {}: {} subject keys re-wrapped{}; the old key is retired.",
                report.old_key_id,
                report.new_key_id,
                report.subject_keys,
                if report.resumed {
                    " (finished an interrupted rotation)"
                } else {
                    ""
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(cmd) => crate::audit::run(&cli, cmd).await,
        Command::Report(ReportCommand::Art30 { format, output }) => {
            // Derived from the inventory alone: no database needed.
            let inventory = steward_domain::Inventory::load_or_default(&config(&cli).inventory_path())?;
            let record = steward_domain::ropa::record_of_processing(&inventory, chrono::Utc::now());
            let text = match format {
                ReportFormat::Json => serde_json::to_string_pretty(&record.to_json())?,
                ReportFormat::Markdown => record.to_markdown(),
                ReportFormat::Html => record.to_html(),
            };
            match output {
                Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?,
                None => println!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(ReportCommand::Compliance {
            from,
            to,
            format,
            output,
        }) => {
            let now = chrono::Utc::now();
            let bound = |name: &str, v: &Option<String>, end: bool, default| match v {
                Some(v) => steward_service::compliance::parse_bound(name, v, end).map_err(service_err),
                None => Ok(default),
            };
            let from = bound("--from", from, false, now - chrono::Duration::days(30))?;
            let to = bound("--to", to, true, now)?;
            let service = open(&cli).await?;
            let report = service.compliance_report(from, to, now).await;
            service.close().await;
            let report = report.map_err(service_err)?;
            let text = match format {
                ComplianceFormat::Html => steward_service::compliance_render::to_html(&report),
                ComplianceFormat::Json => serde_json::to_string_pretty(&report)?,
                ComplianceFormat::Csv => steward_service::compliance_render::to_csv(&report),
            };
            match output {
                Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Outbox(cmd) => {
            let service = open(&cli).await?;
            let result = match cmd {
                OutboxCommand::List { unsent } => service.outbox(*unsent).await.map(|list| {
                    for m in list {
                        let line = serde_json::json!({"id": m.id.to_string(), "kind": m.kind, "created_at": m.created_at,
                            "sent_at": m.sent_at, "to": m.message.to, "subject": m.message.subject, "body": m.message.body});
                        println!("{line}");
                    }
                }),
                OutboxCommand::MarkSent { id } => match id.parse() {
                    Ok(id) => service.mark_sent(id).await,
                    Err(_) => Err(ServiceError::NotFound("unsent message")),
                },
                OutboxCommand::Send => {
                    let relay = match crate::mail::Relay::from_env() {
                        Ok(Some(r)) => r,
                        Ok(None) => {
                            service.close().await;
                            bail!("set {} to the SMTP server, e.g. smtp://localhost:25", crate::mail::SMTP_URL_ENV);
                        }
                        Err(e) => {
                            service.close().await;
                            return Err(e);
                        }
                    };
                    let delivered = relay.deliver(&service).await;
                    service.close().await;
                    let (sent, failed) = delivered?;
                    println!("{sent} message(s) sent, {failed} failed");
                    return Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) });
                }
            };
            service.close().await;
            result.map_err(service_err)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Dsr(DsrCommand::List { status, json }) => {
            let filter = match status {
                DsrStatus::Open => "open",
                DsrStatus::DueSoon => "due_soon",
                DsrStatus::Overdue => "overdue",
                DsrStatus::All => "all",
            };
            let service = open(&cli).await?;
            let result = service.list_dsr(None, Some(filter)).await;
            service.close().await;
            let list = result.map_err(service_err)?;
            for v in &list {
                let d = &v.row;
                if *json {
                    let line = serde_json::json!({"id": d.id.to_string(), "kind": d.kind, "regime": d.regime,
                        "status": d.status, "received_at": d.received_at, "due_at": d.due_at, "deadline": v.deadline});
                    println!("{line}");
                } else {
                    println!(
                        "{}  {:<16} {:<5} {:<12} due {}  {}",
                        d.id,
                        d.kind,
                        d.regime,
                        d.status,
                        d.due_at.format("%Y-%m-%d %H:%M UTC"),
                        v.deadline.unwrap_or("")
                    );
                }
            }
            if !*json {
                eprintln!("{} request(s)", list.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Breach(cmd) => breach(&cli, cmd).await,
        Command::Retention(cmd) => retention(&cli, cmd).await,
        Command::Settings(cmd) => {
            let service = open(&cli).await?;
            let result = match cmd {
                SettingsCommand::Show => service.settings_table().await.map(|rows| {
                    for (name, value, description) in rows {
                        println!("{name:<24} {value:<8} {description}");
                    }
                }),
                SettingsCommand::Set { name, value } => service
                    .set_setting_locally(name, value)
                    .await
                    .map(|v| println!("{name} = {v}")),
            };
            service.close().await;
            result.map_err(service_err)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::User(cmd) => crate::users::run(&cli, cmd).await,
        Command::Scim(cmd) => crate::scim::run(&cli, cmd).await,
        Command::Bench(args) => crate::bench::run(&cli, args).await,
        Command::Doctor(args) => crate::doctor::run(&cli, args).await,
        Command::Drp(cmd) => crate::drp::run(&cli, cmd).await,
    }
}

async fn serve(cli: &Cli, args: &ServeArgs) -> Result<ExitCode> {
    // Certificate problems are reported before anything else happens: no
    // data dir is created and nothing listens.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(steward_server::load_tls_config(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    steward_service::keys::create_private_dir(&cli.data_dir)
        .with_context(|| format!("cannot create the data dir {}", cli.data_dir.display()))?;
    // Held while serving, so that `keys rotate` refuses to run meanwhile.
    let _lock = steward_service::rotation::lock_data_dir(&cli.data_dir, false)?;
    let service = open(cli).await?;
    if tls.is_some() {
        service.set_tls_certificate(args.tls_cert.clone());
    }
    if args.dev_return_tokens {
        service.set_development_tokens(true);
        eprintln!(
            "Warning: --dev-return-tokens is on: double opt-in codes are returned to whoever submits a consent; \
             never use this in production."
        );
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!(
        "Steward is serving on {scheme}://{addr} (database: {})",
        service.backend()
    );
    if service.count_users().await.map_err(service_err)? == 0 {
        let dir = shell_quote(&cli.data_dir.display().to_string());
        // The program as it was invoked (e.g. target/release/steward), so the
        // printed commands work as they stand.
        let program = std::env::args()
            .next()
            .filter(|p| p.contains('/'))
            .map_or_else(|| "steward".to_string(), |p| shell_quote(&p));
        println!("No users yet. Create the first one (in another terminal):");
        println!(
            "  echo 'a-long-password' | {program} --data-dir {dir} user create alice --role sales --password-stdin"
        );
        println!(
            "then open {scheme}://{addr}/ and sign in as alice with that password \
             (a role that sees personal data sets up its authenticator app at the first sign-in)."
        );
        println!("For the API, create a token with:");
        println!("  {program} --data-dir {dir} token create alice");
        println!("and call it with: curl -H \"Authorization: Bearer TOKEN\" {scheme}://{addr}/api/v1/contacts");
    } else {
        println!(
            "Open {scheme}://{addr}/ to sign in to the console; \
             for the API, sign in with POST /api/v1/auth/login or create a token with: steward token create USERNAME"
        );
    }
    println!("The privacy portal for the people whose data is held: {scheme}://{addr}/privacy");
    // Signed tree heads, regularly (and on demand through the API).
    let signer = {
        let service = Arc::clone(&service);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(TREE_HEAD_INTERVAL);
            every.tick().await;
            let mut verified: Option<std::time::Instant> = None;
            loop {
                every.tick().await;
                if let Err(e) = service.sign_tree_head().await {
                    tracing::warn!(error = %e, "could not sign an audit tree head");
                }
                // The whole log, once a day: its signed checkpoint lets the
                // console's self-audit and the compliance report verify
                // only what was appended since.
                if verified.is_none_or(|at| at.elapsed() >= WHOLE_LOG_VERIFY_INTERVAL) {
                    verified = Some(std::time::Instant::now());
                    match service.verify_audit_log().await {
                        Ok(r) => tracing::info!(entries = r.entries, "the whole audit log verified"),
                        Err(e) => {
                            tracing::error!(error = %e, "the audit log does not verify; run steward audit verify")
                        }
                    }
                }
            }
        })
    };
    // The retention schedules, in bounded batches (each contact one atomic
    // write, so a stop in the middle leaves nothing half-deleted).
    let retention = (args.retention_interval_minutes > 0).then(|| {
        let service = Arc::clone(&service);
        let every = std::time::Duration::from_secs(args.retention_interval_minutes.saturating_mul(60));
        tokio::spawn(async move {
            let mut every = tokio::time::interval(every);
            loop {
                every.tick().await;
                match service
                    .retention_run(chrono::Utc::now(), false, steward_service::retention::DEFAULT_BATCH)
                    .await
                {
                    Ok(r) if r.remaining > 0 => every.reset_immediately(),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "a retention run failed"),
                }
            }
        })
    });
    // Queued e-mail to data subjects, when an SMTP relay is configured.
    let relay = crate::mail::Relay::from_env()?.map(|r| r.spawn(Arc::clone(&service)));
    let served = match tls {
        Some(config) => steward_server::serve_tls(listener, Arc::clone(&service), config, shutdown_signal()).await,
        None => steward_server::serve(listener, Arc::clone(&service), shutdown_signal()).await,
    };
    signer.abort();
    if let Some(r) = retention {
        r.abort();
    }
    if let Some(r) = relay {
        r.abort();
    }
    served.context("the server failed")?;
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

async fn breach(cli: &Cli, cmd: &BreachCommand) -> Result<ExitCode> {
    let service = open(cli).await?;
    match cmd {
        BreachCommand::List { overdue, json } => {
            let result = service.incident_register(*overdue).await;
            service.close().await;
            let list = result.map_err(service_err)?;
            for v in &list {
                let regulator = v.clocks.first().map_or("", |c| c.state);
                if *json {
                    println!("{}", serde_json::to_string(v)?);
                } else {
                    println!(
                        "{}  {:<9} {:<8} aware {}  due {}  {:<12} {}{}",
                        v.id,
                        v.status.as_str(),
                        v.regime.as_str(),
                        v.aware_at.format("%Y-%m-%d %H:%M UTC"),
                        v.due_at
                            .map_or_else(|| "-".to_string(), |d| d.format("%Y-%m-%d %H:%M UTC").to_string()),
                        regulator,
                        if v.overdue { "OVERDUE " } else { "" },
                        v.title
                    );
                }
            }
            if !*json {
                eprintln!("{} incident(s)", list.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        BreachCommand::Notification { id, format, output } => {
            let Ok(id) = id.parse::<uuid::Uuid>() else {
                service.close().await;
                bail!("'{id}' is not an incident id");
            };
            let result = service.incident_notification_for_operator(id).await;
            service.close().await;
            let n = result.map_err(service_err)?;
            let text = match format {
                ReportFormat::Markdown => n.to_markdown(),
                ReportFormat::Json => serde_json::to_string_pretty(&n.to_json())?,
                ReportFormat::Html => n.to_html(),
            };
            match output {
                Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?,
                None => println!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The retention clock. Debug (test) builds only: the environment variable
/// `STEWARD_TEST_CLOCK_OFFSET_DAYS` moves it forward, so the crash tests can
/// make records due without waiting; release builds ignore it.
fn retention_now() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    #[cfg(debug_assertions)]
    if let Some(days) = std::env::var("STEWARD_TEST_CLOCK_OFFSET_DAYS")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
    {
        return now + chrono::Duration::days(days);
    }
    now
}

async fn retention(cli: &Cli, cmd: &RetentionCommand) -> Result<ExitCode> {
    let service = open(cli).await?;
    let now = retention_now();
    match cmd {
        RetentionCommand::Preview { days, json } => {
            let result = service.retention_preview(now, *days).await;
            service.close().await;
            let items = result.map_err(service_err)?;
            for c in &items {
                if *json {
                    println!("{}", serde_json::to_string(c)?);
                } else {
                    println!(
                        "{:<14} {:<24} {:<10} {:>8}{}",
                        c.record,
                        c.rule,
                        c.action,
                        c.count,
                        if c.enforced {
                            ""
                        } else {
                            "  (reported, not carried out)"
                        }
                    );
                }
            }
            if !*json {
                let total: u64 = items.iter().map(|c| c.count).sum();
                eprintln!("{total} record(s) due in the next {days} days");
            }
            Ok(ExitCode::SUCCESS)
        }
        RetentionCommand::Run { dry_run, batch, json } => {
            let result = service.retention_run(now, *dry_run, *batch).await;
            service.close().await;
            let r = result.map_err(service_err)?;
            if *json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                let verb = if r.dry_run { "would be" } else { "were" };
                let records: Vec<String> = r.records.iter().map(|(k, n)| format!("{n} {k}")).collect();
                println!(
                    "contacts: {} erased, {} anonymised, {} narrowed {verb}; records: {} {verb} erased or anonymised; {} due for review, {} under a legal hold, {} left for the next run",
                    r.erased,
                    r.anonymised,
                    r.narrowed,
                    if records.is_empty() { "none".to_string() } else { records.join(", ") },
                    r.review,
                    r.held,
                    r.remaining
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        RetentionCommand::Report { since, json } => {
            let since = since.map_or_else(
                || now - chrono::Duration::days(365),
                |d| d.and_time(chrono::NaiveTime::MIN).and_utc(),
            );
            let result = service.retention_history(since).await;
            service.close().await;
            let h = result.map_err(service_err)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&h)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("Retention since {}", since.format("%Y-%m-%d"));
            for r in &h.runs {
                println!(
                    "{}  {:<24} {:<14} {:<10} {:>8}",
                    r.at.format("%Y-%m-%d %H:%M"),
                    r.rule,
                    r.record,
                    r.action,
                    r.count
                );
            }
            println!("Totals");
            for t in &h.totals {
                println!("  {:<24} {:<14} {:<10} {:>8}", t.rule, t.record, t.action, t.count);
            }
            if !h.aggregates.is_empty() {
                println!("Kept by anonymisation (linked to no one)");
                for a in &h.aggregates {
                    println!(
                        "  {:<12} {}  {}={}  {:>8}",
                        a.record, a.period, a.attribute, a.value, a.count
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
