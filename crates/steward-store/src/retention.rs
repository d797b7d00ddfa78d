//! What the retention schedules read and write, shared by both backends:
//! the facts a contact's end is computed from (without its fields), the
//! records of other kinds whose period has ended, what a run deleted (per
//! run and rule) and what anonymisation kept (counts linked to no one).
//!
//! The candidate queries are built here once, as SQL both backends run
//! (only the parameter placeholders differ), so the two cannot disagree on
//! which records a rule selects. Records of a subject under a legal hold
//! are never candidates, and [`crate::WriteOp::PurgeRecords`] checks the
//! hold again in the writing transaction.

use chrono::{DateTime, Utc};
use steward_domain::retention::RetentionEvent;
use steward_domain::SubjectId;

/// What the schedules need to know about one contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionFactsRow {
    pub subject_id: SubjectId,
    pub purposes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The latest of its interactions' `occurred_at` and `created_at`.
    pub last_interaction: Option<DateTime<Utc>>,
    /// A deal linked to it is neither won nor lost.
    pub open_deal: bool,
    /// The latest update of a won or lost deal linked to it.
    pub last_deal_closed: Option<DateTime<Utc>>,
    /// Each purpose's latest consent record: purpose, status, recorded at.
    pub latest_consents: Vec<(String, String, DateTime<Utc>)>,
    /// Under a legal hold that is not released.
    pub held: bool,
}

/// Record kinds deleted by id (contacts and outbox mail have their own ops).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PurgeKind {
    Interaction,
    Deal,
    ConsentRecord,
    /// A closed request, with its verification codes and export bundle.
    DsrCase,
    ExportBundle,
    /// A closed incident, with its entries.
    Incident,
}

impl PurgeKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interaction => "interaction",
            Self::Deal => "deal",
            Self::ConsentRecord => "consent_record",
            Self::DsrCase => "dsr_case",
            Self::ExportBundle => "export_bundle",
            Self::Incident => "incident",
        }
    }
}

/// The records of one kind whose period, running from `from`, ended before
/// `before`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionQuery {
    pub kind: PurgeKind,
    pub from: RetentionEvent,
    /// Only consent records for this purpose.
    pub purpose: Option<String>,
    pub before: DateTime<Utc>,
    /// Deals already unlinked from their contact are not anonymised again.
    pub anonymise: bool,
    /// Ids after this one (paging in id order).
    pub after: Option<uuid::Uuid>,
    pub limit: u32,
}

/// One record a rule's period has ended for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionCandidate {
    pub id: uuid::Uuid,
    pub subject_id: Option<SubjectId>,
    /// When the period started running.
    pub from_at: DateTime<Utc>,
    /// An aggregate-safe attribute kept by anonymisation (an interaction's
    /// kind), with the month it belongs to.
    pub attribute: Option<(String, DateTime<Utc>)>,
}

/// What one run did under one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionLogRow {
    pub run_id: uuid::Uuid,
    pub rule: String,
    pub record: String,
    pub action: String,
    /// When the run started.
    pub at: DateTime<Utc>,
    pub count: u64,
}

/// A count kept by anonymisation: `count` records of kind `record` in
/// month `period` (YYYY-MM) had `attribute` = `value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregateRow {
    pub record: String,
    pub period: String,
    pub attribute: String,
    pub value: String,
    pub count: u64,
}

/// Not under a legal hold (the alias `x` is the candidate's table).
const NOT_HELD: &str =
    "NOT EXISTS (SELECT 1 FROM legal_holds h WHERE h.subject_id = x.subject_id AND h.released_at IS NULL)";

