//! `steward drp agent add | list | remove`: the operator approves the
//! authorised agents of the Data Rights Protocol whose signed requests
//! Steward accepts (recorded in the audit log as acts of the system).
//! `steward settings set drp_business_id ID` turns the protocol on.

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use steward_service::ServiceError;

use crate::cli::{open, service_err, Cli};

#[derive(Debug, Subcommand)]
pub enum DrpCommand {
    /// Authorised agents: only registered agents' signatures are accepted.
    #[command(subcommand)]
    Agent(AgentCommand),
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Register an agent from its entry in the DRP service directory.
    Add {
        /// The agent's id in the directory (its `agent-id`).
        #[arg(long)]
        id: String,
        /// The agent's Ed25519 public verify key, base64 (its `verify_key`).
        #[arg(long)]
        verify_key: String,
        /// The consumer-legible name of the agent.
        #[arg(long)]
        name: String,
    },
    /// Show the registered agents.
    List,
    /// Remove an agent: its token stops working at once; its requests stay.
    Remove { id: String },
}

pub async fn run(cli: &Cli, cmd: &DrpCommand) -> Result<ExitCode> {
    let DrpCommand::Agent(cmd) = cmd;
    let service = open(cli).await?;
    let result = match cmd {
        AgentCommand::Add { id, verify_key, name } => service
            .add_drp_agent_as_operator(id, name, verify_key)
            .await
            .map(|a| println!("registered agent {} ({})", a.id, a.name)),
        AgentCommand::List => service.list_drp_agents(None).await.map(|agents| {
            println!("{:<24} {:<8} {:<46} name", "id", "paired", "verify_key");
            for a in agents {
                let paired = if a.paired { "yes" } else { "no" };
                println!("{:<24} {:<8} {:<46} {}", a.id, paired, a.verify_key, a.name);
            }
        }),
        AgentCommand::Remove { id } => service
            .remove_drp_agent(None, id)
            .await
            .map(|()| println!("removed agent {id}")),
    };
    service.close().await;
    result.map_err(|e| match e {
        ServiceError::NotFound(_) => anyhow::anyhow!("no agent with this id is registered"),
        other => service_err(other),
    })?;
    Ok(ExitCode::SUCCESS)
}
