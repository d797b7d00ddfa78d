//! Steward's storage: one interface ([`Store`]) and two backends, SQLite
//! (default, embedded, WAL) and PostgreSQL, each with its own embedded,
//! append-only migrations. Both must pass the shared [`conformance`] suite.
//!
//! The store never sees personal data in plaintext: personal field values
//! arrive as opaque bytes produced by the service's field codec
//! ([`SealedFields`]), and search works on opaque blind-index terms
//! ([`IndexTerm`]). Every personal-data table carries the subject id so a
//! distributed engine can shard by subject.
//!
//! Writes are batches of [`WriteOp`]s. Each batch is atomic; backends group
//! concurrent batches into one database transaction (group commit), each
//! batch inside its own savepoint so one failing batch does not affect the
//! others.

pub mod conformance;
pub mod fields;
pub mod postgres;
pub mod retention;
pub mod scim;
pub mod sqlite;
pub mod vault;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use steward_audit::{AuditRecord, Hash, SignedTreeHead};
use steward_domain::{
    Deal, DealId, InteractionId, InteractionKind, Organization, OrganizationId, SubjectId, TokenId, UserId,
};

pub use scim::{ScimTokenRow, ScimUserRow};

/// Personal field values after the codec: field name → opaque bytes.
pub type SealedFields = Vec<(String, Vec<u8>)>;

/// A key as stored: encrypted ("wrapped") under the master key named by
/// `master_key_id`. Opaque to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub master_key_id: String,
    pub version: u32,
    pub wrapped: Vec<u8>,
}

/// A contact as stored: personal fields sealed, policy metadata in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRow {
    pub subject_id: SubjectId,
    /// Collection purposes (identifiers from the inventory; not personal).
    pub purposes: Vec<String>,
    pub fields: SealedFields,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Incremented on every update; used for optimistic concurrency.
    pub version: i64,
    /// The subject's wrapped data key, filled in by reads; `None` once it
    /// has been destroyed. Ignored by writes (see [`WriteOp::InsertSubjectKey`]).
    pub key: Option<StoredKey>,
    /// Processing is restricted (GDPR Art. 18): usable only for compliance.
    /// Stored by [`WriteOp::InsertContact`]; [`WriteOp::UpdateContact`]
    /// leaves it as it is (change it with [`WriteOp::SetRestricted`]).
    pub restricted: bool,
    /// Purposes with a current consent, and when each consent expires
    /// (kept in step with the consent records by the service).
    pub consented: Vec<(String, Option<DateTime<Utc>>)>,
}

/// A published privacy-notice version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRow {
    pub id: uuid::Uuid,
    pub version: String,
    pub language: String,
    pub text: String,
    /// SHA-256 of `text`.
    pub text_hash: Vec<u8>,
    /// A material change: consents given under earlier versions need renewal.
    pub material: bool,
    pub published_at: DateTime<Utc>,
}

/// One consent record (append-only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    pub id: uuid::Uuid,
    pub subject_id: SubjectId,
    pub purpose: String,
    /// `granted`, `withdrawn` or `pending` (double opt-in not yet confirmed).
    pub status: String,
    pub recorded_at: DateTime<Utc>,
    pub source: String,
    pub notice_version: Option<String>,
    pub notice_hash: Option<Vec<u8>>,
    /// Sealed under the subject's key.
    pub evidence: Option<Vec<u8>>,
    /// The staff user who recorded it; `None` when the subject did.
    pub recorded_by: Option<UserId>,
    pub expires_at: Option<DateTime<Utc>>,
    pub confirmation_hash: Option<Vec<u8>>,
    pub confirmation_expires_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
}

/// A legal hold on a subject's data: while active (not released) the data
/// may not be erased or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegalHoldRow {
    pub id: uuid::Uuid,
    pub subject_id: SubjectId,
    pub reason: String,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub released_at: Option<DateTime<Utc>>,
    pub released_by: Option<UserId>,
}

/// An access or portability bundle, sealed under the subject's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportBundleRow {
    pub dsr_id: uuid::Uuid,
    pub subject_id: SubjectId,
    pub sealed: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A queued e-mail, sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: uuid::Uuid,
    pub kind: String,
    pub message: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// A one-time verification link of a data-subject request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsrVerificationRow {
    pub token_hash: Vec<u8>,
    pub dsr_id: uuid::Uuid,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// An authorised agent of the Data Rights Protocol, registered by the
/// privacy officer: the local copy of its service-directory entry. Its
/// requests are accepted only when signed with the key paired with
/// `verify_key`. Nothing personal: an organisation's id, name and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrpAgentRow {
    /// The agent's `agent-id` in the network's directory.
    pub id: String,
    pub name: String,
    /// The Ed25519 public key (32 bytes).
    pub verify_key: Vec<u8>,
    /// The keyed hash of the pair-wise bearer token issued to the agent
    /// (`POST /v1/agent/{id}`), if one was issued; unique.
    pub token_hash: Option<Vec<u8>>,
    pub token_issued_at: Option<DateTime<Utc>>,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
}

