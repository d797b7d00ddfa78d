//! Personal-data breaches: the typed policy state of an incident — its
//! status workflow, categories, legal clocks and the risk level Steward
//! proposes — as pure functions of explicit inputs (time is an input).
//!
//! - GDPR Art. 33(1): the supervisory authority is notified without undue
//!   delay and, where feasible, within 72 hours of the controller becoming
//!   aware; a later notification gives the reasons for the delay. The 72
//!   hours are elapsed time, so they are counted in UTC: a change of
//!   daylight-saving time in between neither adds nor removes an hour.
//! - GDPR Art. 34: the data subjects are told without undue delay when the
//!   breach is likely to result in a *high* risk to them; not when the data
//!   is unintelligible to anyone not authorised to see it (Art. 34(3)(a)).
//! - US state breach laws (and CCPA's breach provisions): individuals are
//!   notified within a number of days that depends on the state (30, 45,
//!   60, ...), configured per incident.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            #[must_use]
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some(Self::$variant),)+ _ => None }
            }

            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// The values as a list for messages: `a, b or c`.
            #[must_use]
            pub fn choices() -> String {
                let all: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                match all.split_last() {
                    Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                    _ => all.join(""),
                }
            }
        }
    };
}

string_enum!(
    /// Where an incident stands. It moves forward only; `closed` is final.
    IncidentStatus {
        Open = "open",
        Assessed = "assessed",
        Contained = "contained",
        Notified = "notified",
        Closed = "closed",
    }
);

string_enum!(
    /// The security property that was breached (Article 29 WP250 / EDPB).
    BreachCategory {
        Confidentiality = "confidentiality",
        Integrity = "integrity",
        Availability = "availability",
    }
);

string_enum!(
    /// How the breach came about.
    BreachSource {
        LostDevice = "lost_device",
        CompromisedAccount = "compromised_account",
        MisdirectedEmail = "misdirected_email",
        Vendor = "vendor",
        Malware = "malware",
        Insider = "insider",
        UnauthorisedAccess = "unauthorised_access",
        Other = "other",
    }
);

string_enum!(
    /// Which breach-notification law sets the incident's clocks.
    BreachRegime {
        Gdpr = "gdpr",
        UsState = "us_state",
    }
);

string_enum!(
    /// The risk to the people affected (EDPB Guidelines 9/2022): `low` is
    /// "unlikely to result in a risk" (documented, not notified), `medium`
    /// a risk (the authority is notified), `high` a high risk (the people
    /// are told too).
    RiskLevel {
        Low = "low",
        Medium = "medium",
        High = "high",
    }
);

impl IncidentStatus {
    /// Whether the incident may move from `self` to `next`: forward only
    /// (steps may be skipped), never out of `closed`.
    #[must_use]
    pub fn can_move_to(self, next: Self) -> bool {
        self != Self::Closed && next > self
    }
}

/// The GDPR Art. 33 deadline: 72 elapsed hours after awareness.
pub const GDPR_REGULATOR_HOURS: i64 = 72;
/// The longest notification period accepted for a US state regime.
pub const MAX_NOTIFICATION_DAYS: u32 = 365;
/// Within this much of a deadline it is "due soon".
pub const DUE_SOON_HOURS: i64 = 24;

/// The legal deadline of an incident: regulator (GDPR) or individuals (US).
#[must_use]
pub fn notification_due(regime: BreachRegime, aware_at: DateTime<Utc>, days: Option<u32>) -> DateTime<Utc> {
    match regime {
        BreachRegime::Gdpr => aware_at + Duration::hours(GDPR_REGULATOR_HOURS),
        BreachRegime::UsState => aware_at + Duration::days(i64::from(days.unwrap_or(30).min(MAX_NOTIFICATION_DAYS))),
    }
}

/// Where a legal clock stands at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockState {
    OnTime,
    DueSoon,
    Overdue,
    /// Done before the deadline.
    Met,
    /// Done after it.
    Late,
}

