//! `steward scim token create | list | revoke`: the bearer tokens of SCIM
//! provisioning clients (identity providers). A token is printed once and
//! stored as a keyed hash; it can do nothing but SCIM.

use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Subcommand;
use steward_service::ServiceError;

use crate::cli::{open, service_err, Cli};

#[derive(Debug, Subcommand)]
pub enum ScimCommand {
    /// SCIM tokens of provisioning clients.
    #[command(subcommand)]
    Token(ScimTokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum ScimTokenCommand {
    /// Create a SCIM token and print it (shown once; stored hashed).
    Create {
        /// A label for the client (`okta`, `entra`...): lower-case letters,
        /// digits, '.', '_' or '-'.
        #[arg(long)]
        name: String,
        /// The role of an account the client creates without a group, and
        /// of one removed from its group.
        #[arg(long)]
        default_role: String,
    },
    /// List SCIM tokens (never the secrets).
    List,
    /// Revoke a SCIM token, by id, or every active one with this name.
    Revoke { token: String },
}

pub async fn run(cli: &Cli, cmd: &ScimCommand) -> Result<ExitCode> {
    let ScimCommand::Token(cmd) = cmd;
    let service = open(cli).await?;
    let result = async {
        match cmd {
            ScimTokenCommand::Create { name, default_role } => {
                let (_, token) = service
                    .create_scim_token(name, default_role)
                    .await
                    .map_err(service_err)?;
                println!("{}", token.as_str());
            }
            ScimTokenCommand::List => {
                let tokens = service.list_scim_tokens().await.map_err(service_err)?;
                println!(
                    "{:<36} {:<16} {:<12} {:<8} last used",
                    "id", "name", "default role", "state"
                );
                for t in tokens {
                    let state = if t.revoked_at.is_some() { "revoked" } else { "active" };
                    let used = t
                        .last_used_at
                        .map_or_else(|| "never".to_string(), |u| u.format("%Y-%m-%d %H:%M").to_string());
                    println!("{:<36} {:<16} {:<12} {:<8} {used}", t.id, t.name, t.default_role, state);
                }
            }
            ScimTokenCommand::Revoke { token } => {
                let ids: Vec<uuid::Uuid> = match token.parse::<uuid::Uuid>() {
                    Ok(id) => vec![id],
                    Err(_) => service
                        .list_scim_tokens()
                        .await
                        .map_err(service_err)?
                        .into_iter()
                        .filter(|t| t.name == *token && t.revoked_at.is_none())
                        .map(|t| t.id)
                        .collect(),
                };
                if ids.is_empty() {
                    bail!("there is no active SCIM token named '{token}'");
                }
                for id in &ids {
                    service.revoke_scim_token(*id).await.map_err(|e| match e {
                        ServiceError::NotFound(_) => anyhow::anyhow!("there is no SCIM token with id {id}"),
                        other => service_err(other),
                    })?;
                }
                eprintln!(
                    "Revoked {} SCIM token{}.",
                    ids.len(),
                    if ids.len() == 1 { "" } else { "s" }
                );
            }
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    service.close().await;
    result?;
    Ok(ExitCode::SUCCESS)
}
