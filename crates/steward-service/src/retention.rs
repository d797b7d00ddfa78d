//! Enforcing the retention schedules on contacts: which contacts' periods
//! have ended (at an explicit instant: time is an input, so tests drive it
//! without sleeping), what happens to each — erased (crypto-shredded, with a
//! proof of erasure where the rule keeps one), anonymised, narrowed to what
//! a longer legal obligation needs, or put on the privacy officer's review
//! list — and carrying it out in bounded batches. Each contact is one atomic
//! write (its deletion, proof and audit entry commit together), so a run cut
//! short leaves nothing half-deleted and the next run picks up the rest.
//! Legal holds block a deletion (checked in the writing transaction).
//!
//! Contact rules and outbox-mail erase rules are enforced so far; rules for
//! other record kinds are declared, validated and reported (`enforced:
//! false` in a preview).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use steward_audit::{Actor, AuditRecord, Outcome};
use steward_domain::retention::{contact_end, rules_in_force, ContactFacts, RetainedRecord, RetentionAction};
use steward_domain::{DealStage, SubjectId};
use steward_store::{ContactRow, StoreError, WriteOp};

use crate::error::{ServiceError, ServiceResult};
use crate::Service;

/// Contacts read per page while planning.
const PAGE: u32 = 500;
/// The longest preview.
pub const MAX_PREVIEW_DAYS: u32 = 3_660;

/// What is due for one contact.
#[derive(Debug, Clone, Serialize)]
pub struct DueContact {
    pub subject_id: SubjectId,
    pub rule: String,
    /// erase, anonymise, review or narrow
    pub action: &'static str,
    pub due_at: DateTime<Utc>,
    /// An erasure keeps a proof of erasure (the rule's `keep_proof`).
    #[serde(skip)]
    pub keep_proof: bool,
}

/// Counts per rule and action.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RuleCount {
    pub record: &'static str,
    pub rule: String,
    pub action: &'static str,
    pub count: u64,
    /// Whether Steward carries out this rule automatically yet.
    pub enforced: bool,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Serialize)]
pub struct RetentionReport {
    pub at: DateTime<Utc>,
    pub dry_run: bool,
    pub erased: u64,
    pub anonymised: u64,
    pub narrowed: u64,
    /// Due for review: listed, nothing deleted.
    pub review: u64,
    /// Blocked by a legal hold.
    pub held: u64,
    /// Left for the next run (the batch was full).
    pub remaining: u64,
    /// Sent outbox mail deleted (outbox_mail rules).
    pub outbox_purged: u64,
    pub by_rule: Vec<RuleCount>,
}

fn action_name(a: RetentionAction) -> &'static str {
    a.as_str()
}

/// An outbox rule that is carried out: sent mail erased.
fn is_outbox_erase(r: &steward_domain::retention::RetentionRule) -> bool {
    r.record == RetainedRecord::OutboxMail && r.action == RetentionAction::Erase
}

fn system_record(action: &str, subject: SubjectId, run: uuid::Uuid, rule: &str, at: DateTime<Utc>) -> AuditRecord {
    let mut r = AuditRecord::new(at, Actor::system(), action, Outcome::Ok);
    r.subject_id = Some(*subject.as_uuid());
    r.record_ids = vec![*subject.as_uuid(), run];
    r.reason = Some(format!("retention rule {rule}"));
    r
}