/// A data-rights request an agent submitted: which agent manages it and
/// what it asked. The request's id is its DSR's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrpRequestRow {
    pub dsr_id: uuid::Uuid,
    pub agent_id: String,
    /// The DRP action as sent (`access`, `deletion`, `sale:opt_out`, ...).
    pub exercise: String,
    /// The agent's own reference (`agent-request-id`), sealed by the service.
    pub agent_request_id: Option<String>,
    /// The names of the identity claims the agent attested as verified
    /// (`email_verified`, ...): names only, never values.
    pub attested: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A grant made through the public consent endpoint, waiting for the
/// person to confirm it with the one-time code e-mailed to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingConsentRow {
    /// The keyed hash of the one-time code.
    pub token_hash: Vec<u8>,
    pub id: uuid::Uuid,
    /// The request (address, purpose, evidence), sealed by the service.
    pub sealed: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// A personal-data breach incident (GDPR Art. 33(5) register). Everything
/// but the columns needed to list and sort is sealed by the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRow {
    pub id: uuid::Uuid,
    /// open | assessed | contained | notified | closed (checked by the service)
    pub status: String,
    /// When the controller became aware (the legal clocks start here).
    pub aware_at: DateTime<Utc>,
    /// The earliest legal deadline still open, if any (for "overdue" lists).
    pub due_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Title, description, risk assessment ... sealed under an instance key.
    pub sealed: Vec<u8>,
}

/// One append-only entry of an incident: timeline, evidence, scope snapshot,
/// risk assessment, notification or containment action (sealed body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentEntryRow {
    /// A UUIDv7: entries are listed in id order.
    pub id: uuid::Uuid,
    pub incident_id: uuid::Uuid,
    pub kind: String,
    pub at: DateTime<Utc>,
    pub sealed: Vec<u8>,
}

/// A data-subject request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsrRow {
    pub id: uuid::Uuid,
    pub kind: String,
    pub regime: String,
    pub subject_id: Option<SubjectId>,
    /// Keyed hash of the subject's e-mail address, when known.
    pub identifier_hash: Option<Vec<u8>>,
    pub status: String,
    pub received_at: DateTime<Utc>,
    /// The UTC offset (seconds) the request was received in: deadlines run
    /// in calendar months of that local time.
    pub received_offset: i32,
    pub due_at: DateTime<Utc>,
    pub extensions: u32,
    pub extension_reason: Option<String>,
    pub verified_at: Option<DateTime<Utc>>,
    pub verified_by: Option<UserId>,
    pub verification_method: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    /// With a subject: request details sealed under the subject's key
    /// (e.g. rectification changes). Without one: the requester's address,
    /// sealed under an instance key (to notify them).
    pub details: Option<Vec<u8>>,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A consent record without its evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentSummary {
    pub subject_id: SubjectId,
    pub purpose: String,
    pub status: String,
    pub notice_version: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// A blind-index term for a contact (keyed hash; opaque to the store).
/// A `unique` term may belong to at most one contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexTerm {
    pub term: Vec<u8>,
    pub unique: bool,
}

/// An interaction as stored; `summary` is sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InteractionRow {
    pub id: InteractionId,
    pub subject_id: SubjectId,
    pub kind: InteractionKind,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub summary: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: UserId,
    pub username: String,
    pub role: String,
    /// PHC-format Argon2id hash.
    pub password_hash: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    /// Consecutive failed sign-ins since the last success. At most
    /// `i32::MAX` (PostgreSQL `INTEGER`); writes of more are refused
    /// ([`StoreError::Corrupt`]) by both backends.
    pub failed_logins: u32,
    /// Sign-in refused until then (lockout).
    pub locked_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A long-lived API token created by `steward token create`.
    Api,
    /// A session token issued at sign-in.
    Session,
}

impl TokenKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Session => "session",
        }
    }
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "api" => Some(Self::Api),
            "session" => Some(Self::Session),
            _ => None,
        }
    }
}

/// A token as stored: only a keyed hash of the secret, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: TokenId,
    pub user_id: UserId,
    pub kind: TokenKind,
    pub name: Option<String>,
    pub hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Last use (kept to the minute; drives idle expiry of sessions).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When set, the token may be used only for this purpose.
    pub purpose: Option<String>,
    /// A session established with a second factor (API tokens: false).
    pub mfa: bool,
}

/// A second factor of a user (TOTP now; WebAuthn later). `secret` is
/// sealed by the service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialRow {
    pub id: uuid::Uuid,
    pub user_id: UserId,
    pub kind: String,
    pub secret: Vec<u8>,
    pub confirmed: bool,
    /// The last accepted TOTP time step (replay protection). At most
    /// `i64::MAX`; writes of more are refused ([`StoreError::Corrupt`]).
    pub last_step: Option<u64>,
    pub created_at: DateTime<Utc>,
}

