//! Delivery of the outbox over SMTP (lettre): `steward outbox send`, and a
//! background relay in `serve` when `STEWARD_SMTP_URL` is set.
//!
//! `STEWARD_SMTP_URL` follows lettre's URL form: `smtp://host:25` (plain, for
//! a relay on the same host), `smtp://user:pass@host:587?tls=required`
//! (STARTTLS) or `smtps://user:pass@host:465` (implicit TLS).
//! `STEWARD_MAIL_FROM` is the sender address. Logs name message ids only,
//! never addresses.

use std::sync::Arc;

use anyhow::{Context, Result};
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use steward_service::Service;

pub const SMTP_URL_ENV: &str = "STEWARD_SMTP_URL";
pub const MAIL_FROM_ENV: &str = "STEWARD_MAIL_FROM";
/// How often `serve` delivers queued mail.
pub const RELAY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

pub struct Relay {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl Relay {
    /// The relay configured in the environment, if any.
    pub fn from_env() -> Result<Option<Self>> {
        let Ok(url) = std::env::var(SMTP_URL_ENV) else {
            return Ok(None);
        };
        let from = std::env::var(MAIL_FROM_ENV).unwrap_or_else(|_| "steward@localhost".into());
        Self::new(&url, &from).map(Some)
    }

    pub fn new(url: &str, from: &str) -> Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .with_context(|| format!("{SMTP_URL_ENV} is not a valid SMTP URL (smtp://host:port, smtps://…)"))?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        let from = from
            .parse()
            .with_context(|| format!("{MAIL_FROM_ENV} is not an e-mail address"))?;
        Ok(Self { transport, from })
    }

    /// Sends every unsent message; each one sent is marked sent at once.
    /// Returns (sent, failed).
    pub async fn deliver(&self, service: &Service) -> Result<(usize, usize)> {
        let queued = service.outbox(true).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let (mut sent, mut failed) = (0, 0);
        for m in queued {
            let email = match m.message.to.parse::<lettre::message::Mailbox>() {
                Ok(to) => Message::builder()
                    .from(self.from.clone())
                    .to(to)
                    .subject(m.message.subject.clone())
                    .header(ContentType::TEXT_PLAIN)
                    .body(m.message.body.clone()),
                Err(_) => {
                    tracing::warn!(message = %m.id, "queued message has an unusable recipient");
                    failed += 1;
                    continue;
                }
            };
            let email = match email {
                Ok(e) => e,
                Err(_) => {
                    tracing::warn!(message = %m.id, "queued message could not be built");
                    failed += 1;
                    continue;
                }
            };
            match self.transport.send(email).await {
                Ok(_) => {
                    service.mark_sent(m.id).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                    sent += 1;
                }
                Err(e) => {
                    // Only the reply code: a server's reply text may quote the address.
                    let code = e.status().map(|c| c.to_string()).unwrap_or_else(|| "no reply".into());
                    tracing::warn!(message = %m.id, smtp_code = %code, "SMTP delivery failed; will retry");
                    failed += 1;
                }
            }
        }
        Ok((sent, failed))
    }

    /// Delivers queued mail every [`RELAY_INTERVAL`] until aborted.
    pub fn spawn(self, service: Arc<Service>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(RELAY_INTERVAL);
            loop {
                every.tick().await;
                if let Err(e) = self.deliver(&service).await {
                    tracing::warn!(error = %e, "mail relay pass failed");
                }
            }
        })
    }
}