impl Service {
    async fn contact_facts(&self, row: &ContactRow) -> ServiceResult<ContactFacts> {
        let mut last_interaction: Option<DateTime<Utc>> = None;
        let mut after = None;
        loop {
            let page = self.store.list_interactions(row.subject_id, after, 1_000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for i in &page {
                let t = i.occurred_at.max(i.created_at);
                last_interaction = Some(last_interaction.map_or(t, |l| l.max(t)));
            }
            if page.len() < 1_000 {
                break;
            }
        }
        let deals = self.store.deals_of_subject(row.subject_id).await?;
        let open_deal = deals
            .iter()
            .any(|d| !matches!(d.stage, DealStage::Won | DealStage::Lost));
        let last_deal_closed = deals
            .iter()
            .filter(|d| matches!(d.stage, DealStage::Won | DealStage::Lost))
            .map(|d| d.updated_at)
            .max();
        let mut withdrawn: BTreeMap<String, Option<DateTime<Utc>>> = BTreeMap::new();
        for c in self.store.list_consents(row.subject_id).await? {
            match c.status.as_str() {
                "withdrawn" => {
                    withdrawn.insert(c.purpose, Some(c.recorded_at));
                }
                "granted" => {
                    withdrawn.insert(c.purpose, None);
                }
                _ => {}
            }
        }
        Ok(ContactFacts {
            created: row.created_at,
            updated: row.updated_at,
            last_interaction,
            last_deal_closed,
            open_deal,
            purposes: row.purposes.clone(),
            withdrawn: withdrawn.into_iter().filter_map(|(p, t)| Some((p, t?))).collect(),
        })
    }

    /// The contacts whose retention ends at or before `until`, with the
    /// action due (narrow before erase when a legal obligation runs longer).
    async fn due_contacts(&self, until: DateTime<Utc>) -> ServiceResult<Vec<(DueContact, ContactRow)>> {
        let rules = rules_in_force(&self.inventory);
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = self.store.list_contacts(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.subject_id);
            let full = page.len() == PAGE as usize;
            for row in page {
                let facts = self.contact_facts(&row).await?;
                let Some(end) = contact_end(&self.inventory, &rules, &facts) else {
                    continue;
                };
                let narrow_rule = end.narrow_rule.clone().unwrap_or_else(|| end.rule.clone());
                let due = match end.narrow_at {
                    Some(n) if n <= until && end.at > until => Some((n, "narrow", narrow_rule)),
                    _ if end.at <= until => Some((end.at, action_name(end.action), end.rule.clone())),
                    _ => None,
                };
                if let Some((due_at, action, rule)) = due {
                    out.push((
                        DueContact {
                            subject_id: row.subject_id,
                            rule,
                            action,
                            due_at,
                            keep_proof: end.keep_proof,
                        },
                        row,
                    ));
                }
            }
            if !full {
                break;
            }
        }
        out.sort_by_key(|(d, _)| (d.due_at, *d.subject_id.as_uuid()));
        Ok(out)
    }

    fn counts(due: &[(DueContact, ContactRow)]) -> Vec<RuleCount> {
        let mut by: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
        for (d, _) in due {
            *by.entry((d.rule.clone(), d.action)).or_default() += 1;
        }
        by.into_iter()
            .map(|((rule, action), count)| RuleCount {
                record: RetainedRecord::Contact.as_str(),
                rule,
                action,
                count,
                enforced: true,
            })
            .collect()
    }

    /// What the schedules will delete (or put on review) in the next
    /// `days` days from `at`, by rule; rules for record kinds that are not
    /// enforced yet are listed with no count.
    pub async fn retention_preview(&self, at: DateTime<Utc>, days: u32) -> ServiceResult<Vec<RuleCount>> {
        if days > MAX_PREVIEW_DAYS {
            return Err(ServiceError::invalid(
                "days",
                format!("must be at most {MAX_PREVIEW_DAYS}"),
            ));
        }
        let due = self.due_contacts(at + Duration::days(i64::from(days))).await?;
        let mut counts = Self::counts(&due);
        let until = at + Duration::days(i64::from(days));
        for r in self.outbox_rules() {
            let count = self.sent_mail_before(until - Duration::days(i64::from(r.days))).await?;
            counts.push(RuleCount {
                record: r.record.as_str(),
                rule: r.name.clone(),
                action: action_name(r.action),
                count,
                enforced: true,
            });
        }
        // Every rule in force is listed, with nothing due or not enforced yet.
        for r in rules_in_force(&self.inventory) {
            let enforced = r.record == RetainedRecord::Contact || is_outbox_erase(&r);
            let listed = counts
                .iter()
                .any(|c| c.rule == r.name && c.action == action_name(r.action));
            if !listed {
                counts.push(RuleCount {
                    record: r.record.as_str(),
                    rule: r.name.clone(),
                    action: action_name(r.action),
                    count: 0,
                    enforced,
                });
            }
        }
        Ok(counts)
    }