impl ClockState {
    #[must_use]
    pub fn at(due: DateTime<Utc>, done: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        match done {
            Some(d) if d <= due => Self::Met,
            Some(_) => Self::Late,
            None if now > due => Self::Overdue,
            None if due - now <= Duration::hours(DUE_SOON_HOURS) => Self::DueSoon,
            None => Self::OnTime,
        }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnTime => "on_time",
            Self::DueSoon => "due_soon",
            Self::Overdue => "overdue",
            Self::Met => "met",
            Self::Late => "late",
        }
    }
}

/// What the risk proposal looks at (from a scope, or estimated by hand).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RiskFactors {
    /// People affected.
    pub subjects: u64,
    /// People affected per data category.
    pub categories: BTreeMap<String, u64>,
    /// Categories that are special categories (GDPR Art. 9).
    pub special_categories: Vec<String>,
    /// The data was unintelligible to whoever got it: encrypted, and the
    /// keys were not exposed (Art. 34(3)(a)).
    pub unintelligible: bool,
}

/// Steward's proposal, with the criteria that led to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct RiskProposal {
    pub level: RiskLevel,
    /// How likely harm is: low, medium, high.
    pub likelihood: &'static str,
    /// How bad it would be: low, medium, high.
    pub severity: &'static str,
    pub reasons: Vec<String>,
}

/// Categories that identify a person directly (names) or let anyone reach
/// them (e-mail, telephone, postal address).
const IDENTIFYING: &[&str] = &["identity", "contact", "address"];
/// Categories whose exposure can do harm by themselves beyond contact
/// details (fraud, discrimination, exposure of private life).
const SENSITIVE: &[&str] = &["demographic", "free_text"];
/// At or above this many people a breach is large-scale.
pub const LARGE_SCALE: u64 = 1_000;

/// Proposes a risk level per the EDPB Guidelines 9/2022 criteria: the type
/// and sensitivity of the data, its volume, how easily the people can be
/// identified, and whether it was intelligible at all. The privacy officer
/// confirms it or overrides it with a reason.
#[must_use]
pub fn propose_risk(f: &RiskFactors) -> RiskProposal {
    let low = |reason: String| RiskProposal {
        level: RiskLevel::Low,
        likelihood: "low",
        severity: "low",
        reasons: vec![reason],
    };
    if f.subjects == 0 {
        return low("no personal data of anyone was affected".into());
    }
    if f.unintelligible {
        return low(
            "the data was encrypted and its keys were not exposed, so it is unintelligible to whoever got it \
             (GDPR Art. 34(3)(a))"
                .into(),
        );
    }
    let touched = |names: &[&str]| names.iter().filter(|c| f.categories.contains_key(**c)).count();
    let mut reasons = Vec::new();
    let special: Vec<&String> = f
        .special_categories
        .iter()
        .filter(|c| f.categories.contains_key(c.as_str()))
        .collect();
    let identifying = touched(IDENTIFYING);
    let sensitive = touched(SENSITIVE);
    let severity = if !special.is_empty() {
        reasons.push(format!(
            "special categories of data (GDPR Art. 9) were affected: {}",
            special.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ));
        "high"
    } else if sensitive > 0 && identifying > 0 {
        reasons.push("identifying data was affected together with demographic details or free-text notes".into());
        "high"
    } else if identifying > 0 {
        reasons.push("names or contact details were affected (phishing, spam, impersonation)".into());
        "medium"
    } else {
        reasons.push("no identifying or sensitive data was affected".into());
        "low"
    };
    let likelihood = if identifying >= 2 {
        reasons.push("the people are easy to identify and to reach from the data".into());
        "high"
    } else if identifying == 1 {
        "medium"
    } else {
        reasons.push("the people are hard to identify from the data alone".into());
        "low"
    };
    if f.subjects >= LARGE_SCALE {
        reasons.push(format!("large scale: {} people", f.subjects));
    }
    let rank = |s: &str| match s {
        "high" => 2,
        "medium" => 1,
        _ => 0,
    };
    let score = rank(severity) + rank(likelihood) + u8::from(f.subjects >= LARGE_SCALE);
    let level = match score {
        _ if !special.is_empty() && identifying > 0 => RiskLevel::High,
        0 | 1 => RiskLevel::Low,
        2 | 3 => RiskLevel::Medium,
        _ => RiskLevel::High,
    };
    RiskProposal {
        level,
        likelihood,
        severity,
        reasons,
    }
}