/// A staff member's data-protection training.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingRow {
    pub id: uuid::Uuid,
    pub user_id: UserId,
    pub course: String,
    /// YYYY-MM-DD
    pub completed_on: String,
    /// YYYY-MM-DD
    pub expires_on: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// One change; a batch of them commits atomically.
#[derive(Debug, Clone)]
pub enum WriteOp {
    InsertContact {
        row: ContactRow,
        terms: Vec<IndexTerm>,
    },
    /// Replaces the contact's purposes, fields and index terms if its stored
    /// version equals `expected_version`; `row.version` is the new version.
    UpdateContact {
        row: ContactRow,
        expected_version: i64,
        terms: Vec<IndexTerm>,
    },
    /// Fails the batch with [`StoreError::Erased`] if `identifier_hash` has
    /// a proof of erasure (checked by the writer, in the batch's
    /// transaction, so no erasure slips in between).
    RequireNotErased {
        identifier_hash: Vec<u8>,
    },
    /// Fails the batch with [`StoreError::LegalHold`] if the subject has an
    /// active legal hold, checked in the batch's own transaction so that no
    /// hold can be placed between the check and the deletion that follows
    /// (placing a hold and this check serialise on the contact's row).
    RequireNoLegalHold {
        subject_id: SubjectId,
    },
    /// Deletes the subject's interactions and stored export bundles; the
    /// contact itself stays (an erasure narrowed by a legal obligation).
    /// `NotFound` if the contact does not exist.
    DeleteSubjectRecords {
        subject_id: SubjectId,
    },
    /// Deletes the contact, its index terms and its interactions, and unlinks
    /// its deals.
    DeleteContact {
        subject_id: SubjectId,
    },
    InsertOrganization(Organization),
    InsertDeal(Deal),
    InsertInteraction(InteractionRow),
    InsertUser(UserRow),
    InsertToken(TokenRow),
    /// Stores a subject's wrapped data key (the contact must exist).
    InsertSubjectKey {
        subject_id: SubjectId,
        key: StoredKey,
    },
    /// Replaces a subject key wrapped under `from_master` with `key`
    /// (rotation); `VersionConflict` if it is no longer under `from_master`.
    RewrapSubjectKey {
        subject_id: SubjectId,
        from_master: String,
        key: StoredKey,
    },
    /// Destroys a subject's data key: crypto-shredding.
    DestroySubjectKey {
        subject_id: SubjectId,
    },
    /// Inserts or replaces an instance key.
    PutInstanceKey {
        name: String,
        key: StoredKey,
    },
    /// Appends an audit entry: the store assigns the next index and links
    /// the previous entry's leaf hash, inside the batch's transaction, so an
    /// operation and its audit entry commit together or not at all.
    AppendAudit(Box<AuditRecord>),
    /// Stores a signed tree head (idempotent per tree size).
    PutTreeHead(SignedTreeHead),
    /// Revokes a token at `at`; a token already revoked keeps its first
    /// revocation instant. `NotFound` if the token does not exist.
    RevokeToken {
        id: TokenId,
        at: DateTime<Utc>,
    },
    /// Revokes every token (API and session) of a user that is not revoked
    /// yet (the others keep their instant). No tokens is not an error.
    RevokeUserTokens {
        user_id: UserId,
        at: DateTime<Utc>,
    },
    /// Sets a token's last use; an unknown token is not an error.
    TouchToken {
        id: TokenId,
        at: DateTime<Utc>,
    },
    /// Changes what is given; `NotFound` if the user does not exist.
    UpdateUser {
        id: UserId,
        role: Option<String>,
        disabled: Option<bool>,
        password_hash: Option<String>,
    },
    /// Sets both lockout fields; `NotFound` if the user does not exist.
    SetLoginFailures {
        user_id: UserId,
        failed_logins: u32,
        locked_until: Option<DateTime<Utc>>,
    },
    /// Inserts or replaces a credential (by id).
    PutCredential(CredentialRow),
    /// Accepts TOTP step `step` for a credential, confirming it; refused
    /// (`VersionConflict`) unless `step` is later than the last accepted one;
    /// `NotFound` if the credential does not exist.
    AcceptCredentialStep {
        id: uuid::Uuid,
        step: u64,
    },
    /// Deletes a user's credentials and recovery codes.
    DeleteCredentials {
        user_id: UserId,
    },
    /// Replaces all of a user's recovery codes (used or not) with `hashes`
    /// (repeated hashes count once).
    ReplaceRecoveryCodes {
        user_id: UserId,
        hashes: Vec<Vec<u8>>,
    },
    /// Marks an unused recovery code used; `NotFound` if there is none.
    UseRecoveryCode {
        user_id: UserId,
        hash: Vec<u8>,
        at: DateTime<Utc>,
    },
    InsertTraining(TrainingRow),
    /// Stores a new SCIM provisioning token.
    InsertScimToken(ScimTokenRow),
    /// Revokes a SCIM token at `at` (a revoked one keeps its first
    /// instant); `NotFound` if the token does not exist.
    RevokeScimToken {
        id: uuid::Uuid,
        at: DateTime<Utc>,
    },
    /// Sets a SCIM token's last use; an unknown token is not an error.
    TouchScimToken {
        id: uuid::Uuid,
        at: DateTime<Utc>,
    },
    /// Inserts or replaces SCIM's view of an account (by user id);
    /// `Duplicate` if another account has the same `external_id_hash`,
    /// `MissingReference` if the user does not exist.
    PutScimUser(ScimUserRow),
    /// Inserts or replaces an instance setting.
    PutSetting {
        name: String,
        value: String,
    },
    /// Sets a contact's restriction of processing (its version is kept);
    /// `NotFound` if the contact does not exist.
    InsertNotice(NoticeRow),
    InsertConsent(Box<ConsentRow>),
    /// Replaces the contact's denormalised current-consent state.
    SetConsentState {
        subject_id: SubjectId,
        consented: Vec<(String, Option<DateTime<Utc>>)>,
    },
    /// Marks the pending consent with this confirmation hash confirmed;
    /// `NotFound` when there is none (or it was used already).
    UseConsentConfirmation {
        hash: Vec<u8>,
        at: DateTime<Utc>,
    },
    /// Inserts or replaces a data-subject request (by id).
    PutDsr(Box<DsrRow>),
    /// Inserts or replaces a legal hold.
    PutLegalHold(Box<LegalHoldRow>),
    /// Inserts or replaces an outbox message (replacing marks it sent).
    PutOutbox(Box<OutboxRow>),
    /// Marks an unsent outbox message sent; `NotFound` if there is none.
    MarkOutboxSent {
        id: uuid::Uuid,
        at: DateTime<Utc>,
    },
    /// Inserts or replaces an export bundle.
    PutExportBundle(Box<ExportBundleRow>),
    /// Inserts or replaces a verification link (replacing marks it used).
    PutDsrVerification(Box<DsrVerificationRow>),
    PutPendingConsent(Box<PendingConsentRow>),
    /// Inserts or replaces an authorised agent (by id); a token hash taken
    /// by another agent is [`StoreError::Duplicate`].
    PutDrpAgent(Box<DrpAgentRow>),
    /// Deletes an agent; `NotFound` if there is none. Its requests stay.
    DeleteDrpAgent {
        id: String,
    },
    /// Records an agent's request; [`StoreError::Duplicate`] if its id is taken.
    InsertDrpRequest(Box<DrpRequestRow>),
    /// Records that a signed message was accepted, until it expires:
    /// [`StoreError::Duplicate`] if the same digest is already recorded
    /// (a replay), which fails the whole batch.
    InsertDrpNonce {
        digest: Vec<u8>,
        expires_at: DateTime<Utc>,
    },
    /// Forgets accepted-message digests that expired before `before`.
    PurgeDrpNonces {
        before: DateTime<Utc>,
    },
    /// Marks a pending consent used: [`StoreError::NotFound`] unless it
    /// exists, is unused and has not expired at `at` (so a code works once,
    /// even when two confirmations race).
    UsePendingConsent {
        token_hash: Vec<u8>,
        at: DateTime<Utc>,
    },
    /// Deletes outbox messages that were sent and created before `before`
    /// (unsent mail stays until it is delivered).
    PurgeSentOutbox {
        before: DateTime<Utc>,
    },
    /// Deletes pending consents that expired before `before`.
    PurgePendingConsents {
        before: DateTime<Utc>,
    },
    /// Inserts or replaces an incident (by id); its entries stay.
    PutIncident(Box<IncidentRow>),
    /// Appends an entry to an incident: [`StoreError::MissingReference`] if
    /// the incident does not exist, [`StoreError::Duplicate`] if the entry's
    /// id is taken (entries are never replaced).
    AppendIncidentEntry(Box<IncidentEntryRow>),
    /// Records that an identifier was erased (kept once; later erasures of
    /// the same identifier keep the first proof).
    InsertErasureProof {
        identifier_hash: Vec<u8>,
        request_id: uuid::Uuid,
        at: DateTime<Utc>,
    },
    SetRestricted {
        subject_id: SubjectId,
        restricted: bool,
    },
    /// Deletes records of one kind by id (a DSR case with its verification
    /// codes and export bundle, an incident with its entries), skipping
    /// those of a subject under a legal hold; ids that are gone are skipped.
    PurgeRecords {
        kind: retention::PurgeKind,
        ids: Vec<uuid::Uuid>,
    },
    /// Anonymises deals: drops the link to their contact (title, stage,
    /// amount and organisation are not personal and stay), skipping those
    /// of a subject under a legal hold.
    UnlinkDeals {
        ids: Vec<uuid::Uuid>,
    },
    /// Adds to a run's count for one rule (created on first use).
    CountRetention(Box<retention::RetentionLogRow>),
    /// Adds to an anonymised aggregate (created on first use).
    AddAggregate(Box<retention::AggregateRow>),
}