/// The candidate query for `q`: columns id, subject_id, from_at (micros),
/// attribute (text or NULL), attribute period (micros or NULL); parameter 1
/// is `before` (micros), 2 the limit, 3 the id to page after (the nil UUID
/// for the first page), 4 the purpose when `q.purpose` is set. `ph(n)` writes placeholder `n`; `typed_null(t)` a NULL of SQL type
/// `t`. `None` when the kind cannot run from that event (validated away).
#[must_use]
pub fn candidates_sql(q: &RetentionQuery, ph: fn(usize) -> String, typed_null: fn(&str) -> String) -> Option<String> {
    use RetentionEvent as E;
    let b = ph(1);
    let none = format!("{}, {}", typed_null("TEXT"), typed_null("BIGINT"));
    let (cols, from, cond) = match (q.kind, q.from) {
        (PurgeKind::Interaction, E::Created) => (
            "x.id, x.subject_id, x.created_at, x.kind, x.occurred_at".to_string(),
            "interactions x",
            format!("x.created_at < {b} AND {NOT_HELD}"),
        ),
        (PurgeKind::Deal, E::Created | E::LastUpdate | E::DealClosed) => {
            let col = if q.from == E::Created {
                "x.created_at"
            } else {
                "x.updated_at"
            };
            let mut cond = format!("{col} < {b} AND (x.subject_id IS NULL OR {NOT_HELD})");
            if q.from == E::DealClosed {
                cond.push_str(" AND x.stage IN ('won', 'lost')");
            }
            if q.anonymise {
                cond.push_str(" AND x.subject_id IS NOT NULL");
            }
            (format!("x.id, x.subject_id, {col}, {none}"), "deals x", cond)
        }
        (PurgeKind::ConsentRecord, E::Created) => (
            format!("x.id, x.subject_id, x.recorded_at, {none}"),
            "consents x",
            // Only records a later one superseded: the record in force is
            // the proof of the consent state the contact carries.
            format!(
                "x.recorded_at < {b} AND {NOT_HELD} AND EXISTS (SELECT 1 FROM consents n \
                 WHERE n.subject_id = x.subject_id AND n.purpose = x.purpose \
                 AND n.status IN ('granted', 'withdrawn') \
                 AND (n.recorded_at > x.recorded_at OR (n.recorded_at = x.recorded_at AND n.id > x.id)))"
            ),
        ),
        (PurgeKind::ConsentRecord, E::ConsentWithdrawn) => (
            format!("x.id, x.subject_id, x.recorded_at, {none}"),
            "consents x",
            // Every record of a purpose whose consent was withdrawn before
            // `before` and not given again since.
            format!(
                "{NOT_HELD} AND EXISTS (SELECT 1 FROM consents w \
                 WHERE w.subject_id = x.subject_id AND w.purpose = x.purpose \
                 AND w.status = 'withdrawn' AND w.recorded_at < {b} \
                 AND NOT EXISTS (SELECT 1 FROM consents g WHERE g.subject_id = w.subject_id \
                 AND g.purpose = w.purpose AND g.status = 'granted' AND g.recorded_at > w.recorded_at))"
            ),
        ),
        (PurgeKind::DsrCase, E::Created | E::RequestClosed) => {
            let col = if q.from == E::Created {
                "x.created_at"
            } else {
                "x.completed_at"
            };
            (
                format!("x.id, x.subject_id, {col}, {none}"),
                "dsr x",
                // Open requests are never deleted.
                format!("x.completed_at IS NOT NULL AND {col} < {b} AND (x.subject_id IS NULL OR {NOT_HELD})"),
            )
        }
        (PurgeKind::ExportBundle, E::Created) => (
            format!("x.dsr_id, x.subject_id, x.created_at, {none}"),
            "export_bundles x",
            format!("x.created_at < {b} AND {NOT_HELD}"),
        ),
        (PurgeKind::Incident, E::Created | E::RequestClosed) => {
            let col = if q.from == E::Created {
                "x.created_at"
            } else {
                "x.updated_at"
            };
            (
                format!("x.id, {}, {col}, {none}", typed_null("UUID")),
                "incidents x",
                format!("x.status = 'closed' AND {col} < {b}"),
            )
        }
        _ => return None,
    };
    let purpose = match (&q.purpose, q.kind) {
        (Some(_), PurgeKind::ConsentRecord) => format!(" AND x.purpose = {}", ph(4)),
        _ => String::new(),
    };
    let id = if q.kind == PurgeKind::ExportBundle {
        "x.dsr_id"
    } else {
        "x.id"
    };
    Some(format!(
        "SELECT {cols} FROM {from} WHERE {cond}{purpose} AND {id} > {} ORDER BY {id} LIMIT {}",
        ph(3),
        ph(2)
    ))
}

/// The month (YYYY-MM, UTC) a time falls in.
#[must_use]
pub fn period_of(t: DateTime<Utc>) -> String {
    t.format("%Y-%m").to_string()
}

/// Assembles [`RetentionFactsRow`]s from one page of contacts and the
/// range queries over that page's interactions, deals and consents.
pub(crate) struct FactsPage {
    rows: Vec<RetentionFactsRow>,
}

impl FactsPage {
    pub(crate) fn new(rows: Vec<RetentionFactsRow>) -> Self {
        Self { rows }
    }

    fn row(&mut self, subject: SubjectId) -> Option<&mut RetentionFactsRow> {
        // Pages are sorted by subject id.
        let i = self.rows.binary_search_by(|r| r.subject_id.cmp(&subject)).ok()?;
        self.rows.get_mut(i)
    }

    pub(crate) fn interaction(&mut self, subject: SubjectId, last: DateTime<Utc>) {
        if let Some(r) = self.row(subject) {
            r.last_interaction = Some(r.last_interaction.map_or(last, |l| l.max(last)));
        }
    }

