//! The audit trail, seen from the one door: every access to personal data,
//! every change, sign-in and denial becomes an entry in the Merkle log —
//! written in the same transaction as the operation it records (reads: in a
//! group-committed write of their own, before the response). Entries carry
//! ids, field names, purposes and outcomes, never personal values.
//!
//! Also here: signed tree heads, inclusion and consistency proofs, queries
//! over the log, the subject's access log, and whole-log verification.

use std::future::Future;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use steward_audit::{
    consistency_proof, decode_entry, inclusion_proof, verify_signature, Actor, ActorKind, AuditEntry, AuditRecord,
    Checkpoint, Hash, LogVerifier, Outcome, SignedTreeHead, SigningKey, TreeBuilder, VerifyError, VerifyReport,
};
use steward_domain::SubjectId;
use steward_store::{AuditFilter, StoredAuditEntry, WriteOp};
use uuid::Uuid;

use crate::contacts::{page_size, Page};
use crate::context::RequestContext;
use crate::error::{ServiceError, ServiceResult};
use crate::Service;

/// The role action that lets a role read the audit log (dpo, auditor).
pub const AUDIT_READ: &str = "audit.read";

/// Entries read per query while verifying.
const VERIFY_CHUNK: u32 = 20_000;

/// The audit state the service keeps: the signing key and the Merkle
/// frontier of the log as far as it has been read.
pub(crate) struct AuditState {
    pub(crate) signing: SigningKey,
    pub(crate) tree: Mutex<TreeBuilder>,
    /// Whether reads are audited (always, except the benchmark's comparison).
    pub(crate) audit_reads: bool,
}

/// A decoded entry with its position and leaf hash.
#[derive(Debug, Clone)]
pub struct AuditEntryView {
    pub index: u64,
    pub leaf_hash: Hash,
    pub bytes: Vec<u8>,
    pub entry: AuditEntry,
    /// The client address the entry records, opened while its month's key
    /// is kept (`None` once anonymised by a retention rule, or if none).
    pub client_address: Option<String>,
}

/// Filters of `GET /api/v1/audit`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub subject_id: Option<SubjectId>,
    /// A user id, a token id or a username.
    pub actor: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// A signed tree head with what a verifier needs.
#[derive(Debug, Clone)]
pub struct TreeHeadView {
    pub head: SignedTreeHead,
    pub public_key: [u8; 32],
}

/// An inclusion proof for entry `index` in the tree of `tree_size`.
#[derive(Debug, Clone)]
pub struct InclusionProof {
    pub index: u64,
    pub tree_size: u64,
    pub leaf_hash: Hash,
    pub root: Hash,
    pub path: Vec<Hash>,
}

#[derive(Debug, Clone)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    pub first_root: Hash,
    pub second_root: Hash,
    pub path: Vec<Hash>,
}

/// One line of a subject's access log (GDPR Art. 15(1)(c)): who acted on
/// their data, when, how and for what purpose.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct AccessLogItem {
    pub at: DateTime<Utc>,
    pub action: String,
    pub outcome: String,
    pub purpose: Option<String>,
    pub actor_role: Option<String>,
    pub actor_kind: String,
    pub fields: Vec<String>,
}

impl From<AuditRecord> for AccessLogItem {
    fn from(e: AuditRecord) -> Self {
        Self {
            at: e.at,
            action: e.action,
            outcome: e.outcome.as_str().to_string(),
            purpose: e.purpose,
            actor_role: e.actor.role,
            actor_kind: e.actor.kind.as_str().to_string(),
            fields: e.fields,
        }
    }
}

fn actor_of(ctx: &RequestContext) -> Actor {
    let p = &ctx.principal;
    Actor {
        kind: if p.token_id.is_some() {
            ActorKind::Token
        } else {
            ActorKind::User
        },
        user_id: Some(*p.user_id.as_uuid()),
        token_id: p.token_id.map(|t| *t.as_uuid()),
        username: Some(p.username.clone()),
        role: Some(p.role.clone()),
    }
}

