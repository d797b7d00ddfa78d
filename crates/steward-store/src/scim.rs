//! What SCIM 2.0 provisioning (RFC 7643/7644) stores, on both backends: the
//! identity provider's bearer tokens and, per staff account, what SCIM knows
//! beyond the `users` row.
//!
//! Nothing here is personal data in plaintext: a token is kept as a keyed
//! hash, an account's `externalId` as a keyed hash (for `externalId eq`
//! lookups), and its profile (name, e-mail addresses, display name, the
//! `externalId` itself) as bytes sealed by the service.

use chrono::{DateTime, Utc};
use steward_domain::UserId;

/// A provisioning client's bearer token. It belongs to no staff user and is
/// good for `/scim/v2` only; staff tokens are never good there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimTokenRow {
    pub id: uuid::Uuid,
    /// The operator's label for the client (`okta`, `entra`...).
    pub name: String,
    /// The role of an account this client creates without a group.
    pub default_role: String,
    /// Keyed hash of the secret.
    pub hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// SCIM's view of one staff account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimUserRow {
    pub user_id: UserId,
    /// Keyed hash of the identity provider's `externalId`; unique.
    pub external_id_hash: Option<Vec<u8>>,
    /// The sealed profile (opaque to the store).
    pub profile: Vec<u8>,
    pub updated_at: DateTime<Utc>,
    /// When SCIM deleted the account: from then on SCIM answers 404 for it
    /// (RFC 7644 §3.6) while the account stays, disabled, for the audit log.
    pub deleted_at: Option<DateTime<Utc>>,
}