    /// The contacts due for the privacy officer's review at `at`.
    pub async fn retention_review_list(&self, at: DateTime<Utc>) -> ServiceResult<Vec<DueContact>> {
        Ok(self
            .due_contacts(at)
            .await?
            .into_iter()
            .filter(|(d, _)| d.action == "review")
            .map(|(d, _)| d)
            .collect())
    }

    /// Carries out what is due at `at`, at most `batch` contacts; `dry_run`
    /// changes nothing and reports what would be done.
    pub async fn retention_run(
        &self,
        at: DateTime<Utc>,
        dry_run: bool,
        batch: usize,
    ) -> ServiceResult<RetentionReport> {
        let due = self.due_contacts(at).await?;
        let mut report = RetentionReport {
            at,
            dry_run,
            erased: 0,
            anonymised: 0,
            narrowed: 0,
            review: 0,
            held: 0,
            remaining: 0,
            outbox_purged: 0,
            by_rule: Self::counts(&due),
        };
        self.purge_outbox(at, dry_run, &mut report).await?;
        let run = uuid::Uuid::now_v7();
        let mut done = 0usize;
        for (d, row) in &due {
            if d.action == "review" {
                report.review += 1;
                continue;
            }
            if self.ensure_no_legal_hold(row.subject_id).await.is_err() {
                report.held += 1;
                continue;
            }
            if done >= batch {
                report.remaining += 1;
                continue;
            }
            done += 1;
            if dry_run {
                match d.action {
                    "narrow" => report.narrowed += 1,
                    "anonymise" => report.anonymised += 1,
                    _ => report.erased += 1,
                }
                continue;
            }
            let result = match d.action {
                "narrow" => self.retention_narrow(row, d, run).await.map(|()| &mut report.narrowed),
                "anonymise" => self
                    .retention_delete(row, d, run, at, false, "retention.anonymise")
                    .await
                    .map(|()| &mut report.anonymised),
                _ => self
                    .retention_delete(row, d, run, at, d.keep_proof, "retention.erase")
                    .await
                    .map(|()| &mut report.erased),
            };
            match result {
                Ok(counter) => *counter += 1,
                Err(ServiceError::Conflict(_)) => report.held += 1,
                // Changed or gone meanwhile: the next run sees it afresh.
                Err(ServiceError::NotFound(_)) => report.remaining += 1,
                Err(e) => return Err(e),
            }
        }
        if !dry_run && done > 0 {
            tracing::info!(
                erased = report.erased,
                anonymised = report.anonymised,
                narrowed = report.narrowed,
                "retention run"
            );
        }
        Ok(report)
    }

    async fn retention_delete(
        &self,
        row: &ContactRow,
        d: &DueContact,
        run: uuid::Uuid,
        at: DateTime<Utc>,
        keep_proof: bool,
        action: &str,
    ) -> ServiceResult<()> {
        let mut ops = vec![
            WriteOp::RequireNoLegalHold {
                subject_id: row.subject_id,
            },
            WriteOp::DeleteContact {
                subject_id: row.subject_id,
            },
        ];
        if keep_proof {
            if let Some(email) = self.open_fields_pub(row, &self.key_of(row)?, "email")? {
                ops.push(WriteOp::InsertErasureProof {
                    identifier_hash: self.identifier_hash(&email),
                    request_id: run,
                    at,
                });
            }
        }
        ops.push(WriteOp::AppendAudit(Box::new(system_record(
            action,
            row.subject_id,
            run,
            &d.rule,
            Utc::now(),
        ))));
        match self.store.write(ops).await {
            Err(StoreError::NotFound) => Err(ServiceError::NotFound("contact")),
            Err(StoreError::LegalHold) => Err(ServiceError::Conflict("legal hold".into())),
            other => Ok(other?),
        }
    }

    /// Keeps only what the legal-obligation purposes need (restricted), as
    /// a narrowed erasure does; the rest of the contact's data goes.
    async fn retention_narrow(&self, row: &ContactRow, d: &DueContact, run: uuid::Uuid) -> ServiceResult<()> {
        let legal: Vec<String> = row
            .purposes
            .iter()
            .filter(|p| {
                self.inventory
                    .purpose(p)
                    .is_some_and(|p| p.lawful_basis == steward_domain::LawfulBasis::LegalObligation)
            })
            .cloned()
            .collect();
        let mut audit = system_record("retention.narrow", row.subject_id, run, &d.rule, Utc::now());
        let (mut ops, kept) = self.narrowing_ops(row, &legal)?;
        audit.fields = kept;
        ops.push(WriteOp::AppendAudit(Box::new(audit)));
        match self.store.write(ops).await {
            Err(StoreError::NotFound | StoreError::VersionConflict) => Err(ServiceError::NotFound("contact")),
            Err(StoreError::LegalHold) => Err(ServiceError::Conflict("legal hold".into())),
            other => Ok(other?),
        }
    }
}

