//! Enforcing the retention schedules (at an explicit instant: time is an
//! input, so tests drive it without sleeping). Contacts: whose periods
//! have ended over all their purposes, and what happens to each — erased
//! (crypto-shredded, with a proof of erasure where the rule keeps one),
//! anonymised (deleted; its country counted in an aggregate linked to no
//! one), narrowed to what a longer legal obligation needs, or put on the
//! privacy officer's review list. Other records — interactions, deals,
//! consent records, closed requests, export bundles, closed incidents,
//! sent mail — by their own rules: erased, anonymised (a deal loses its
//! contact link; an interaction is counted by kind and month, then
//! deleted) or listed for review.
//!
//! Planning reads facts, not fields: a few range queries per page of
//! contacts ([`steward_store::Store::retention_facts`]) and candidate
//! queries per rule, so a run over a million contacts does not make a
//! round trip per contact. Each write is atomic with its audit entry and
//! its count in the retention log (a chunk of contacts, or a chunk of
//! records of one rule), so a run cut short leaves nothing half-deleted and
//! counts what it did; the next run picks up the rest. Legal holds block a
//! deletion (checked again in the writing transaction).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use steward_audit::{Actor, AuditRecord, Outcome};
use steward_domain::inventory::{FieldKind, CONTACT};
use steward_domain::retention::{
    contact_end, rules_in_force, ContactFacts, RetainedRecord, RetentionAction, RetentionRule,
};
use steward_domain::SubjectId;
use steward_store::retention::{
    period_of, AggregateRow, PurgeKind, RetentionCandidate, RetentionFactsRow, RetentionLogRow, RetentionQuery,
};
use steward_store::{StoreError, WriteOp};

use crate::error::{ServiceError, ServiceResult};
use crate::Service;

/// Contacts read per page while planning.
const PAGE: u32 = 1_000;
/// Contacts deleted in one transaction (each with its own proof and audit
/// entry; a chunk that fails is retried one contact at a time).
const CHUNK: usize = 64;
/// Records of other kinds deleted in one transaction.
const RECORD_CHUNK: u32 = 500;
/// The longest preview.
pub const MAX_PREVIEW_DAYS: u32 = 3_660;

/// A record due under a rule.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DueRecord {
    /// contact, interaction, deal, consent_record, dsr_case, export_bundle, incident
    pub record: &'static str,
    pub id: uuid::Uuid,
    /// The data subject, when the record has one.
    #[schemars(with = "Option<uuid::Uuid>")]
    pub subject_id: Option<SubjectId>,
    pub rule: String,
    /// erase, anonymise, review or narrow
    pub action: &'static str,
    pub due_at: DateTime<Utc>,
    /// An erasure keeps a proof of erasure (the rule's `keep_proof`).
    #[serde(skip)]
    pub keep_proof: bool,
}

/// Counts per rule and action.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct RuleCount {
    pub record: &'static str,
    pub rule: String,
    pub action: &'static str,
    pub count: u64,
    /// Whether Steward carries out this rule automatically (every rule is;
    /// kept for clients of the first version).
    pub enforced: bool,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RetentionReport {
    pub at: DateTime<Utc>,
    pub dry_run: bool,
    /// The run's id, cited by its audit entries and its retention-log rows.
    pub run_id: uuid::Uuid,
    /// Contacts.
    pub erased: u64,
    pub anonymised: u64,
    pub narrowed: u64,
    /// Due for review: listed, nothing deleted (contacts and records).
    pub review: u64,
    /// Blocked by a legal hold.
    pub held: u64,
    /// Left for the next run (the batch was full).
    pub remaining: u64,
    /// Sent outbox mail deleted (outbox_mail rules).
    pub outbox_purged: u64,
    /// Contacts whose consent state the re-consent campaign of a material
    /// privacy notice brought up to date (grants ending at its deadline).
    pub renewals_applied: u64,
    /// Records of other kinds erased or anonymised, by kind.
    pub records: BTreeMap<&'static str, u64>,
    /// Per rule: what was done (contacts: what was due).
    pub by_rule: Vec<RuleCount>,
}