impl WriteOp {
    /// Whether the op changes who may do what — settings, users, their
    /// tokens and second factors, training records — so that every process
    /// holding cached access decisions must drop them (see
    /// [`Store::access_epoch`]).
    #[must_use]
    pub fn changes_access(&self) -> bool {
        matches!(
            self,
            Self::PutSetting { .. }
                | Self::InsertTraining(_)
                | Self::RevokeScimToken { .. }
                | Self::UpdateUser { .. }
                | Self::RevokeToken { .. }
                | Self::RevokeUserTokens { .. }
                | Self::DeleteCredentials { .. }
        )
    }
}

/// An audit entry as stored: its position, canonical bytes and leaf hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAuditEntry {
    pub index: u64,
    pub bytes: Vec<u8>,
    pub leaf_hash: Hash,
}

/// Which audit entries to list (all conditions must hold), in index order.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub subject: Option<SubjectId>,
    /// A user id or a token id.
    pub actor: Option<uuid::Uuid>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Entries after this index (cursor).
    pub after: Option<u64>,
    pub limit: u32,
    /// Only entries whose actor user id is this (the `actor_user` column).
    pub user: Option<uuid::Uuid>,
    /// Only entries whose actor token id (API token or session) is this.
    pub token: Option<uuid::Uuid>,
    /// Only entries with an index below this (a tree size).
    pub before: Option<u64>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The record to update or delete does not exist.
    #[error("record not found")]
    NotFound,
    /// The record changed since it was read (optimistic concurrency).
    #[error("record was modified concurrently")]
    VersionConflict,
    /// A uniqueness rule was violated (duplicate unique index term, username).
    #[error("a unique value is already taken")]
    Duplicate,
    /// A referenced record does not exist.
    #[error("a referenced record does not exist")]
    MissingReference,
    /// The subject's data is under an active legal hold (see
    /// [`WriteOp::RequireNoLegalHold`]).
    #[error("the subject's data is under a legal hold")]
    LegalHold,
    /// The identity was erased at the person's request (see
    /// [`WriteOp::RequireNotErased`]): the erasure request and when.
    #[error("the identity was erased before")]
    Erased { request_id: uuid::Uuid, at: DateTime<Utc> },
    /// The stored data could not be interpreted.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// Anything else from the database (connection, I/O...). Never shown to clients.
    #[error("database error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Page size bounds shared by every list call.
