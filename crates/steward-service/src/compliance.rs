//! The compliance report: what a privacy officer shows a regulator or a
//! board for a period — data-subject requests and their deadlines, consent
//! given and withdrawn, reads of personal data by purpose and role (with
//! accounts reading far more people than their peers flagged), breaches
//! against the 72-hour clock, retention deletions, training coverage and
//! the security self-audit — computed from the store and the audit log up
//! to a signed tree head that the report carries, so its figures can be
//! checked against the log. Figures only: no names, no values.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use steward_audit::SignedTreeHead;

use crate::compliance_scan::{self, Bounds, Scan};
use crate::error::{ServiceError, ServiceResult};
use crate::Service;

/// An account is flagged when it read at least this many distinct people…
pub const OUTLIER_MIN_SUBJECTS: u64 = 20;
/// …and at least this many times the median of the other accounts.
pub const OUTLIER_FACTOR: u64 = 3;

#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct DsrFigures {
    /// Requests received in the period.
    pub received: u64,
    pub by_kind: BTreeMap<String, u64>,
    pub by_regime: BTreeMap<String, u64>,
    /// Of those received, closed (completed or refused) so far.
    pub closed: u64,
    /// Closed by their (possibly extended) deadline.
    pub closed_on_time: u64,
    /// `closed_on_time / closed`, when any closed.
    pub on_time_rate: Option<f64>,
    pub median_days_to_close: Option<f64>,
    pub p95_days_to_close: Option<f64>,
    /// Open at the time of the report (whenever received), and overdue.
    pub open_now: u64,
    pub overdue_now: u64,
}

#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct ConsentPurpose {
    pub grants: u64,
    pub withdrawals: u64,
    /// People whose current consent for the purpose is granted, withdrawn.
    pub current_granted: u64,
    pub current_withdrawn: u64,
    /// `current_granted / (current_granted + current_withdrawn)`.
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ConsentMonth {
    /// `YYYY-MM`.
    pub month: String,
    pub purpose: String,
    pub grants: u64,
    pub withdrawals: u64,
}

#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct ConsentFigures {
    pub by_purpose: BTreeMap<String, ConsentPurpose>,
    pub by_month: Vec<ConsentMonth>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AccountReads {
    /// The staff user's id (or the token's, for a token without a user).
    pub account: String,
    pub role: String,
    pub reads: u64,
    pub subjects: u64,
    pub outlier: bool,
}

#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct ReadFigures {
    /// Audited reads of personal data in the period.
    pub total: u64,
    pub by_purpose: BTreeMap<String, u64>,
    pub by_role: BTreeMap<String, u64>,
    /// Accounts by distinct people read, most first.
    pub by_account: Vec<AccountReads>,
    /// The median of distinct people read per account.
    pub median_subjects: f64,
}

#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct IncidentFigures {
    /// Incidents the organisation became aware of in the period.
    pub opened: u64,
    pub by_category: BTreeMap<String, u64>,
    /// Of those, the authority notified; and within 72 hours of awareness.
    pub notified: u64,
    pub notified_within_72h: u64,
    /// Hours from awareness to the authority's notification, per notified
    /// incident, in order of awareness.
    pub hours_to_notify: Vec<f64>,
    pub median_hours_to_notify: Option<f64>,
    /// Past an open legal deadline now (whenever opened).
    pub overdue_now: u64,
}

#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct TrainingFigures {
    /// Active staff with a role that reads personal data.
    pub staff: u64,
    pub trained: u64,
    pub coverage: Option<f64>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SecurityFigures {
    pub score: u32,
    pub failing: Vec<String>,
    pub warning: Vec<String>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ComplianceReport {
    pub generated_at: DateTime<Utc>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub dsr: DsrFigures,
    pub consent: ConsentFigures,
    pub reads: ReadFigures,
    pub incidents: IncidentFigures,
    /// Records deleted, anonymised or narrowed by each retention rule in the period.
    pub retention: BTreeMap<String, u64>,
    pub training: TrainingFigures,
    pub security: SecurityFigures,
    /// The audit log the figures were computed from: entries up to this
    /// signed head (verify with `steward audit verify` and the JWKS key).
    #[schemars(schema_with = "signed_tree_head_schema")]
    pub tree_head: SignedTreeHead,
}

/// How [`SignedTreeHead`] serialises (its crate has no schemas).
pub(crate) fn signed_tree_head_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "required": ["tree_size", "timestamp_ms", "root", "signature", "key_id"],
        "additionalProperties": false,
        "properties": {
            "tree_size": {"type": "integer", "minimum": 0},
            "timestamp_ms": {"type": "integer", "description": "Milliseconds since the Unix epoch"},
            "root": {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "The root hash, lower-case hex"},
            "signature": {"type": "string", "contentEncoding": "base64", "description": "Ed25519 over the tree head bytes"},
            "key_id": {"type": "string"}
        }
    })
}