/// Per rule, what the retention runs did since a date, and what
/// anonymisation kept.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RetentionHistory {
    pub since: DateTime<Utc>,
    /// One row per run, rule, record kind and action, oldest first.
    pub runs: Vec<RetentionLogView>,
    /// Totals per rule, record kind and action over the period.
    pub totals: Vec<RuleCount>,
    /// Counts kept by anonymisation (linked to no one).
    pub aggregates: Vec<AggregateView>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RetentionLogView {
    pub run_id: uuid::Uuid,
    pub at: DateTime<Utc>,
    pub rule: String,
    pub record: String,
    pub action: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AggregateView {
    pub record: String,
    pub period: String,
    pub attribute: String,
    pub value: String,
    pub count: u64,
}

fn action_name(a: RetentionAction) -> &'static str {
    a.as_str()
}

/// An outbox rule that is carried out: sent mail erased.
fn is_outbox_erase(r: &RetentionRule) -> bool {
    r.record == RetainedRecord::OutboxMail && r.action == RetentionAction::Erase
}

/// The store's kind for a rule's record, for kinds deleted by id.
fn purge_kind(r: RetainedRecord) -> Option<PurgeKind> {
    Some(match r {
        RetainedRecord::Interaction => PurgeKind::Interaction,
        RetainedRecord::Deal => PurgeKind::Deal,
        RetainedRecord::ConsentRecord => PurgeKind::ConsentRecord,
        RetainedRecord::DsrCase => PurgeKind::DsrCase,
        RetainedRecord::ExportBundle => PurgeKind::ExportBundle,
        RetainedRecord::Incident => PurgeKind::Incident,
        RetainedRecord::Contact | RetainedRecord::OutboxMail | RetainedRecord::AuditMetadata => return None,
    })
}

fn system_record(action: &str, subject: Option<SubjectId>, run: uuid::Uuid, rule: &str) -> AuditRecord {
    let mut r = AuditRecord::new(Utc::now(), Actor::system(), action, Outcome::Ok);
    r.subject_id = subject.map(|s| *s.as_uuid());
    r.record_ids = subject.map(|s| *s.as_uuid()).into_iter().chain([run]).collect();
    r.reason = Some(format!("retention rule {rule}"));
    r
}

fn count_op(run: uuid::Uuid, at: DateTime<Utc>, rule: &str, record: &str, action: &str, count: u64) -> WriteOp {
    WriteOp::CountRetention(Box::new(RetentionLogRow {
        run_id: run,
        rule: rule.to_string(),
        record: record.to_string(),
        action: action.to_string(),
        at,
        count,
    }))
}

fn facts_of(row: &RetentionFactsRow) -> ContactFacts {
    ContactFacts {
        created: row.created_at,
        updated: row.updated_at,
        last_interaction: row.last_interaction,
        last_deal_closed: row.last_deal_closed,
        open_deal: row.open_deal,
        purposes: row.purposes.clone(),
        withdrawn: row
            .latest_consents
            .iter()
            .filter(|(_, status, _)| status == "withdrawn")
            .map(|(p, _, t)| (p.clone(), *t))
            .collect(),
    }
}

/// The contacts due, and how many of those are held.
struct ContactPlan {
    due: Vec<DueRecord>,
    held: Vec<bool>,
}