/// Whether the supervisory authority must be notified (GDPR Art. 33(1)).
#[must_use]
pub fn regulator_notification_required(level: RiskLevel) -> bool {
    level >= RiskLevel::Medium
}

/// Whether the people must be told (GDPR Art. 34(1)).
#[must_use]
pub fn subject_notification_required(level: RiskLevel) -> bool {
    level == RiskLevel::High
}

/// A data category affected, with how many people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CategoryCount {
    pub category: String,
    pub description: String,
    pub subjects: u64,
    /// A special category (GDPR Art. 9).
    pub special: bool,
}

/// The nature of the breach (Art. 33(3)(a)).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct BreachNature {
    pub title: String,
    pub description: String,
    pub category: BreachCategory,
    pub source: BreachSource,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub aware_at: DateTime<Utc>,
}

/// The notification to the supervisory authority, GDPR Art. 33(3): the
/// nature of the breach, the categories and approximate numbers of people
/// and records, the DPO's contact, the likely consequences and the
/// measures taken or proposed.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RegulatorNotification {
    pub incident_id: String,
    pub generated_at: DateTime<Utc>,
    pub controller: crate::inventory::Controller,
    /// Where more information can be obtained (Art. 33(3)(b)).
    pub dpo_contact: String,
    pub nature: BreachNature,
    pub subjects_affected: u64,
    pub records_affected: u64,
    pub data_categories: Vec<CategoryCount>,
    pub risk_level: Option<RiskLevel>,
    pub likely_consequences: Vec<String>,
    pub measures_taken: Vec<String>,
    pub measures_proposed: Option<String>,
    /// 72 hours after awareness.
    pub deadline: DateTime<Utc>,
    pub notified_at: Option<DateTime<Utc>>,
    /// Art. 33(1): why a notification is later than 72 hours.
    pub delay_reason: Option<String>,
    /// The scope the figures come from: its digest and the tree size of the
    /// signed audit head it was computed against.
    pub scope_digest: Option<String>,
    pub scope_tree_size: Option<u64>,
}

/// The likely consequences of a breach of these categories, in plain words.
#[must_use]
pub fn likely_consequences(categories: &[CategoryCount]) -> Vec<String> {
    let mut out = Vec::new();
    let has = |c: &str| categories.iter().any(|x| x.category == c);
    if categories.iter().any(|c| c.special) {
        out.push(
            "discrimination, damage to reputation and distress from the disclosure of special categories of data"
                .to_string(),
        );
    }
    if has("identity") {
        out.push("identity theft or fraud and impersonation of the people affected".into());
    }
    if has("contact") {
        out.push("unsolicited messages, phishing and other scams aimed at the people affected".into());
    }
    if has("address") {
        out.push("unwanted contact at home and fraud using the postal address".into());
    }
    if has("demographic") {
        out.push("identity fraud using dates of birth and other demographic details".into());
    }
    if has("free_text") {
        out.push("disclosure of whatever staff notes say about the people affected".into());
    }
    if out.is_empty() {
        out.push("no significant consequences are expected for the people affected".into());
    }
    out
}