/// The current consent record per person and purpose, from the whole
/// history (oldest first, as the store lists it).
pub(crate) fn latest_consents(history: Vec<steward_store::ConsentSummary>) -> Vec<steward_store::ConsentSummary> {
    let mut latest: HashMap<(steward_domain::SubjectId, String), steward_store::ConsentSummary> = HashMap::new();
    for c in history {
        latest.insert((c.subject_id, c.purpose.clone()), c);
    }
    let mut out: Vec<_> = latest.into_values().collect();
    out.sort_by(|a, b| (a.recorded_at, &a.purpose).cmp(&(b.recorded_at, &b.purpose)));
    out
}

/// A period bound from `YYYY-MM-DD` (a whole day: the start of the day for
/// `from`, the end of it for `to`) or an RFC 3339 time.
pub fn parse_bound(name: &str, value: &str, end: bool) -> ServiceResult<DateTime<Utc>> {
    let v = value.trim();
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        let day = if end { d.succ_opt().unwrap_or(d) } else { d };
        return Ok(day.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ServiceError::invalid(name, "must be a date (YYYY-MM-DD) or an RFC 3339 time"))
}

/// The value at rank `p` (0–1) of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    Some(if n % 2 == 1 {
        sorted[n / 2]
    } else {
        f64::midpoint(sorted[n / 2 - 1], sorted[n / 2])
    })
}

#[allow(clippy::cast_precision_loss)]
fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Flags accounts reading at least [`OUTLIER_MIN_SUBJECTS`] people and
/// [`OUTLIER_FACTOR`] times the median of the other accounts.
#[allow(clippy::cast_precision_loss)]
fn flag_outliers(accounts: &mut [AccountReads]) -> f64 {
    let mut all: Vec<f64> = accounts.iter().map(|a| a.subjects as f64).collect();
    all.sort_by(f64::total_cmp);
    let overall = median(&all).unwrap_or(0.0);
    for i in 0..accounts.len() {
        let mut others: Vec<f64> = accounts
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, a)| a.subjects as f64)
            .collect();
        others.sort_by(f64::total_cmp);
        let peers = median(&others).unwrap_or(0.0);
        let a = &mut accounts[i];
        a.outlier = !others.is_empty()
            && a.subjects >= OUTLIER_MIN_SUBJECTS
            && a.subjects as f64 >= OUTLIER_FACTOR as f64 * peers.max(1.0);
    }
    overall
}