impl Service {
    /// The contacts whose retention ends at or before `until`, with the
    /// action due (narrow before erase when a legal obligation runs longer).
    async fn due_contacts(&self, until: DateTime<Utc>) -> ServiceResult<ContactPlan> {
        let rules = rules_in_force(&self.inventory);
        let mut plan = ContactPlan {
            due: Vec::new(),
            held: Vec::new(),
        };
        if !rules.iter().any(|r| r.record == RetainedRecord::Contact) {
            return Ok(plan);
        }
        let mut after = None;
        loop {
            let page = self.store.retention_facts(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.subject_id);
            let full = page.len() == PAGE as usize;
            for row in &page {
                let Some(end) = contact_end(&self.inventory, &rules, &facts_of(row)) else {
                    continue;
                };
                let narrow_rule = end.narrow_rule.clone().unwrap_or_else(|| end.rule.clone());
                let due = match end.narrow_at {
                    Some(n) if n <= until && end.at > until => Some((n, "narrow", narrow_rule)),
                    _ if end.at <= until => Some((end.at, action_name(end.action), end.rule.clone())),
                    _ => None,
                };
                if let Some((due_at, action, rule)) = due {
                    plan.due.push(DueRecord {
                        record: RetainedRecord::Contact.as_str(),
                        id: *row.subject_id.as_uuid(),
                        subject_id: Some(row.subject_id),
                        rule,
                        action,
                        due_at,
                        keep_proof: end.keep_proof,
                    });
                    plan.held.push(row.held);
                }
            }
            if !full {
                break;
            }
        }
        let mut both: Vec<(DueRecord, bool)> = plan.due.into_iter().zip(plan.held).collect();
        both.sort_by_key(|(d, _)| (d.due_at, d.id));
        (plan.due, plan.held) = both.into_iter().unzip();
        Ok(plan)
    }

    fn counts(due: &[DueRecord]) -> Vec<RuleCount> {
        let mut by: BTreeMap<(&'static str, String, &'static str), u64> = BTreeMap::new();
        for d in due {
            *by.entry((d.record, d.rule.clone(), d.action)).or_default() += 1;
        }
        by.into_iter()
            .map(|((record, rule, action), count)| RuleCount {
                record,
                rule,
                action,
                count,
                enforced: true,
            })
            .collect()
    }

    /// The rules for records deleted by id.
    fn record_rules(&self) -> Vec<(RetentionRule, PurgeKind)> {
        rules_in_force(&self.inventory)
            .into_iter()
            .filter_map(|r| purge_kind(r.record).map(|k| (r, k)))
            .collect()
    }