pub const MAX_PAGE: u32 = 1000;

/// The storage interface. Lists are ordered by id (UUIDv7, so by creation
/// time) and paged with `after` = the last id of the previous page.
/// What [`Store::scan_audit`] hands over for one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanRow<'a> {
    /// The entry's facts (`steward_audit::facts`), the copy stored beside it.
    Facts(&'a [u8]),
    /// The entry's bytes, for an entry stored without facts (appended
    /// before migration 15, or one whose facts do not fit).
    Entry(&'a [u8]),
}

/// What [`Store::scan_audit`] calls for each entry: its index and its row;
/// `false` stops the pass.
pub type AuditVisit<'v> = dyn for<'b> FnMut(u64, ScanRow<'b>) -> bool + Send + 'v;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is ("sqlite" or "postgres").
    fn backend(&self) -> &'static str;

    /// Applies `ops` atomically: all or nothing.
    async fn write(&self, ops: Vec<WriteOp>) -> StoreResult<()>;

    /// Records the audit entries of a read. When this returns the entries
    /// survive a crash of the process and are visible to every later audit
    /// query; they may join the Merkle log a moment later (the SQLite
    /// backend spools them and seals them in batches).
    async fn append_read_audit(&self, records: Vec<AuditRecord>) -> StoreResult<()> {
        self.write(append_ops(records)).await
    }

    /// A number that changes whenever a write that
    /// [`changes access`](WriteOp::changes_access) commits, in this process
    /// or in any other using the same database (e.g. `steward settings set`
    /// next to a running server). Cheap enough to call on every request:
    /// caches of tokens, settings and training are valid only while it
    /// stays the same. A backend that cannot tell returns a constant.
    fn access_epoch(&self) -> u64 {
        0
    }

    /// Waits until every read entry recorded so far is in the Merkle log.
    /// The audit read methods below do this themselves.
    async fn flush_audit(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn get_contact(&self, id: SubjectId) -> StoreResult<Option<ContactRow>>;
    async fn list_contacts(&self, after: Option<SubjectId>, limit: u32) -> StoreResult<Vec<ContactRow>>;
    /// Contacts carrying the blind-index `term`.
    async fn find_contacts_by_term(
        &self,
        term: &[u8],
        after: Option<SubjectId>,
        limit: u32,
    ) -> StoreResult<Vec<ContactRow>>;
    async fn count_contacts(&self) -> StoreResult<u64>;

    async fn get_organization(&self, id: OrganizationId) -> StoreResult<Option<Organization>>;
    async fn list_organizations(&self, after: Option<OrganizationId>, limit: u32) -> StoreResult<Vec<Organization>>;

    async fn get_deal(&self, id: DealId) -> StoreResult<Option<Deal>>;
    async fn list_deals(&self, after: Option<DealId>, limit: u32) -> StoreResult<Vec<Deal>>;
    /// Every deal linked to a subject (by index; for access exports).
    async fn deals_of_subject(&self, subject: SubjectId) -> StoreResult<Vec<Deal>>;

    async fn list_interactions(
        &self,
        subject: SubjectId,
        after: Option<InteractionId>,
        limit: u32,
    ) -> StoreResult<Vec<InteractionRow>>;

    async fn get_user(&self, id: UserId) -> StoreResult<Option<UserRow>>;
    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<UserRow>>;
    async fn count_users(&self) -> StoreResult<u64>;
    /// The token with this hash and its user.
    async fn get_token_by_hash(&self, hash: &[u8]) -> StoreResult<Option<(TokenRow, UserRow)>>;

    /// Subject keys wrapped under `master_key_id`, by subject id.
    async fn list_subject_keys(
        &self,
        master_key_id: &str,
        after: Option<SubjectId>,
        limit: u32,
    ) -> StoreResult<Vec<(SubjectId, StoredKey)>>;
    /// How many subject keys are wrapped under another master key than `master_key_id`.
    async fn count_subject_keys_not_under(&self, master_key_id: &str) -> StoreResult<u64>;
    /// All instance keys by name.
    async fn get_instance_keys(&self) -> StoreResult<Vec<(String, StoredKey)>>;

    /// Every user, by username (bytewise, whatever the database collation).
    async fn list_users(&self) -> StoreResult<Vec<UserRow>>;
    /// A user's tokens (revoked and expired ones too), by id.
    async fn list_tokens(&self, user: UserId) -> StoreResult<Vec<TokenRow>>;
    /// A user's credentials, by id.
    async fn get_credentials(&self, user: UserId) -> StoreResult<Vec<CredentialRow>>;
    async fn count_unused_recovery_codes(&self, user: UserId) -> StoreResult<u64>;
    /// Training records, of one user or of all, by id.
    async fn list_training(&self, user: Option<UserId>) -> StoreResult<Vec<TrainingRow>>;

    /// The SCIM token with this hash (revoked or not).
    async fn get_scim_token_by_hash(&self, hash: &[u8]) -> StoreResult<Option<ScimTokenRow>>;
    /// Every SCIM token, revoked ones included, by id.
    async fn list_scim_tokens(&self) -> StoreResult<Vec<ScimTokenRow>>;
    /// SCIM's view of one account, if it has one.
    async fn get_scim_user(&self, user: UserId) -> StoreResult<Option<ScimUserRow>>;
    /// The account whose `externalId` has this keyed hash.
    async fn find_scim_user_by_external_id(&self, hash: &[u8]) -> StoreResult<Option<ScimUserRow>>;
    /// SCIM's view of every account that has one, by user id.
    async fn list_scim_users(&self) -> StoreResult<Vec<ScimUserRow>>;
    /// Every setting as (name, value), by name (bytewise).
    async fn get_settings(&self) -> StoreResult<Vec<(String, String)>>;
    async fn list_notices(&self) -> StoreResult<Vec<NoticeRow>>;
    async fn get_dsr(&self, id: uuid::Uuid) -> StoreResult<Option<DsrRow>>;
    /// Requests, optionally only open ones (not completed or refused), by due date.
    async fn list_dsr(&self, open_only: bool) -> StoreResult<Vec<DsrRow>>;
    /// A subject's legal holds, active and released, oldest first.
    async fn legal_holds(&self, subject: SubjectId) -> StoreResult<Vec<LegalHoldRow>>;
    /// Outbox messages, oldest first, optionally only those not yet sent.
    async fn list_outbox(&self, unsent_only: bool) -> StoreResult<Vec<OutboxRow>>;
    async fn get_export_bundle(&self, dsr_id: uuid::Uuid) -> StoreResult<Option<ExportBundleRow>>;
    async fn get_dsr_verification(&self, token_hash: &[u8]) -> StoreResult<Option<DsrVerificationRow>>;
    async fn get_pending_consent(&self, token_hash: &[u8]) -> StoreResult<Option<PendingConsentRow>>;
    async fn get_drp_agent(&self, id: &str) -> StoreResult<Option<DrpAgentRow>>;
    /// The agent holding the pair-wise token with this keyed hash.
    async fn drp_agent_by_token(&self, token_hash: &[u8]) -> StoreResult<Option<DrpAgentRow>>;
    /// Every agent, by id.
    async fn list_drp_agents(&self) -> StoreResult<Vec<DrpAgentRow>>;
    async fn get_drp_request(&self, dsr_id: uuid::Uuid) -> StoreResult<Option<DrpRequestRow>>;
    async fn get_incident(&self, id: uuid::Uuid) -> StoreResult<Option<IncidentRow>>;
    /// Every incident, newest `created_at` first (ties: higher id first).
    async fn list_incidents(&self) -> StoreResult<Vec<IncidentRow>>;
    /// An incident's entries, by id (so in the order they were appended).
    async fn incident_entries(&self, incident_id: uuid::Uuid) -> StoreResult<Vec<IncidentEntryRow>>;
    /// The proof of an earlier erasure of this identifier: (request, when).
    async fn erasure_proof(&self, identifier_hash: &[u8]) -> StoreResult<Option<(uuid::Uuid, DateTime<Utc>)>>;
    /// A subject's consent records, oldest first.
    async fn list_consents(&self, subject: SubjectId) -> StoreResult<Vec<ConsentRow>>;
    async fn find_consent_by_confirmation(&self, hash: &[u8]) -> StoreResult<Option<ConsentRow>>;
    /// Every consent record without evidence, oldest first (notice renewal).
    async fn consent_summaries(&self) -> StoreResult<Vec<ConsentSummary>>;
    /// The retention facts of up to `limit` contacts after `after`, in
    /// subject-id order (a few range queries per page, not one per contact).
    async fn retention_facts(
        &self,
        after: Option<SubjectId>,
        limit: u32,
    ) -> StoreResult<Vec<retention::RetentionFactsRow>>;
    /// Records whose retention period has ended (see [`retention::candidates_sql`]).
    async fn retention_candidates(
        &self,
        q: &retention::RetentionQuery,
    ) -> StoreResult<Vec<retention::RetentionCandidate>>;
    /// What retention runs deleted since `since`, oldest first.
    async fn retention_log(&self, since: DateTime<Utc>) -> StoreResult<Vec<retention::RetentionLogRow>>;
    /// What anonymisation kept.
    async fn retention_aggregates(&self) -> StoreResult<Vec<retention::AggregateRow>>;

    /// The number of audit entries.
    async fn audit_size(&self) -> StoreResult<u64>;
    /// Entries with index in `from..from+limit`, in order.
    async fn audit_entries(&self, from: u64, limit: u32) -> StoreResult<Vec<StoredAuditEntry>>;
    /// Calls `visit` with the index and the stored facts of each entry in
    /// `from..to` (its bytes where it has none), in order, until it returns
    /// `false`. The bytes are borrowed from the database's row, not copied:
    /// the pass for counting over long ranges (the compliance report). The range is read in pages,
    /// each its own snapshot, so a long pass does not hold one read
    /// transaction throughout.
    async fn scan_audit(&self, from: u64, to: u64, visit: &mut AuditVisit<'_>) -> StoreResult<()>;
    /// Leaf hashes of entries `from..to`, in order.
    async fn audit_leaf_hashes(&self, from: u64, to: u64) -> StoreResult<Vec<Hash>>;
    async fn query_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<StoredAuditEntry>>;
    /// Every stored signed tree head, by tree size.
    async fn tree_heads(&self) -> StoreResult<Vec<SignedTreeHead>>;

    /// Checks the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Finishes queued writes and closes; later calls fail.
    async fn close(&self);
}

/// Opens the backend named by `url`: `sqlite://PATH` or `postgres://…`
/// (also `postgresql://…`). Runs pending migrations. On PostgreSQL the
/// subjects' data keys live in the vault at `key_vault` (see [`vault`]);
/// SQLite keeps them in its own database file.
pub async fn open(url: &str, key_vault: &std::path::Path) -> StoreResult<Arc<dyn Store>> {
    check_url(url)?;
    if let Some(rest) = url.strip_prefix("sqlite://") {
        let (path, durability) = sqlite_durability(rest)?;
        Ok(Arc::new(
            sqlite::SqliteStore::open_with(std::path::Path::new(path), durability).await?,
        ))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url, key_vault).await?))
    } else {
        Err(StoreError::Backend(
            "the database URL must start with sqlite:// or postgres://".into(),
        ))
    }
}