impl Service {
    /// The compliance report for `[from, to)`, as of `now`, against a tree
    /// head signed for it.
    pub async fn compliance_report(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> ServiceResult<ComplianceReport> {
        if to <= from {
            return Err(ServiceError::invalid("to", "must be after from"));
        }
        if to - from > Duration::days(3660) {
            return Err(ServiceError::invalid("to", "the period may be at most ten years"));
        }
        let in_period = |t: DateTime<Utc>| t >= from && t < to;
        let started = std::time::Instant::now();
        let lap = |stage: &str| tracing::debug!(stage, ms = started.elapsed().as_millis(), "compliance report");

        // Requests.
        let mut dsr = DsrFigures::default();
        let mut days = Vec::new();
        for d in self.list_dsr(None, Some("all")).await? {
            let row = &d.row;
            let closed = crate::dsr::is_closed(&row.status);
            if !closed {
                dsr.open_now += 1;
                if d.deadline == Some("overdue") {
                    dsr.overdue_now += 1;
                }
            }
            if !in_period(row.received_at) {
                continue;
            }
            dsr.received += 1;
            *dsr.by_kind.entry(row.kind.clone()).or_default() += 1;
            *dsr.by_regime.entry(row.regime.clone()).or_default() += 1;
            if let (true, Some(done)) = (closed, row.completed_at) {
                dsr.closed += 1;
                if done <= row.due_at {
                    dsr.closed_on_time += 1;
                }
                #[allow(clippy::cast_precision_loss)]
                days.push((done - row.received_at).num_seconds() as f64 / 86_400.0);
            }
        }
        days.sort_by(f64::total_cmp);
        dsr.on_time_rate = ratio(dsr.closed_on_time, dsr.closed);
        dsr.median_days_to_close = median(&days);
        dsr.p95_days_to_close = percentile(&days, 0.95);

        // Current consent per purpose.
        let mut consent = ConsentFigures::default();
        for c in latest_consents(self.store.consent_summaries().await?) {
            let p = consent.by_purpose.entry(c.purpose.clone()).or_default();
            match c.status.as_str() {
                "granted" => p.current_granted += 1,
                "withdrawn" => p.current_withdrawn += 1,
                _ => {}
            }
        }

        // The audit log up to a head signed now, scanned while the
        // self-audit runs beside it. The self-audit verifies the entries
        // appended since the last whole-log verification when that ran
        // within a day (`steward serve` makes one daily; `steward doctor`
        // and `steward audit verify` each make one), the whole log otherwise.
        lap("requests and consent");
        let head = self.sign_tree_head().await?;
        lap("tree head");
        let mut install = self.installation();
        install.reuse_verification = Some(Duration::hours(24));
        let (scan, audit) = tokio::join!(
            async {
                let scan = self.scan_audit(from, to, head.tree_size).await;
                lap("audit scan");
                scan
            },
            async {
                let audit = self.security_report(&install, now).await;
                lap("self-audit");
                audit
            }
        );
        let (scan, audit) = (scan?, audit?);
        for ((_, purpose), (grants, withdrawals)) in &scan.months {
            let p = consent.by_purpose.entry(purpose.clone()).or_default();
            p.grants += grants;
            p.withdrawals += withdrawals;
        }
        let months = scan.months;
        let accounts = scan.accounts;
        let mut reads = scan.reads;
        for p in consent.by_purpose.values_mut() {
            p.rate = ratio(p.current_granted, p.current_granted + p.current_withdrawn);
        }
        consent.by_month = months
            .into_iter()
            .map(|((month, purpose), (grants, withdrawals))| ConsentMonth {
                month,
                purpose,
                grants,
                withdrawals,
            })
            .collect();
        let mut by_account: Vec<AccountReads> = accounts
            .into_iter()
            .map(|(account, (role, n, subjects))| AccountReads {
                account,
                role,
                reads: n,
                subjects,
                outlier: false,
            })
            .collect();
        by_account.sort_by(|a, b| b.subjects.cmp(&a.subjects).then_with(|| a.account.cmp(&b.account)));
        reads.median_subjects = flag_outliers(&mut by_account);
        reads.by_account = by_account;

        // Breaches.
        let mut incidents = IncidentFigures::default();
        let mut register = self.incident_register(false).await?;
        register.sort_by_key(|i| i.aware_at);
        for i in &register {
            if i.overdue {
                incidents.overdue_now += 1;
            }
            if !in_period(i.aware_at) {
                continue;
            }
            incidents.opened += 1;
            *incidents
                .by_category
                .entry(i.category.as_str().to_string())
                .or_default() += 1;
            if let Some(n) = &i.regulator_notification {
                incidents.notified += 1;
                #[allow(clippy::cast_precision_loss)]
                let hours = (n.notified_at - i.aware_at).num_seconds() as f64 / 3_600.0;
                if hours <= 72.0 {
                    incidents.notified_within_72h += 1;
                }
                incidents.hours_to_notify.push(hours);
            }
        }
        let mut hours = incidents.hours_to_notify.clone();
        hours.sort_by(f64::total_cmp);
        incidents.median_hours_to_notify = median(&hours);

        // Retention.
        let mut retention = BTreeMap::new();
        for run in self.retention_history(from).await?.runs {
            if in_period(run.at) {
                *retention.entry(run.rule.clone()).or_default() += run.count;
            }
        }

        lap("incidents and retention");
        // Training and the self-audit.
        let users = self.list_users(None).await?;
        let personal = |role: &str| self.inventory.role(role).is_some_and(|r| !r.purposes.is_empty());
        let staff: Vec<_> = users.iter().filter(|u| !u.disabled && personal(&u.role)).collect();
        let trained = staff.iter().filter(|u| u.training_current).count() as u64;
        let training = TrainingFigures {
            staff: staff.len() as u64,
            trained,
            coverage: ratio(trained, staff.len() as u64),
        };
        let pick = |s: crate::doctor::Status| {
            audit
                .controls
                .iter()
                .filter(|c| c.status == s)
                .map(|c| c.id.to_string())
                .collect()
        };
        let security = SecurityFigures {
            score: audit.score,
            failing: pick(crate::doctor::Status::Fail),
            warning: pick(crate::doctor::Status::Warn),
        };

        Ok(ComplianceReport {
            generated_at: now,
            from,
            to,
            dsr,
            consent,
            reads,
            incidents,
            retention,
            training,
            security,
            tree_head: head,
        })
    }

    /// Counts consent events and reads of personal data in `[from, to)` over
    /// the entries below `size`.
    async fn scan_audit(&self, from: DateTime<Utc>, to: DateTime<Utc>, size: u64) -> ServiceResult<Scan> {
        let bounds = Bounds {
            lo: from.timestamp_micros(),
            hi: to.timestamp_micros(),
            stop: (to + Duration::minutes(5)).timestamp_micros(),
        };
        // Entries are appended in time order: skip to the period's start by
        // bisection (allowing for clock steps), then count on every core.
        let start = self.first_entry_at_or_after(from - Duration::minutes(5), size).await?;
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get) as u64;
        compliance_scan::scan(&self.store, start, size, &bounds, cores).await
    }