    /// One page of the records `rule` has ended for by `until`.
    async fn record_candidates(
        &self,
        rule: &RetentionRule,
        kind: PurgeKind,
        until: DateTime<Utc>,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> ServiceResult<Vec<RetentionCandidate>> {
        Ok(self
            .store
            .retention_candidates(&RetentionQuery {
                kind,
                from: rule.from,
                purpose: rule.purpose.clone(),
                before: until - Duration::days(i64::from(rule.days)),
                anonymise: rule.action == RetentionAction::Anonymise,
                after,
                limit,
            })
            .await?)
    }

    /// How many records `rule` has ended for by `until` (paged through).
    async fn count_candidates(
        &self,
        rule: &RetentionRule,
        kind: PurgeKind,
        until: DateTime<Utc>,
    ) -> ServiceResult<u64> {
        let mut n = 0u64;
        let mut after = None;
        loop {
            let page = self.record_candidates(rule, kind, until, after, 1_000).await?;
            n += page.len() as u64;
            match page.last() {
                Some(last) if page.len() == 1_000 => after = Some(last.id),
                _ => return Ok(n),
            }
        }
    }

    /// What the schedules will delete (or put on review) in the next
    /// `days` days from `at`, by rule; every rule in force is listed.
    pub async fn retention_preview(&self, at: DateTime<Utc>, days: u32) -> ServiceResult<Vec<RuleCount>> {
        Ok(self.retention_preview_plan(at, days).await?.0)
    }

    /// The preview's counts, and the contacts due by `at + days` they were
    /// counted from (one scan of the contacts serves both).
    async fn retention_preview_plan(
        &self,
        at: DateTime<Utc>,
        days: u32,
    ) -> ServiceResult<(Vec<RuleCount>, Vec<DueRecord>)> {
        if days > MAX_PREVIEW_DAYS {
            return Err(ServiceError::invalid(
                "days",
                format!("must be at most {MAX_PREVIEW_DAYS}"),
            ));
        }
        let until = at + Duration::days(i64::from(days));
        let due = self.due_contacts(until).await?.due;
        let mut counts = Self::counts(&due);
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
        for (r, kind) in self.record_rules() {
            counts.push(RuleCount {
                record: r.record.as_str(),
                rule: r.name.clone(),
                action: action_name(r.action),
                count: self.count_candidates(&r, kind, until).await?,
                enforced: true,
            });
        }
        self.reload_client_key().await?;
        for r in self.audit_rules() {
            counts.push(RuleCount {
                record: r.record.as_str(),
                rule: r.name.clone(),
                action: action_name(r.action),
                count: self.audit_months_due(&r, until),
                enforced: true,
            });
        }
        // Every rule in force is listed, with nothing due.
        for r in rules_in_force(&self.inventory) {
            let listed = counts
                .iter()
                .any(|c| c.rule == r.name && c.action == action_name(r.action));
            if !listed {
                counts.push(RuleCount {
                    record: r.record.as_str(),
                    rule: r.name.clone(),
                    action: action_name(r.action),
                    count: 0,
                    enforced: true,
                });
            }
        }
        Ok((counts, due))
    }

    /// What is due for the privacy officer's review at `at`: contacts, and
    /// up to a page of records per review rule.
    pub async fn retention_review_list(&self, at: DateTime<Utc>) -> ServiceResult<Vec<DueRecord>> {
        let due = self.due_contacts(at).await?.due;
        self.review_from(at, due).await
    }

    /// The review list from the contacts due by `at` or later (those due
    /// after `at` are left out), plus the other record types' candidates.
    async fn review_from(&self, at: DateTime<Utc>, due: Vec<DueRecord>) -> ServiceResult<Vec<DueRecord>> {
        let mut out: Vec<DueRecord> = due
            .into_iter()
            .filter(|d| d.action == "review" && d.due_at <= at)
            .collect();
        for (r, kind) in self.record_rules() {
            if r.action != RetentionAction::Review {
                continue;
            }
            for c in self.record_candidates(&r, kind, at, None, 1_000).await? {
                out.push(DueRecord {
                    record: r.record.as_str(),
                    id: c.id,
                    subject_id: c.subject_id,
                    rule: r.name.clone(),
                    action: "review",
                    due_at: c.from_at + Duration::days(i64::from(r.days)),
                    keep_proof: false,
                });
            }
        }
        Ok(out)
    }

    /// Carries out what is due at `at`, at most `batch` contacts and
    /// `batch` records of other kinds; `dry_run` changes nothing and
    /// reports what would be done.
    pub async fn retention_run(
        &self,
        at: DateTime<Utc>,
        dry_run: bool,
        batch: usize,
    ) -> ServiceResult<RetentionReport> {
        let plan = self.due_contacts(at).await?;
        let run = uuid::Uuid::now_v7();
        let mut report = RetentionReport {
            at,
            dry_run,
            run_id: run,
            erased: 0,
            anonymised: 0,
            narrowed: 0,
            review: 0,
            held: 0,
            remaining: 0,
            outbox_purged: 0,
            renewals_applied: 0,
            records: BTreeMap::new(),
            by_rule: Self::counts(&plan.due),
        };
        self.purge_outbox(at, dry_run, &mut report).await?;
        let mut todo: Vec<&DueRecord> = Vec::new();
        for (d, held) in plan.due.iter().zip(&plan.held) {
            if d.action == "review" {
                report.review += 1;
            } else if *held {
                report.held += 1;
            } else if todo.len() >= batch {
                report.remaining += 1;
            } else {
                todo.push(d);
            }
        }
        if dry_run {
            for d in &todo {
                *Self::counter(&mut report, d.action) += 1;
            }
        } else {
            for chunk in todo.chunks(CHUNK) {
                self.retention_contacts(chunk, run, at, &mut report).await?;
            }
        }
        self.retention_records(at, dry_run, batch, run, &mut report).await?;
        self.retention_audit_metadata(at, dry_run, run, &mut report).await?;
        if !dry_run {
            report.renewals_applied = self.apply_renewals().await?;
        }
        if !dry_run {
            tracing::info!(
                erased = report.erased,
                anonymised = report.anonymised,
                narrowed = report.narrowed,
                records = report.records.values().sum::<u64>(),
                "retention run"
            );
        }
        Ok(report)
    }

    fn counter<'a>(report: &'a mut RetentionReport, action: &str) -> &'a mut u64 {
        match action {
            "narrow" => &mut report.narrowed,
            "anonymise" => &mut report.anonymised,
            _ => &mut report.erased,
        }
    }

    /// One chunk of contacts in one transaction; if that fails (a hold
    /// placed or a contact changed meanwhile), one at a time.
    async fn retention_contacts(
        &self,
        chunk: &[&DueRecord],
        run: uuid::Uuid,
        at: DateTime<Utc>,
        report: &mut RetentionReport,
    ) -> ServiceResult<()> {
        let mut planned = Vec::with_capacity(chunk.len());
        for d in chunk {
            match self.contact_ops(d, run, at).await {
                Ok(ops) => planned.push((*d, ops)),
                Err(ServiceError::NotFound(_)) => report.remaining += 1,
                Err(e) => return Err(e),
            }
        }
        let all: Vec<WriteOp> = planned.iter().flat_map(|(_, ops)| ops.iter().cloned()).collect();
        if all.is_empty() {
            return Ok(());
        }
        if self.store.write(all).await.is_ok() {
            for (d, _) in &planned {
                *Self::counter(report, d.action) += 1;
            }
            return Ok(());
        }
        for (d, ops) in planned {
            match self.store.write(ops).await {
                Ok(()) => *Self::counter(report, d.action) += 1,
                Err(StoreError::LegalHold) => report.held += 1,
                // Changed or gone meanwhile: the next run sees it afresh.
                Err(StoreError::NotFound | StoreError::VersionConflict) => report.remaining += 1,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The writes that carry out `d` on its contact, with the audit entry
    /// and the count in the retention log.
    async fn contact_ops(&self, d: &DueRecord, run: uuid::Uuid, at: DateTime<Utc>) -> ServiceResult<Vec<WriteOp>> {
        let subject = SubjectId::from_uuid(d.id);
        if d.action == "erase" && !d.keep_proof {
            // Nothing of the contact is needed: its deletion destroys its
            // key with it (crypto-shredding); a contact gone meanwhile
            // fails the write (NotFound), as below.
            return Ok(vec![
                WriteOp::RequireNoLegalHold { subject_id: subject },
                WriteOp::DeleteContact { subject_id: subject },
                WriteOp::AppendAudit(Box::new(system_record("retention.erase", Some(subject), run, &d.rule))),
                count_op(run, at, &d.rule, d.record, d.action, 1),
            ]);
        }
        let row = self
            .store
            .get_contact(subject)
            .await?
            .ok_or(ServiceError::NotFound("contact"))?;
        let mut ops = if d.action == "narrow" {
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
            let mut audit = system_record("retention.narrow", Some(subject), run, &d.rule);
            let (mut ops, kept) = self.narrowing_ops(&row, &legal)?;
            audit.fields = kept;
            ops.push(WriteOp::AppendAudit(Box::new(audit)));
            ops
        } else {
            let mut ops = vec![
                WriteOp::RequireNoLegalHold { subject_id: subject },
                WriteOp::DeleteContact { subject_id: subject },
            ];
            if d.action == "anonymise" {
                let key = self.key_of(&row)?;
                // What stays: the country, counted by month, linked to no one.
                for (name, spec) in self
                    .inventory
                    .record_type(CONTACT)
                    .map(|t| &t.fields)
                    .into_iter()
                    .flatten()
                {
                    if spec.kind != FieldKind::Country {
                        continue;
                    }
                    if let Some(value) = self.open_fields_pub(&row, &key, name)? {
                        ops.push(WriteOp::AddAggregate(Box::new(AggregateRow {
                            record: CONTACT.into(),
                            period: period_of(at),
                            attribute: name.clone(),
                            value,
                            count: 1,
                        })));
                    }
                }
            } else if d.keep_proof {
                let key = self.key_of(&row)?;
                if let Some(email) = self.open_fields_pub(&row, &key, "email")? {
                    ops.push(WriteOp::InsertErasureProof {
                        identifier_hash: self.identifier_hash(&email),
                        request_id: run,
                        at,
                    });
                }
            }
            let action = if d.action == "anonymise" {
                "retention.anonymise"
            } else {
                "retention.erase"
            };
            ops.push(WriteOp::AppendAudit(Box::new(system_record(
                action,
                Some(subject),
                run,
                &d.rule,
            ))));
            ops
        };
        ops.push(count_op(run, at, &d.rule, d.record, d.action, 1));
        Ok(ops)
    }

    /// The rules for interactions, deals, consent records, requests,
    /// export bundles and incidents, a chunk of records per transaction.
    async fn retention_records(
        &self,
        at: DateTime<Utc>,
        dry_run: bool,
        batch: usize,
        run: uuid::Uuid,
        report: &mut RetentionReport,
    ) -> ServiceResult<()> {
        let mut budget = batch as u64;
        for (rule, kind) in self.record_rules() {
            let action = action_name(rule.action);
            let mut done = 0u64;
            let mut after = None;
            loop {
                if rule.action == RetentionAction::Review {
                    let n = self.count_candidates(&rule, kind, at).await?;
                    report.review += n;
                    done = n;
                    break;
                }
                let limit = u32::try_from(budget.min(u64::from(RECORD_CHUNK))).unwrap_or(RECORD_CHUNK);
                if limit == 0 {
                    report.remaining += self.count_candidates(&rule, kind, at).await?;
                    break;
                }
                // A dry run pages on; a real one asks again (what it
                // deleted is gone).
                let page = self.record_candidates(&rule, kind, at, after, limit).await?;
                if page.is_empty() {
                    break;
                }
                let n = page.len() as u64;
                if dry_run {
                    after = page.last().map(|c| c.id);
                } else {
                    self.store.write(self.record_ops(&rule, kind, &page, run, at)).await?;
                }
                done += n;
                budget -= n;
                *report.records.entry(rule.record.as_str()).or_default() += n;
                if n < u64::from(limit) {
                    break;
                }
            }
            report.by_rule.push(RuleCount {
                record: rule.record.as_str(),
                rule: rule.name.clone(),
                action,
                count: done,
                enforced: true,
            });
        }
        Ok(())
    }

    /// Erases or anonymises one page of a rule's records, with one audit
    /// entry naming them and the count in the retention log.
    fn record_ops(
        &self,
        rule: &RetentionRule,
        kind: PurgeKind,
        page: &[RetentionCandidate],
        run: uuid::Uuid,
        at: DateTime<Utc>,
    ) -> Vec<WriteOp> {
        let ids: Vec<uuid::Uuid> = page.iter().map(|c| c.id).collect();
        let mut ops = Vec::new();
        let anonymise = rule.action == RetentionAction::Anonymise;
        match (kind, anonymise) {
            (PurgeKind::Deal, true) => ops.push(WriteOp::UnlinkDeals { ids: ids.clone() }),
            (PurgeKind::Interaction, true) => {
                let mut by: BTreeMap<(String, String), u64> = BTreeMap::new();
                for c in page {
                    if let Some((value, when)) = &c.attribute {
                        *by.entry((period_of(*when), value.clone())).or_default() += 1;
                    }
                }
                for ((period, value), count) in by {
                    ops.push(WriteOp::AddAggregate(Box::new(AggregateRow {
                        record: RetainedRecord::Interaction.as_str().into(),
                        period,
                        attribute: "kind".into(),
                        value,
                        count,
                    })));
                }
                ops.push(WriteOp::PurgeRecords { kind, ids: ids.clone() });
            }
            _ => ops.push(WriteOp::PurgeRecords { kind, ids: ids.clone() }),
        }
        let verb = if anonymise { "anonymise" } else { "erase" };
        let mut audit = AuditRecord::new(
            Utc::now(),
            Actor::system(),
            format!("retention.{verb}_{}", kind.as_str()),
            Outcome::Ok,
        );
        audit.record_ids = std::iter::once(run).chain(ids).collect();
        audit.reason = Some(format!("retention rule {}: {} record(s)", rule.name, page.len()));
        ops.push(WriteOp::AppendAudit(Box::new(audit)));
        ops.push(count_op(
            run,
            at,
            &rule.name,
            rule.record.as_str(),
            verb,
            page.len() as u64,
        ));
        ops
    }

    fn audit_rules(&self) -> Vec<RetentionRule> {
        rules_in_force(&self.inventory)
            .into_iter()
            .filter(|r| r.record == RetainedRecord::AuditMetadata)
            .collect()
    }

    /// The month whose key becomes the oldest kept under `rule` at `at`:
    /// every month that ended more than the rule's days ago is anonymised.
    fn audit_target_month(rule: &RetentionRule, at: DateTime<Utc>) -> u32 {
        crate::crypto::month_index(at - Duration::days(i64::from(rule.days)))
    }

    /// How many months of client addresses `rule` anonymises by `until`.
    fn audit_months_due(&self, rule: &RetentionRule, until: DateTime<Utc>) -> u64 {
        u64::from(Self::audit_target_month(rule, until).saturating_sub(self.crypto.oldest_client_month()))
    }

    /// Adopts a ratchet step another process (the server, the CLI) stored.
    async fn reload_client_key(&self) -> ServiceResult<()> {
        for (name, stored) in self.store.get_instance_keys().await? {
            if name == crate::crypto::AUDIT_CLIENT_KEY {
                self.crypto
                    .reload_client_key(&stored)
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// `audit_metadata` rules: the client addresses the audit log recorded
    /// are sealed under one key per month on a one-way ratchet; anonymising
    /// a month ratchets the stored key past it, so its addresses can no
    /// longer be opened or matched while every entry (and the hash tree)
    /// stays as it was. `review` rules count the months due.
    async fn retention_audit_metadata(
        &self,
        at: DateTime<Utc>,
        dry_run: bool,
        run: uuid::Uuid,
        report: &mut RetentionReport,
    ) -> ServiceResult<()> {
        let rules = self.audit_rules();
        if rules.is_empty() {
            return Ok(());
        }
        self.reload_client_key().await?;
        // The shortest anonymise period wins: the latest target month.
        let mut target: Option<(u32, &RetentionRule)> = None;
        for r in &rules {
            let months = self.audit_months_due(r, at);
            if r.action == RetentionAction::Review {
                report.review += months;
                continue;
            }
            let m = Self::audit_target_month(r, at);
            if target.is_none_or(|(t, _)| m > t) {
                target = Some((m, r));
            }
        }
        let Some((month, rule)) = target else { return Ok(()) };
        let months = self.audit_months_due(rule, at);
        if months == 0 {
            return Ok(());
        }
        *report
            .records
            .entry(RetainedRecord::AuditMetadata.as_str())
            .or_default() += months;
        report.by_rule.push(RuleCount {
            record: RetainedRecord::AuditMetadata.as_str(),
            rule: rule.name.clone(),
            action: "anonymise",
            count: months,
            enforced: true,
        });
        if dry_run {
            return Ok(());
        }
        let Some((op, key)) = self
            .crypto
            .ratchet_clients(month)
            .map_err(|e| ServiceError::Internal(e.to_string()))?
        else {
            return Ok(());
        };
        let mut audit = AuditRecord::new(
            Utc::now(),
            Actor::system(),
            "retention.anonymise_audit_metadata",
            Outcome::Ok,
        );
        audit.record_ids = vec![run];
        audit.reason = Some(format!(
            "retention rule {}: client addresses of {months} month(s) before {:04}-{:02} anonymised",
            rule.name,
            month / 12,
            month % 12 + 1
        ));
        self.store
            .write(vec![
                op,
                WriteOp::AppendAudit(Box::new(audit)),
                count_op(
                    run,
                    at,
                    &rule.name,
                    RetainedRecord::AuditMetadata.as_str(),
                    "anonymise",
                    months,
                ),
            ])
            .await?;
        self.crypto.adopt_client_key(month, key);
        Ok(())
    }

    /// What the retention runs did since `since`, per run and rule, with
    /// the totals and what anonymisation kept.
    pub async fn retention_history(&self, since: DateTime<Utc>) -> ServiceResult<RetentionHistory> {
        let rows = self.store.retention_log(since).await?;
        let mut totals: BTreeMap<(String, String, String), u64> = BTreeMap::new();
        for r in &rows {
            *totals
                .entry((r.record.clone(), r.rule.clone(), r.action.clone()))
                .or_default() += r.count;
        }
        let known = |s: &str| {
            RetainedRecord::ALL
                .iter()
                .map(|r| r.as_str())
                .find(|k| *k == s)
                .unwrap_or("other")
        };
        let act = |s: &str| match s {
            "erase" => "erase",
            "anonymise" => "anonymise",
            "narrow" => "narrow",
            _ => "other",
        };
        Ok(RetentionHistory {
            since,
            totals: totals
                .into_iter()
                .map(|((record, rule, action), count)| RuleCount {
                    record: known(&record),
                    rule,
                    action: act(&action),
                    count,
                    enforced: true,
                })
                .collect(),
            runs: rows
                .into_iter()
                .map(|r| RetentionLogView {
                    run_id: r.run_id,
                    at: r.at,
                    rule: r.rule,
                    record: r.record,
                    action: r.action,
                    count: r.count,
                })
                .collect(),
            aggregates: self
                .store
                .retention_aggregates()
                .await?
                .into_iter()
                .map(|a| AggregateView {
                    record: a.record,
                    period: a.period,
                    attribute: a.attribute,
                    value: a.value,
                    count: a.count,
                })
                .collect(),
        })
    }
}

impl Service {
    /// The outbox rules carried out: sent mail erased some days after it
    /// was queued.
    fn outbox_rules(&self) -> Vec<RetentionRule> {
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
        audit.record_ids = vec![report.run_id];
        self.store
            .write(vec![
                WriteOp::PurgeSentOutbox { before },
                WriteOp::AppendAudit(Box::new(audit)),
                count_op(report.run_id, at, &rule.name, rule.record.as_str(), "erase", count),
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

    /// The preview of the next `days` days and the review list, now, for
    /// the privacy officer's retention page: one scan of the contacts, both
    /// audited as their own calls are.
    pub async fn retention_overview_for(
        &self,
        ctx: &crate::RequestContext,
        days: u32,
    ) -> ServiceResult<(Vec<RuleCount>, Vec<DueRecord>)> {
        self.guard(ctx, "retention.preview", None, async {
            self.require_privacy_officer(ctx, "retention schedules")?;
            let now = Utc::now();
            let (counts, due) = self.retention_preview_plan(now, days).await?;
            let review = self.review_from(now, due).await?;
            let ids: Vec<uuid::Uuid> = review.iter().map(|d| d.id).collect();
            self.store
                .write(vec![
                    self.audit_ok(ctx, "retention.preview", None, &[], vec![]),
                    self.audit_ok(ctx, "retention.review", None, &ids, vec![]),
                ])
                .await?;
            Ok((counts, review))
        })
        .await
    }

    /// [`Self::retention_review_list`] now, for the privacy officer.
    pub async fn retention_review_for(&self, ctx: &crate::RequestContext) -> ServiceResult<Vec<DueRecord>> {
        self.guard(ctx, "retention.review", None, async {
            self.require_privacy_officer(ctx, "retention schedules")?;
            let list = self.retention_review_list(Utc::now()).await?;
            let ids: Vec<uuid::Uuid> = list.iter().map(|d| d.id).collect();
            self.store
                .write(vec![self.audit_ok(ctx, "retention.review", None, &ids, vec![])])
                .await?;
            Ok(list)
        })
        .await
    }
}

impl Service {
    /// [`Self::retention_history`] for the privacy officer.
    pub async fn retention_history_for(
        &self,
        ctx: &crate::RequestContext,
        since: DateTime<Utc>,
    ) -> ServiceResult<RetentionHistory> {
        self.guard(ctx, "retention.report", None, async {
            self.require_privacy_officer(ctx, "retention schedules")?;
            let out = self.retention_history(since).await?;
            self.store
                .write(vec![self.audit_ok(ctx, "retention.report", None, &[], vec![])])
                .await?;
            Ok(out)
        })
        .await
    }
}