/// The distinct terms of `terms` (a word may occur in several fields); a
/// term is unique if any occurrence is.
#[must_use]
pub fn dedup_terms(terms: &[IndexTerm]) -> Vec<IndexTerm> {
    let mut map: std::collections::BTreeMap<&[u8], bool> = std::collections::BTreeMap::new();
    for t in terms {
        *map.entry(t.term.as_slice()).or_default() |= t.unique;
    }
    map.into_iter()
        .map(|(term, unique)| IndexTerm {
            term: term.to_vec(),
            unique,
        })
        .collect()
}

/// One [`WriteOp::AppendAudit`] per record.
#[must_use]
pub fn append_ops(records: Vec<AuditRecord>) -> Vec<WriteOp> {
    records.into_iter().map(|r| WriteOp::AppendAudit(Box::new(r))).collect()
}

/// Splits `PATH[?synchronous=normal|full]` into the path and the durability:
/// `full` makes every commit survive a power cut (an fsync per group commit).
fn sqlite_durability(rest: &str) -> StoreResult<(&str, sqlite::Durability)> {
    match rest.split_once('?') {
        None => Ok((rest, sqlite::Durability::Normal)),
        Some((path, "synchronous=normal")) => Ok((path, sqlite::Durability::Normal)),
        Some((path, "synchronous=full")) => Ok((path, sqlite::Durability::Full)),
        Some(_) => Err(StoreError::Backend(
            "a sqlite:// URL takes only ?synchronous=normal or ?synchronous=full".into(),
        )),
    }
}

