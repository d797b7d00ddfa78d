//! `steward user list | disable | enable | set-role | reset-password |
//! reset-mfa | revoke-tokens | training`: local administration by the
//! operator (recorded in the audit log as acts of the system).

use std::io::Read;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use steward_service::admin::UserChange;
use steward_service::ServiceError;
use zeroize::Zeroizing;

use crate::cli::{open, service_err, Cli, TrainingCommand, UserCommand};

fn not_found(username: &str) -> impl FnOnce(ServiceError) -> anyhow::Error + '_ {
    move |e| match e {
        ServiceError::NotFound(_) => anyhow::anyhow!("there is no user named '{username}'"),
        other => service_err(other),
    }
}

pub async fn run(cli: &Cli, cmd: &UserCommand) -> Result<ExitCode> {
    let password = if let UserCommand::ResetPassword { .. } = cmd {
        let mut input = Zeroizing::new(String::new());
        std::io::stdin()
            .read_to_string(&mut input)
            .context("cannot read the password from standard input")?;
        let p = Zeroizing::new(input.lines().next().unwrap_or("").to_string());
        if p.is_empty() {
            bail!("no password on standard input");
        }
        Some(p)
    } else {
        None
    };
    let service = open(cli).await?;
    let result = async {
        match cmd {
            UserCommand::Create { .. } => unreachable!("handled by the caller"),
            UserCommand::List => {
                let users = service.list_users(None).await.map_err(service_err)?;
                println!(
                    "{:<24} {:<10} {:<9} {:<4} {:<8} id",
                    "username", "role", "state", "mfa", "training"
                );
                for u in users {
                    let state = if u.disabled {
                        "disabled"
                    } else if u.locked_until.is_some() {
                        "locked"
                    } else {
                        "active"
                    };
                    let mfa = if u.mfa_enabled { "on" } else { "off" };
                    let training = if u.training_current { "current" } else { "missing" };
                    println!(
                        "{:<24} {:<10} {:<9} {:<4} {:<8} {}",
                        u.username, u.role, state, mfa, training, u.id
                    );
                }
            }
            UserCommand::Disable { username } | UserCommand::Enable { username } => {
                let disabled = matches!(cmd, UserCommand::Disable { .. });
                let u = service.user_by_name(username).await.map_err(not_found(username))?;
                service
                    .update_user(
                        None,
                        u.id,
                        UserChange {
                            role: None,
                            disabled: Some(disabled),
                        },
                    )
                    .await
                    .map_err(service_err)?;
                println!("{} user '{username}'.", if disabled { "Disabled" } else { "Enabled" });
            }
            UserCommand::SetRole { username, role } => {
                let u = service.user_by_name(username).await.map_err(not_found(username))?;
                service
                    .update_user(
                        None,
                        u.id,
                        UserChange {
                            role: Some(role.clone()),
                            disabled: None,
                        },
                    )
                    .await
                    .map_err(service_err)?;
                println!("User '{username}' now has role '{role}'.");
            }
            UserCommand::ResetPassword { username, .. } => {
                let u = service.user_by_name(username).await.map_err(not_found(username))?;
                let p = password.clone().unwrap_or_default();
                service.reset_password(None, u.id, p).await.map_err(service_err)?;
                println!("Set a new password for '{username}' and signed them out everywhere.");
            }
            UserCommand::ResetMfa { username } => {
                let u = service.user_by_name(username).await.map_err(not_found(username))?;
                service.reset_mfa(None, u.id).await.map_err(service_err)?;
                println!("Removed the second factor of '{username}'; they can enrol again.");
            }
            UserCommand::RevokeTokens { username } => {
                let u = service.user_by_name(username).await.map_err(not_found(username))?;
                service.revoke_user_tokens(None, u.id).await.map_err(service_err)?;
                println!("Revoked every token and session of '{username}'.");
            }
            UserCommand::Training(TrainingCommand::Add {
                username,
                course,
                completed_on,
                expires_on,
            }) => {
                let u = service.user_by_name(username).await.map_err(not_found(username))?;
                service
                    .add_training(None, u.id, course, completed_on, expires_on.as_deref())
                    .await
                    .map_err(service_err)?;
                println!("Recorded training '{}' for '{username}'.", course.trim());
            }
            UserCommand::Training(TrainingCommand::List { username }) => {
                let user = match username {
                    Some(name) => Some(service.user_by_name(name).await.map_err(not_found(name))?.id),
                    None => None,
                };
                for t in service.list_training(None, user).await.map_err(service_err)? {
                    println!(
                        "{} {} {} {}",
                        t.user_id,
                        t.completed_on,
                        t.expires_on.as_deref().unwrap_or("-"),
                        t.course
                    );
                }
            }
        }
        Ok::<(), anyhow::Error>(())
    }
    .await;
    service.close().await;
    result.map(|()| ExitCode::SUCCESS)
}