    /// The index of the first audit entry at or after `at` (entries are in
    /// time order), by bisection over `[0, size)`.
    async fn first_entry_at_or_after(&self, at: DateTime<Utc>, size: u64) -> ServiceResult<u64> {
        let (mut lo, mut hi) = (0, size);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let entry = self.store.audit_entries(mid, 1).await?;
            let before = entry
                .first()
                .and_then(|e| steward_audit::decode_entry(&e.bytes).ok())
                .is_some_and(|e| e.record.at < at);
            if before {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// [`Service::compliance_report`] for the privacy officer or an auditor
    /// (audited).
    pub async fn compliance_report_for(
        &self,
        p: &crate::auth::Principal,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> ServiceResult<ComplianceReport> {
        let allowed = self
            .inventory
            .role(&p.role)
            .is_some_and(|r| r.actions.iter().any(|a| a == "audit.read"));
        if !allowed || p.mfa_pending {
            return Err(ServiceError::Forbidden(format!(
                "role '{}' may not read the compliance report (dpo or auditor)",
                p.role
            )));
        }
        let report = self.compliance_report(from, to, Utc::now()).await?;
        self.store
            .write(vec![self.principal_entry(p, "report.compliance", &[])])
            .await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(n: u64) -> AccountReads {
        AccountReads {
            account: format!("a{n}"),
            role: "sales".into(),
            reads: n,
            subjects: n,
            outlier: false,
        }
    }

    #[test]
    fn outliers_read_far_more_people_than_their_peers() {
        let mut a = vec![account(100), account(10), account(12), account(8)];
        let m = flag_outliers(&mut a);
        assert!((m - 11.0).abs() < 1e-9);
        assert_eq!(
            a.iter().map(|x| x.outlier).collect::<Vec<_>>(),
            [true, false, false, false]
        );
        // Few people read: never flagged, however lopsided.
        let mut a = vec![account(15), account(1), account(1)];
        flag_outliers(&mut a);
        assert!(a.iter().all(|x| !x.outlier));
        // One account alone has no peers.
        let mut a = vec![account(500)];
        flag_outliers(&mut a);
        assert!(!a[0].outlier);
    }

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.95), Some(19.0));
        assert_eq!(median(&v), Some(10.5));
        assert_eq!(median(&[]), None);
        assert_eq!(ratio(1, 0), None);
    }
}