impl RegulatorNotification {
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    fn blocks(&self) -> Vec<crate::ropa::Block> {
        use crate::ropa::{text, Block, Inline};
        let day = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
        let opt = |t: Option<DateTime<Utc>>| t.map_or_else(|| "not known".to_string(), day);
        let row = |k: &'static str, v: String| vec![vec![text(k)], vec![text(v)]];
        let n = &self.nature;
        let c = &self.controller;
        let mut b = vec![
            Block::Heading {
                level: 1,
                id: None,
                content: vec![text("Notification of a personal data breach (GDPR Art. 33)")],
            },
            Block::Para(vec![text(format!(
                "Incident {} — generated {}.",
                self.incident_id,
                day(self.generated_at)
            ))]),
            Block::Heading {
                level: 2,
                id: Some("controller".into()),
                content: vec![text("Controller and contact point")],
            },
            Block::Table {
                head: vec!["", ""],
                rows: vec![
                    row("Controller", c.name.clone()),
                    row("Address", format!("{}, {}", c.street_address, c.country)),
                    row("Contact", format!("{} — {} — {}", c.contact, c.email, c.phone)),
                    row("Data protection officer", self.dpo_contact.clone()),
                ],
            },
            Block::Heading {
                level: 2,
                id: Some("nature".into()),
                content: vec![text("Nature of the breach (Art. 33(3)(a))")],
            },
            Block::Table {
                head: vec!["", ""],
                rows: vec![
                    row("Title", n.title.clone()),
                    row("What happened", n.description.clone()),
                    row("Category", n.category.as_str().to_string()),
                    row("Source", n.source.as_str().replace('_', " ")),
                    row("Started", opt(n.started_at)),
                    row("Ended", opt(n.ended_at)),
                    row("Controller became aware", day(n.aware_at)),
                    row("People affected (approximate)", self.subjects_affected.to_string()),
                    row("Records affected (approximate)", self.records_affected.to_string()),
                    row(
                        "Risk to the people affected",
                        self.risk_level
                            .map_or("not assessed yet", RiskLevel::as_str)
                            .to_string(),
                    ),
                ],
            },
            Block::Heading {
                level: 2,
                id: Some("categories".into()),
                content: vec![text("Categories of personal data")],
            },
        ];
        if self.data_categories.is_empty() {
            b.push(Block::Para(vec![text("No categories recorded.")]));
        } else {
            b.push(Block::Table {
                head: vec!["Category", "Description", "People", "Special category"],
                rows: self
                    .data_categories
                    .iter()
                    .map(|c| {
                        vec![
                            vec![Inline::Code(c.category.clone())],
                            vec![text(c.description.clone())],
                            vec![text(c.subjects.to_string())],
                            vec![text(if c.special { "yes (Art. 9)" } else { "no" })],
                        ]
                    })
                    .collect(),
            });
        }
        b.push(Block::Heading {
            level: 2,
            id: Some("consequences".into()),
            content: vec![text("Likely consequences (Art. 33(3)(c))")],
        });
        b.push(Block::List(
            self.likely_consequences.iter().map(|s| vec![text(s.clone())]).collect(),
        ));
        b.push(Block::Heading {
            level: 2,
            id: Some("measures".into()),
            content: vec![text("Measures taken or proposed (Art. 33(3)(d))")],
        });
        let mut measures: Vec<Vec<Inline>> = self.measures_taken.iter().map(|s| vec![text(s.clone())]).collect();
        if let Some(p) = &self.measures_proposed {
            measures.push(vec![text(p.clone())]);
        }
        if measures.is_empty() {
            measures.push(vec![text("none recorded yet")]);
        }
        b.push(Block::List(measures));
        b.push(Block::Heading {
            level: 2,
            id: Some("timing".into()),
            content: vec![text("Timing (Art. 33(1))")],
        });
        let mut timing = vec![
            row("Deadline (72 hours after awareness)", day(self.deadline)),
            row("Notified", opt(self.notified_at)),
        ];
        if let Some(r) = &self.delay_reason {
            timing.push(row("Reasons for the delay", r.clone()));
        }
        if let (Some(d), Some(size)) = (&self.scope_digest, self.scope_tree_size) {
            timing.push(row(
                "Evidence",
                format!("scope digest {d}, computed from the signed audit log of {size} entries"),
            ));
        }
        b.push(Block::Table {
            head: vec!["", ""],
            rows: timing,
        });
        b
    }

    #[must_use]
    pub fn to_markdown(&self) -> String {
        crate::ropa::render_markdown(self.blocks())
    }

