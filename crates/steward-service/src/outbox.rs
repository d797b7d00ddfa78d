//! The e-mail outbox: messages to data subjects (one-time verification
//! links of their requests) are queued in the database, sealed under the
//! instance outbox key, so that neither the address nor the text rests in
//! plaintext. A mail relay (or, in development, `steward outbox list`)
//! takes them from here and marks them sent.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use steward_store::{OutboxRow, WriteOp};

use crate::error::{ServiceError, ServiceResult};
use crate::Service;

/// A message as queued.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Message {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// A queued message, opened.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub id: uuid::Uuid,
    pub kind: String,
    pub created_at: chrono::DateTime<Utc>,
    pub sent_at: Option<chrono::DateTime<Utc>>,
    pub message: Message,
}

impl Service {
    /// The write op that queues `message`.
    pub(crate) fn queue_mail(&self, kind: &str, message: &Message) -> ServiceResult<WriteOp> {
        let id = uuid::Uuid::now_v7();
        let plain = serde_json::to_vec(message).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let sealed = self
            .crypto
            .seal_outbox(id.as_bytes(), &plain)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(WriteOp::PutOutbox(Box::new(OutboxRow {
            id,
            kind: kind.into(),
            message: sealed,
            created_at: Utc::now(),
            sent_at: None,
        })))
    }

    /// Queued messages, opened (for the mail relay and the operator's CLI).
    pub async fn outbox(&self, unsent_only: bool) -> ServiceResult<Vec<QueuedMessage>> {
        let rows = self.store.list_outbox(unsent_only).await?;
        rows.into_iter()
            .map(|r| {
                let plain = self
                    .crypto
                    .open_outbox(r.id.as_bytes(), &r.message)
                    .map_err(|_| ServiceError::Internal(format!("outbox message {} could not be decrypted", r.id)))?;
                let message = serde_json::from_slice(&plain).map_err(|e| ServiceError::Internal(e.to_string()))?;
                Ok(QueuedMessage {
                    id: r.id,
                    kind: r.kind,
                    created_at: r.created_at,
                    sent_at: r.sent_at,
                    message,
                })
            })
            .collect()
    }

    /// Marks a queued message sent.
    pub async fn mark_sent(&self, id: uuid::Uuid) -> ServiceResult<()> {
        match self
            .store
            .write(vec![WriteOp::MarkOutboxSent { id, at: Utc::now() }])
            .await
        {
            Err(steward_store::StoreError::NotFound) => Err(ServiceError::NotFound("unsent message")),
            other => Ok(other?),
        }
    }
}