impl Service {
    /// The outbox rules carried out: sent mail erased some days after it
    /// was queued.
    fn outbox_rules(&self) -> Vec<steward_domain::retention::RetentionRule> {
        rules_in_force(&self.inventory)
            .into_iter()
            .filter(is_outbox_erase)
            .collect()
    }

    async fn sent_mail_before(&self, before: DateTime<Utc>) -> ServiceResult<u64> {
        Ok(self
            .store
            .list_outbox(false)
            .await?
            .iter()
            .filter(|m| m.sent_at.is_some() && m.created_at < before)
            .count() as u64)
    }

    /// Deletes sent mail past the outbox rules (the shortest period wins:
    /// mail has no purpose of its own once delivered).
    async fn purge_outbox(&self, at: DateTime<Utc>, dry_run: bool, report: &mut RetentionReport) -> ServiceResult<()> {
        let Some(rule) = self.outbox_rules().into_iter().min_by_key(|r| r.days) else {
            return Ok(());
        };
        let before = at - Duration::days(i64::from(rule.days));
        let count = self.sent_mail_before(before).await?;
        report.outbox_purged = count;
        if dry_run || count == 0 {
            return Ok(());
        }
        let mut audit = AuditRecord::new(Utc::now(), Actor::system(), "retention.purge_outbox", Outcome::Ok);
        audit.reason = Some(format!("retention rule {}: {count} sent message(s)", rule.name));
        self.store
            .write(vec![
                WriteOp::PurgeSentOutbox { before },
                WriteOp::AppendAudit(Box::new(audit)),
            ])
            .await?;
        Ok(())
    }
}

/// Contacts handled per run by the scheduler and the API.
pub const DEFAULT_BATCH: usize = 500;

impl Service {
    /// [`Self::retention_preview`] for the privacy officer (compliance).
    pub async fn retention_preview_for(&self, ctx: &crate::RequestContext, days: u32) -> ServiceResult<Vec<RuleCount>> {
        self.guard(ctx, "retention.preview", None, async {
            self.require_privacy_officer(ctx, "retention schedules")?;
            let out = self.retention_preview(Utc::now(), days).await?;
            self.store
                .write(vec![self.audit_ok(ctx, "retention.preview", None, &[], vec![])])
                .await?;
            Ok(out)
        })
        .await
    }

    /// [`Self::retention_run`] now, started by the privacy officer.
    pub async fn retention_run_for(
        &self,
        ctx: &crate::RequestContext,
        dry_run: bool,
    ) -> ServiceResult<RetentionReport> {
        self.guard(ctx, "retention.run", None, async {
            self.require_privacy_officer(ctx, "retention schedules")?;
            let mut audit = self.ok_record(ctx, "retention.run", None, &[], vec![]);
            audit.reason = Some(if dry_run { "dry run" } else { "run" }.into());
            self.store.write(vec![WriteOp::AppendAudit(Box::new(audit))]).await?;
            self.retention_run(Utc::now(), dry_run, DEFAULT_BATCH).await
        })
        .await
    }

    /// [`Self::retention_review_list`] now, for the privacy officer.
    pub async fn retention_review_for(&self, ctx: &crate::RequestContext) -> ServiceResult<Vec<DueContact>> {
        self.guard(ctx, "retention.review", None, async {
            self.require_privacy_officer(ctx, "retention schedules")?;
            let list = self.retention_review_list(Utc::now()).await?;
            let ids: Vec<uuid::Uuid> = list.iter().map(|d| *d.subject_id.as_uuid()).collect();
            self.store
                .write(vec![self.audit_ok(ctx, "retention.review", None, &ids, vec![])])
                .await?;
            Ok(list)
        })
        .await
    }
}