impl Service {
    /// A client address as the audit log records it: sealed under the key
    /// of its month (see `steward_crypto::ratchet`), so an `audit_metadata`
    /// retention rule can anonymise it later without changing the log.
    pub(crate) fn audit_client(&self, client: Option<&str>, at: chrono::DateTime<Utc>) -> Option<String> {
        client.and_then(|c| self.crypto.seal_client(at, c))
    }

    /// The address behind a recorded client field, while its month's key
    /// is kept.
    pub(crate) fn open_audit_client(&self, recorded: Option<&str>, at: chrono::DateTime<Utc>) -> Option<String> {
        recorded.and_then(|c| self.crypto.open_client(at, c))
    }

    /// The audit record of an operation made in `ctx` (fields and reason
    /// are filled in by the caller).
    pub(crate) fn audit_record(
        &self,
        ctx: &RequestContext,
        action: &str,
        outcome: Outcome,
        subject: Option<SubjectId>,
        records: &[Uuid],
    ) -> AuditRecord {
        let mut r = AuditRecord::new(Utc::now(), actor_of(ctx), action, outcome);
        r.purpose = ctx.purpose.clone();
        r.subject_id = subject.map(|s| *s.as_uuid());
        r.record_ids = records.to_vec();
        r.request_id = ctx.request_id.clone();
        r.client = self.audit_client(ctx.client.as_deref(), r.at);
        r
    }

    /// A successful operation's entry.
    pub(crate) fn ok_record(
        &self,
        ctx: &RequestContext,
        action: &str,
        subject: Option<SubjectId>,
        records: &[Uuid],
        fields: Vec<String>,
    ) -> AuditRecord {
        let mut r = self.audit_record(ctx, action, Outcome::Ok, subject, records);
        r.fields = fields;
        r
    }

    /// A successful operation's entry, to write with the operation.
    pub(crate) fn audit_ok(
        &self,
        ctx: &RequestContext,
        action: &str,
        subject: Option<SubjectId>,
        records: &[Uuid],
        fields: Vec<String>,
    ) -> WriteOp {
        WriteOp::AppendAudit(Box::new(self.ok_record(ctx, action, subject, records, fields)))
    }

    /// Records the entries of a read before its result is returned: durable
    /// against a crash of the process and visible to every later audit
    /// query, sealed into the log by the store later, in batches (no
    /// fsync, no wait for a commit; see the store's read-audit spool).
    pub(crate) async fn audit_reads(&self, records: Vec<AuditRecord>) -> ServiceResult<()> {
        if records.is_empty() || !self.audit.audit_reads {
            return Ok(());
        }
        Ok(self.store.append_read_audit(records).await?)
    }

    /// Appends an entry with an explicit actor (sign-in attempts).
    pub(crate) async fn audit_actor(
        &self,
        actor: Actor,
        action: &str,
        outcome: Outcome,
        client: Option<String>,
        reason: Option<&str>,
    ) -> ServiceResult<()> {
        let mut r = AuditRecord::new(Utc::now(), actor, action, outcome);
        r.client = self.audit_client(client.as_deref(), r.at);
        r.reason = reason.map(str::to_string);
        Ok(self.store.write(vec![WriteOp::AppendAudit(Box::new(r))]).await?)
    }

    /// Runs a use case; a refusal (403) is recorded as a denied entry
    /// before it is returned.
    pub(crate) async fn guard<T>(
        &self,
        ctx: &RequestContext,
        action: &str,
        subject: Option<SubjectId>,
        f: impl Future<Output = ServiceResult<T>>,
    ) -> ServiceResult<T> {
        let result = f.await;
        if let Err(ServiceError::Forbidden(reason)) = &result {
            let records: Vec<Uuid> = subject.iter().map(|s| *s.as_uuid()).collect();
            let mut record = self.audit_record(ctx, action, Outcome::Denied, subject, &records);
            record.reason = Some(reason.clone());
            let op = WriteOp::AppendAudit(Box::new(record));
            if let Err(e) = self.store.write(vec![op]).await {
                tracing::error!(error = %e, action, "could not record a denial in the audit log");
            }
        }
        result
    }