    #[must_use]
    pub fn to_html(&self) -> String {
        crate::ropa::render_html(
            "Notification of a personal data breach",
            &self.controller.name,
            self.blocks(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, TimeZone};

    #[test]
    fn status_moves_forward_only() {
        use IncidentStatus::*;
        assert!(Open.can_move_to(Assessed));
        assert!(Open.can_move_to(Closed));
        assert!(Assessed.can_move_to(Notified));
        assert!(!Contained.can_move_to(Assessed));
        assert!(!Closed.can_move_to(Closed));
        assert!(!Open.can_move_to(Open));
        assert_eq!(IncidentStatus::parse("contained"), Some(Contained));
        assert_eq!(IncidentStatus::parse("Contained"), None);
        assert_eq!(BreachCategory::choices(), "confidentiality, integrity or availability");
    }

    #[test]
    fn the_72_hours_are_elapsed_hours_across_a_dst_change() {
        // Friday 27 March 2026, 10:00 in Berlin (CET, +01:00); summer time
        // starts on Sunday 29 March at 02:00 (+02:00).
        let cet = FixedOffset::east_opt(3600).unwrap();
        let aware = cet.with_ymd_and_hms(2026, 3, 27, 10, 0, 0).unwrap().with_timezone(&Utc);
        let due = notification_due(BreachRegime::Gdpr, aware, None);
        assert_eq!(due, Utc.with_ymd_and_hms(2026, 3, 30, 9, 0, 0).unwrap());
        // = Monday 11:00 CEST, not the wall-clock 10:00 three days later.
        let cest = FixedOffset::east_opt(7200).unwrap();
        assert_eq!(due.with_timezone(&cest).format("%H:%M").to_string(), "11:00");
        assert_eq!((due - aware).num_hours(), 72);
    }

    #[test]
    fn us_deadlines_count_days() {
        let aware = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        assert_eq!(
            notification_due(BreachRegime::UsState, aware, Some(45)),
            Utc.with_ymd_and_hms(2026, 2, 15, 12, 0, 0).unwrap()
        );
    }

    #[test]
    fn clock_states() {
        let due = Utc.with_ymd_and_hms(2026, 1, 4, 0, 0, 0).unwrap();
        let at = |d, h| Utc.with_ymd_and_hms(2026, 1, d, h, 0, 0).unwrap();
        assert_eq!(ClockState::at(due, None, at(1, 0)), ClockState::OnTime);
        assert_eq!(ClockState::at(due, None, at(3, 1)), ClockState::DueSoon);
        assert_eq!(ClockState::at(due, None, at(4, 1)), ClockState::Overdue);
        assert_eq!(ClockState::at(due, Some(at(3, 0)), at(5, 0)), ClockState::Met);
        assert_eq!(ClockState::at(due, Some(at(4, 1)), at(5, 0)), ClockState::Late);
    }

    fn factors(subjects: u64, cats: &[&str]) -> RiskFactors {
        RiskFactors {
            subjects,
            categories: cats.iter().map(|c| ((*c).to_string(), subjects)).collect(),
            special_categories: vec!["health".into()],
            unintelligible: false,
        }
    }

    #[test]
    fn risk_follows_the_criteria() {
        assert_eq!(propose_risk(&factors(0, &[])).level, RiskLevel::Low);
        assert_eq!(propose_risk(&factors(5, &["business"])).level, RiskLevel::Low);
        // A few people's e-mail addresses: a risk, not a high one.
        assert_eq!(propose_risk(&factors(5, &["contact"])).level, RiskLevel::Medium);
        // Names and e-mail addresses: easy to identify and reach.
        assert_eq!(
            propose_risk(&factors(5, &["identity", "contact"])).level,
            RiskLevel::Medium
        );
        assert_eq!(
            propose_risk(&factors(5_000, &["identity", "contact"])).level,
            RiskLevel::High
        );
        assert_eq!(
            propose_risk(&factors(3, &["identity", "contact", "demographic"])).level,
            RiskLevel::High
        );
        assert_eq!(propose_risk(&factors(1, &["health", "contact"])).level, RiskLevel::High);
        let mut safe = factors(1_000_000, &["identity", "contact", "health"]);
        safe.unintelligible = true;
        let p = propose_risk(&safe);
        assert_eq!(p.level, RiskLevel::Low);
        assert!(p.reasons[0].contains("34(3)(a)"));
        assert!(regulator_notification_required(RiskLevel::Medium));
        assert!(!regulator_notification_required(RiskLevel::Low));
        assert!(subject_notification_required(RiskLevel::High));
        assert!(!subject_notification_required(RiskLevel::Medium));
    }
}