/// Checks that `url` names a supported backend, before anything is created.
pub fn check_url(url: &str) -> StoreResult<()> {
    let sqlite_path = url.strip_prefix("sqlite://").map(sqlite_durability).transpose()?;
    let ok = sqlite_path.is_some_and(|(path, _)| !path.is_empty())
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://");
    if ok {
        Ok(())
    } else {
        Err(StoreError::Backend(
            "the database URL must be sqlite://PATH or postgres://…".into(),
        ))
    }
}

/// Where the next audit entry goes: its index and the previous leaf hash.
/// Backends read it inside the write transaction (so several processes can
/// append) and carry it across the batches of one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditTip {
    pub next: u64,
    pub prev: Hash,
}

impl AuditTip {
    /// Seals `record` at this position and advances the tip.
    pub fn seal(&mut self, record: &AuditRecord) -> (u64, Vec<u8>, Hash) {
        let index = self.next;
        let (bytes, leaf) = steward_audit::seal_entry(index, &self.prev, record);
        self.next += 1;
        self.prev = leaf;
        (index, bytes, leaf)
    }
}

/// Encodes a consent state as stored in `contacts.consented`.
#[must_use]
pub fn encode_consented(consented: &[(String, Option<DateTime<Utc>>)]) -> String {
    consented
        .iter()
        .map(|(p, e)| format!("{p}={}", e.map_or(0, to_micros)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits a comma-separated list of names as stored (empty: none).
#[must_use]
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',').filter(|p| !p.is_empty()).map(str::to_string).collect()
}

/// Decodes `contacts.consented`.
pub fn decode_consented(s: &str) -> StoreResult<Vec<(String, Option<DateTime<Utc>>)>> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (p, e) = pair
                .split_once('=')
                .ok_or_else(|| StoreError::Corrupt("bad consent state".into()))?;
            let e: i64 = e.parse().map_err(|_| StoreError::Corrupt("bad consent state".into()))?;
            Ok((p.to_string(), if e == 0 { None } else { Some(from_micros(e)?) }))
        })
        .collect()
}