    /// Whether the caller's role may read the audit log (and with it the
    /// breach register).
    pub(crate) fn may_read_audit(&self, ctx: &RequestContext) -> bool {
        self.inventory
            .role(&ctx.principal.role)
            .is_some_and(|r| r.actions.iter().any(|a| a == AUDIT_READ))
    }

    fn require_audit_reader(&self, ctx: &RequestContext) -> ServiceResult<()> {
        if self.may_read_audit(ctx) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "role '{}' may not read the audit log",
                ctx.principal.role
            )))
        }
    }

    fn view_entry(&self, e: StoredAuditEntry) -> ServiceResult<AuditEntryView> {
        let entry = decode_entry(&e.bytes).map_err(|err| {
            tracing::error!(index = e.index, error = %err, "an audit entry does not decode");
            ServiceError::Internal(format!("audit entry {} does not decode", e.index))
        })?;
        let client_address = self.open_audit_client(entry.record.client.as_deref(), entry.record.at);
        Ok(AuditEntryView {
            index: e.index,
            leaf_hash: e.leaf_hash,
            bytes: e.bytes,
            entry,
            client_address,
        })
    }

    /// Entries matching `query`, oldest first, with a cursor.
    pub async fn audit_query(&self, ctx: &RequestContext, query: &AuditQuery) -> ServiceResult<Page<AuditEntryView>> {
        self.guard(ctx, "audit.query", None, async {
            self.require_audit_reader(ctx)?;
            let limit = page_size(query.limit)?;
            let after = query
                .cursor
                .as_deref()
                .map(|c| {
                    c.parse::<u64>()
                        .map_err(|_| ServiceError::invalid("cursor", "is not a cursor returned by this list"))
                })
                .transpose()?;
            let actor = match query.actor.as_deref() {
                None => None,
                Some(a) => match a.parse::<Uuid>() {
                    Ok(u) => Some(u),
                    Err(_) => match self.store.get_user_by_username(a).await? {
                        Some(u) => Some(*u.id.as_uuid()),
                        None => {
                            return Ok(Page {
                                items: vec![],
                                next_cursor: None,
                            })
                        }
                    },
                },
            };
            let filter = AuditFilter {
                subject: query.subject_id,
                actor,
                from: query.from,
                to: query.to,
                after,
                limit,
                ..AuditFilter::default()
            };
            let rows = self.store.query_audit(&filter).await?;
            let next_cursor = (rows.len() == limit as usize)
                .then(|| rows.last().map(|r| r.index.to_string()))
                .flatten();
            let items = rows
                .into_iter()
                .map(|e| self.view_entry(e))
                .collect::<ServiceResult<_>>()?;
            Ok(Page { items, next_cursor })
        })
        .await
    }

    /// One entry by index.
    pub async fn audit_entry(&self, ctx: &RequestContext, index: u64) -> ServiceResult<AuditEntryView> {
        self.guard(ctx, "audit.entry", None, async {
            self.require_audit_reader(ctx)?;
            let e = self
                .store
                .audit_entries(index, 1)
                .await?
                .into_iter()
                .find(|e| e.index == index);
            self.view_entry(e.ok_or(ServiceError::NotFound("audit entry"))?)
        })
        .await
    }

    /// The current size and Merkle root, extending the cached frontier with
    /// the entries appended since. Whenever the frontier passes the size of
    /// a stored tree head, its root must equal the head's: a log changed
    /// under a signed head is never signed again.
    pub(crate) async fn root_at_current(&self) -> ServiceResult<(u64, Hash)> {
        let size = self.store.audit_size().await?;
        let heads = self.store.tree_heads().await?;
        let lock = || {
            self.audit
                .tree
                .lock()
                .map_err(|_| ServiceError::Internal("audit tree poisoned".into()))
        };
        let mut from = lock()?.size();
        if from == 0 && size > 0 {
            // A new process: start from the last verification's checkpoint
            // (signed by this key, its frontier recomputing its root) rather
            // than from the first leaf.
            let key = self.audit.signing.public_key();
            let seed = self
                .audit_checkpoint()
                .await?
                .filter(|c| c.size <= size && c.key_id == self.audit.signing.key_id() && c.verify(&key))
                .and_then(|c| TreeBuilder::from_frontier(c.size, c.frontier));
            if let Some(seed) = seed {
                let mut tree = lock()?;
                if tree.size() == 0 {
                    *tree = seed;
                }
                from = tree.size();
            }
        }
        while from < size {
            let to = (from + u64::from(VERIFY_CHUNK)).min(size);
            let leaves = self.store.audit_leaf_hashes(from, to).await?;
            if leaves.len() as u64 != to - from {
                return Err(ServiceError::Internal(
                    "the audit log has a gap; run `steward audit verify`".into(),
                ));
            }
            let mut tree = lock()?;
            if tree.size() != from {
                // Another task extended the frontier meanwhile.
                from = tree.size();
                continue;
            }
            for leaf in leaves {
                tree.push(leaf);
                if let Some(head) = heads.iter().find(|h| h.tree_size == tree.size()) {
                    if head.root != tree.root() {
                        *tree = TreeBuilder::new();
                        tracing::error!(
                            tree_size = head.tree_size,
                            "the audit log does not match a signed tree head"
                        );
                        return Err(ServiceError::Internal(format!(
                            "the audit log no longer matches its signed tree head at size {}; run `steward audit verify`",
                            head.tree_size
                        )));
                    }
                }
            }
            from = tree.size();
        }
        let tree = lock()?;
        if tree.size() != size {
            return Err(ServiceError::Internal(
                "the audit log shrank; run `steward audit verify`".into(),
            ));
        }
        Ok((size, tree.root()))
    }

    /// The number of entries in the audit log (every read already answered
    /// included).
    pub async fn audit_size(&self) -> ServiceResult<u64> {
        Ok(self.store.audit_size().await?)
    }

    /// Signs and stores a tree head for the current log if it has grown
    /// since the latest head; returns the latest head either way.
    pub async fn sign_tree_head(&self) -> ServiceResult<SignedTreeHead> {
        let (size, root) = self.root_at_current().await?;
        let heads = self.store.tree_heads().await?;
        if let Some(last) = heads.last() {
            if last.tree_size == size && last.key_id == self.audit.signing.key_id() {
                return Ok(last.clone());
            }
        }
        let head = SignedTreeHead::sign(&self.audit.signing, size, Utc::now().timestamp_millis(), root);
        self.store.write(vec![WriteOp::PutTreeHead(head.clone())]).await?;
        tracing::info!(tree_size = size, "signed an audit tree head");
        Ok(head)
    }

    /// The current signed tree head (signed now if the log has grown).
    pub async fn tree_head(&self, ctx: &RequestContext) -> ServiceResult<TreeHeadView> {
        self.guard(ctx, "audit.tree_head", None, async {
            self.require_audit_reader(ctx)?;
            let head = self.sign_tree_head().await?;
            Ok(TreeHeadView {
                head,
                public_key: self.audit.signing.public_key(),
            })
        })
        .await
    }

    /// The public half of the audit signing key.
    #[must_use]
    pub fn audit_public_key(&self) -> [u8; 32] {
        self.audit.signing.public_key()
    }

    async fn leaves_up_to(&self, size: u64) -> ServiceResult<Vec<Hash>> {
        let current = self.store.audit_size().await?;
        if size > current {
            return Err(ServiceError::invalid(
                "tree_size",
                format!("must be at most the log size, {current}"),
            ));
        }
        let leaves = self.store.audit_leaf_hashes(0, size).await?;
        if leaves.len() as u64 != size {
            return Err(ServiceError::Internal(
                "the audit log has a gap; run `steward audit verify`".into(),
            ));
        }
        Ok(leaves)
    }

    pub async fn inclusion_proof(
        &self,
        ctx: &RequestContext,
        index: u64,
        tree_size: u64,
    ) -> ServiceResult<InclusionProof> {
        self.guard(ctx, "audit.proof", None, async {
            self.require_audit_reader(ctx)?;
            if index >= tree_size {
                return Err(ServiceError::invalid("index", "must be less than tree_size"));
            }
            let leaves = self.leaves_up_to(tree_size).await?;
            let path =
                inclusion_proof(&leaves, index, tree_size).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
            let root = steward_audit::root_from_leaf_hashes(&leaves);
            let leaf_hash = leaves
                .get(usize::try_from(index).unwrap_or(usize::MAX))
                .copied()
                .ok_or(ServiceError::NotFound("audit entry"))?;
            Ok(InclusionProof {
                index,
                tree_size,
                leaf_hash,
                root,
                path,
            })
        })
        .await
    }

    pub async fn consistency_proof(
        &self,
        ctx: &RequestContext,
        first: u64,
        second: u64,
    ) -> ServiceResult<ConsistencyProof> {
        self.guard(ctx, "audit.proof", None, async {
            self.require_audit_reader(ctx)?;
            if first == 0 || first > second {
                return Err(ServiceError::invalid("first", "must be at least 1 and at most second"));
            }
            let leaves = self.leaves_up_to(second).await?;
            let path =
                consistency_proof(&leaves, first, second).map_err(|e| ServiceError::BadRequest(e.to_string()))?;
            let first_root = steward_audit::root_from_leaf_hashes(&leaves[..usize::try_from(first).unwrap_or(0)]);
            let second_root = steward_audit::root_from_leaf_hashes(&leaves);
            Ok(ConsistencyProof {
                first,
                second,
                first_root,
                second_root,
                path,
            })
        })
        .await
    }

    /// Calls `f` with every record matching `filter` (its `after` and
    /// `limit` are the paging's own), oldest first, a page at a time.
    pub(crate) async fn each_audit_record(
        &self,
        mut filter: AuditFilter,
        mut f: impl FnMut(AuditRecord),
    ) -> ServiceResult<()> {
        filter.limit = steward_store::MAX_PAGE;
        filter.after = None;
        loop {
            let rows = self.store.query_audit(&filter).await?;
            let Some(last) = rows.last() else { break };
            filter.after = Some(last.index);
            for row in rows {
                f(self.view_entry(row)?.entry.record);
            }
        }
        Ok(())
    }

    /// Who accessed `subject`'s data, when, how and for what purpose.
    pub async fn subject_access_log(&self, subject: SubjectId) -> ServiceResult<Vec<AccessLogItem>> {
        let mut items = Vec::new();
        let filter = AuditFilter {
            subject: Some(subject),
            ..AuditFilter::default()
        };
        self.each_audit_record(filter, |e| items.push(AccessLogItem::from(e)))
            .await?;
        Ok(items)
    }

    /// Entries `from..from+limit` for export by the operator (CLI).
    pub async fn audit_export_chunk(&self, from: u64, limit: u32) -> ServiceResult<Vec<AuditEntryView>> {
        self.store
            .audit_entries(from, limit)
            .await?
            .into_iter()
            .map(|e| self.view_entry(e))
            .collect()
    }

    /// Recomputes every leaf and the tree from entry 0, and checks every
    /// stored tree head and its signature against the signing key's public
    /// key (`steward audit verify`). Leaves a signed checkpoint for
    /// [`Service::verify_audit_log_resuming`].
    pub async fn verify_audit_log(&self) -> Result<VerifyReport, AuditVerifyError> {
        Ok(self.verify_audit_log_resuming(None).await?.report)
    }

    /// The stored verification checkpoint, if any (not yet checked).
    pub async fn audit_checkpoint(&self) -> Result<Option<Checkpoint>, steward_store::StoreError> {
        Ok(self
            .store
            .get_settings()
            .await?
            .into_iter()
            .find(|(name, _)| name == CHECKPOINT_SETTING)
            .and_then(|(_, value)| serde_json::from_str(&value).ok()))
    }

    /// Verifies the log like [`Service::verify_audit_log`], but when the
    /// whole log verified from entry 0 within `resume_within` (by this or
    /// any process on the same database), resumes from the signed checkpoint
    /// that verification left and checks only the entries appended since,
    /// every head signed since, and that the checkpoint's last entry is
    /// still the one it was. Changes to older entries are left to the next
    /// whole-log verification (`steward audit verify`, `steward doctor`, and
    /// `steward serve` once a day). Stores a new checkpoint either way.
    pub async fn verify_audit_log_resuming(
        &self,
        resume_within: Option<chrono::Duration>,
    ) -> Result<Verification, AuditVerifyError> {
        let heads = self.store.tree_heads().await?;
        let key = self.audit.signing.public_key();
        let now = Utc::now();
        let from_ms = |ms: i64| chrono::DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default();
        let checkpoint = match resume_within {
            Some(within) => self
                .audit_checkpoint()
                .await?
                .filter(|c| c.key_id == self.audit.signing.key_id() && now - from_ms(c.full_at_ms) <= within),
            None => None,
        };
        let (mut verifier, start, full_at) = match &checkpoint {
            Some(cp) => {
                let verifier = LogVerifier::resume(cp, heads, key)?;
                if cp.size > 0 {
                    let last = self.store.audit_entries(cp.size - 1, 1).await?;
                    let same = last
                        .first()
                        .is_some_and(|e| e.index == cp.size - 1 && steward_audit::leaf_hash(&e.bytes) == cp.last_leaf);
                    if !same {
                        return Err(VerifyError::CheckpointMismatch { size: cp.size }.into());
                    }
                }
                (verifier, cp.size, from_ms(cp.full_at_ms))
            }
            None => (LogVerifier::new(heads, key), 0, now),
        };
        // Read the next chunk while this one is checked (on a second core).
        let fetch = |from: u64| {
            let store = Arc::clone(&self.store);
            tokio::spawn(async move { store.audit_entries(from, VERIFY_CHUNK).await })
        };
        let mut pending = fetch(start);
        loop {
            let chunk = pending
                .await
                .map_err(|e| steward_store::StoreError::Backend(e.to_string()))??;
            let Some(last) = chunk.last() else { break };
            pending = fetch(last.index + 1);
            for e in &chunk {
                verifier.push(e.index, &e.bytes, &e.leaf_hash)?;
            }
        }
        let report = verifier.finish()?;
        let cp = Checkpoint::sign(
            &self.audit.signing,
            &report,
            full_at.timestamp_millis(),
            now.timestamp_millis(),
        );
        match serde_json::to_string(&cp) {
            Ok(value) => {
                let op = WriteOp::PutSetting {
                    name: CHECKPOINT_SETTING.into(),
                    value,
                };
                if let Err(e) = self.store.write(vec![op]).await {
                    tracing::warn!(error = %e, "could not store the audit verification checkpoint");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not encode the audit verification checkpoint"),
        }
        Ok(Verification { report, full_at })
    }
}

/// The internal setting that holds the latest verification checkpoint.
const CHECKPOINT_SETTING: &str = "audit.checkpoint";

/// A successful verification and when the whole log last verified from
/// entry 0 (now, unless it resumed from a checkpoint).
#[derive(Debug, Clone)]
pub struct Verification {
    pub report: VerifyReport,
    pub full_at: chrono::DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuditVerifyError {
    #[error(transparent)]
    Broken(#[from] VerifyError),
    #[error("cannot read the audit log: {0}")]
    Store(#[from] steward_store::StoreError),
}

/// Checks a signature over a tree head with a published public key.
#[must_use]
pub fn verify_head(head: &SignedTreeHead, public_key: &[u8; 32]) -> bool {
    verify_signature(public_key, &head.signed_bytes(), &head.signature)
}