    pub(crate) fn deal(&mut self, subject: SubjectId, closed: bool, updated: DateTime<Utc>) {
        if let Some(r) = self.row(subject) {
            if closed {
                r.last_deal_closed = Some(r.last_deal_closed.map_or(updated, |l| l.max(updated)));
            } else {
                r.open_deal = true;
            }
        }
    }

    /// Consent records in (subject, recorded_at, id) order: the last per
    /// purpose wins.
    pub(crate) fn consent(&mut self, subject: SubjectId, purpose: String, status: String, at: DateTime<Utc>) {
        if let Some(r) = self.row(subject) {
            if let Some(c) = r.latest_consents.iter_mut().find(|c| c.0 == purpose) {
                *c = (purpose, status, at);
            } else {
                r.latest_consents.push((purpose, status, at));
            }
        }
    }

    pub(crate) fn finish(self) -> Vec<RetentionFactsRow> {
        self.rows
    }
}

pub(crate) fn split_purposes(s: &str) -> Vec<String> {
    s.split(',').filter(|p| !p.is_empty()).map(str::to_string).collect()
}

/// The statements deleting one record of `kind` (parameter 1: its id), in
/// order; each re-checks the hold (and that a request or incident is closed).
#[must_use]
pub fn purge_sql(kind: PurgeKind, ph: fn(usize) -> String) -> Vec<String> {
    let p = ph(1);
    let one = |table: &str, id: &str, cond: &str| {
        format!("DELETE FROM {table} WHERE {id} IN (SELECT x.{id} FROM {table} x WHERE x.{id} = {p} AND {cond})")
    };
    match kind {
        PurgeKind::Interaction => vec![one("interactions", "id", NOT_HELD)],
        PurgeKind::Deal => vec![one("deals", "id", &format!("(x.subject_id IS NULL OR {NOT_HELD})"))],
        PurgeKind::ConsentRecord => vec![one("consents", "id", NOT_HELD)],
        PurgeKind::ExportBundle => vec![one("export_bundles", "dsr_id", NOT_HELD)],
        PurgeKind::DsrCase => {
            let g = format!(
                "(SELECT x.id FROM dsr x WHERE x.id = {p} AND x.completed_at IS NOT NULL \
                 AND (x.subject_id IS NULL OR {NOT_HELD}))"
            );
            vec![
                format!("DELETE FROM export_bundles WHERE dsr_id IN {g}"),
                format!("DELETE FROM dsr_verifications WHERE dsr_id IN {g}"),
                format!("DELETE FROM drp_requests WHERE dsr_id IN {g}"),
                format!("DELETE FROM dsr WHERE id IN {g}"),
            ]
        }
        PurgeKind::Incident => {
            let g = format!("(SELECT x.id FROM incidents x WHERE x.id = {p} AND x.status = 'closed')");
            vec![
                format!("DELETE FROM incident_entries WHERE incident_id IN {g}"),
                format!("DELETE FROM incidents WHERE id IN {g}"),
            ]
        }
    }
}

/// Unlinks one deal from its contact (parameter 1: its id) unless held.
#[must_use]
pub fn unlink_deal_sql(ph: fn(usize) -> String) -> String {
    format!(
        "UPDATE deals SET subject_id = NULL WHERE id IN (SELECT x.id FROM deals x WHERE x.id = {} AND {NOT_HELD})",
        ph(1)
    )
}

/// Adds to a run's count: parameters run_id, rule, record, action, at, count.
#[must_use]
pub fn count_retention_sql(ph: fn(usize) -> String) -> String {
    format!(
        "INSERT INTO retention_log (run_id, rule, record, action, at, count) VALUES ({}, {}, {}, {}, {}, {}) \
         ON CONFLICT (run_id, rule, record, action) DO UPDATE SET count = retention_log.count + excluded.count",
        ph(1),
        ph(2),
        ph(3),
        ph(4),
        ph(5),
        ph(6)
    )
}

/// Adds to an aggregate: parameters record, period, attribute, value, count.
#[must_use]
pub fn add_aggregate_sql(ph: fn(usize) -> String) -> String {
    format!(
        "INSERT INTO retention_aggregates (record, period, attribute, value, count) VALUES ({}, {}, {}, {}, {}) \
         ON CONFLICT (record, period, attribute, value) DO UPDATE SET count = retention_aggregates.count + excluded.count",
        ph(1),
        ph(2),
        ph(3),
        ph(4),
        ph(5)
    )
}

pub(crate) fn count_to_db(n: u64) -> crate::StoreResult<i64> {
    i64::try_from(n).map_err(|_| crate::StoreError::Backend("count out of range".into()))
}