/// Microseconds since the Unix epoch: how both backends store instants.
#[must_use]
pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// The inverse of [`to_micros`].
pub fn from_micros(us: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(us).ok_or_else(|| StoreError::Corrupt("timestamp out of range".into()))
}

/// A failed-login count as stored (PostgreSQL `INTEGER`); both backends
/// refuse what PostgreSQL cannot hold.
pub(crate) fn failures_to_db(n: u32) -> StoreResult<i32> {
    i32::try_from(n).map_err(|_| StoreError::Corrupt("failed-login count out of range".into()))
}

/// The inverse of [`failures_to_db`].
pub(crate) fn failures_from_db(n: i64) -> StoreResult<u32> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt("bad failed-login count".into()))
}

/// A TOTP time step as stored (`BIGINT`).
pub(crate) fn step_to_db(step: u64) -> StoreResult<i64> {
    i64::try_from(step).map_err(|_| StoreError::Corrupt("credential step out of range".into()))
}

/// The inverse of [`step_to_db`].
pub(crate) fn step_from_db(step: i64) -> StoreResult<u64> {
    u64::try_from(step).map_err(|_| StoreError::Corrupt("bad credential step".into()))
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn sqlite_urls_take_an_optional_durability() {
        assert!(matches!(
            sqlite_durability("/d/s.db"),
            Ok(("/d/s.db", sqlite::Durability::Normal))
        ));
        assert!(matches!(
            sqlite_durability("/d/s.db?synchronous=full"),
            Ok(("/d/s.db", sqlite::Durability::Full))
        ));
        assert!(matches!(
            sqlite_durability("/d/s.db?synchronous=normal"),
            Ok(("/d/s.db", sqlite::Durability::Normal))
        ));
        assert!(sqlite_durability("/d/s.db?synchronous=off").is_err());
        assert!(check_url("sqlite:///d/s.db?synchronous=full").is_ok());
        assert!(check_url("sqlite://?synchronous=full").is_err());
        assert!(check_url("sqlite:///d/s.db?mode=ro").is_err());
    }
}
