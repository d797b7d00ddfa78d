//! Retention schedules (GDPR Art. 5(1)(e), storage limitation): how long
//! each kind of record is kept, from which event, and what happens at the
//! end — as declared in the data inventory's `[[retention]]` rules, or, when
//! it declares none, derived from the record types' and purposes'
//! `retention_days`. Pure functions of explicit dates (time is an input).
//!
//! A contact is kept while any of its purposes still justifies it: its end
//! is the *latest* end over the rules of its purposes (a rule without a
//! purpose applies to every contact). A legal-obligation purpose keeps only
//! the records it needs; the rest is deleted at the earlier end, as an
//! erasure narrowed by a legal obligation does.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::inventory::{Inventory, LawfulBasis, CONTACT, DEAL, INTERACTION};

/// The kinds of record a schedule can govern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetainedRecord {
    Contact,
    Interaction,
    Deal,
    ConsentRecord,
    DsrCase,
    AuditMetadata,
    ExportBundle,
    OutboxMail,
    Incident,
}

impl RetainedRecord {
    pub const ALL: [Self; 9] = [
        Self::Contact,
        Self::Interaction,
        Self::Deal,
        Self::ConsentRecord,
        Self::DsrCase,
        Self::AuditMetadata,
        Self::ExportBundle,
        Self::OutboxMail,
        Self::Incident,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Contact => "contact",
            Self::Interaction => "interaction",
            Self::Deal => "deal",
            Self::ConsentRecord => "consent_record",
            Self::DsrCase => "dsr_case",
            Self::AuditMetadata => "audit_metadata",
            Self::ExportBundle => "export_bundle",
            Self::OutboxMail => "outbox_mail",
            Self::Incident => "incident",
        }
    }

    /// The events a period of this record may run from.
    #[must_use]
    pub fn events(self) -> &'static [RetentionEvent] {
        use RetentionEvent::*;
        match self {
            Self::Contact => &[Created, LastUpdate, LastInteraction, DealClosed, ConsentWithdrawn],
            Self::Interaction => &[Created],
            Self::Deal => &[Created, LastUpdate, DealClosed],
            Self::ConsentRecord => &[Created, ConsentWithdrawn],
            Self::DsrCase | Self::Incident => &[Created, RequestClosed],
            Self::AuditMetadata | Self::ExportBundle | Self::OutboxMail => &[Created],
        }
    }

    /// What may happen to it at the end.
    #[must_use]
    pub fn actions(self) -> &'static [RetentionAction] {
        use RetentionAction::*;
        match self {
            Self::Contact | Self::Interaction | Self::Deal => &[Erase, Anonymise, Review],
            Self::AuditMetadata => &[Anonymise, Review],
            _ => &[Erase, Review],
        }
    }
}

/// The event a retention period runs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetentionEvent {
    Created,
    LastUpdate,
    /// The contact's latest interaction (else its creation).
    LastInteraction,
    /// The end of the contract: the contact's or deal's last deal closed.
    DealClosed,
    /// The consent for the rule's purpose was withdrawn.
    ConsentWithdrawn,
    /// The request (or incident) was closed.
    RequestClosed,
}

impl RetentionEvent {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::LastUpdate => "last_update",
            Self::LastInteraction => "last_interaction",
            Self::DealClosed => "deal_closed",
            Self::ConsentWithdrawn => "consent_withdrawn",
            Self::RequestClosed => "request_closed",
        }
    }
}

/// What happens when a period ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetentionAction {
    /// Delete, and crypto-shred a subject's key.
    Erase,
    /// Keep aggregate-safe fields (country, a deal's amount), drop the
    /// subject link and everything personal.
    Anonymise,
    /// Put it on the privacy officer's review list.
    Review,
}

impl RetentionAction {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Erase => "erase",
            Self::Anonymise => "anonymise",
            Self::Review => "review",
        }
    }
}

/// One `[[retention]]` rule of the inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// A short identifier, cited by every deletion it causes.
    pub name: String,
    pub record: RetainedRecord,
    /// Only records (contacts) collected for this purpose; none: every one.
    #[serde(default)]
    pub purpose: Option<String>,
    pub days: u32,
    pub from: RetentionEvent,
    pub action: RetentionAction,
    /// Keep a proof of erasure (keyed hash of the e-mail address), so the
    /// person is not silently re-created; contacts that are erased only.
    #[serde(default)]
    pub keep_proof: bool,
    #[serde(default)]
    pub description: Option<String>,
}

/// The longest period a rule may set (100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

fn is_rule_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The problems of the declared rules (appended to the inventory's).
pub fn validate_rules(inv: &Inventory, problems: &mut Vec<String>) {
    let mut names = BTreeSet::new();
    for r in &inv.retention {
        let at = format!("retention rule '{}'", r.name);
        if !is_rule_name(&r.name) {
            problems.push(format!(
                "{at}: names are 1 to 64 lower-case letters, digits, '-' and '_'"
            ));
        }
        if !names.insert(r.name.as_str()) {
            problems.push(format!("{at} is declared twice"));
        }
        if r.days == 0 || r.days > MAX_RETENTION_DAYS {
            problems.push(format!("{at}: days must be between 1 and {MAX_RETENTION_DAYS}"));
        }
        if !r.record.events().contains(&r.from) {
            let allowed: Vec<&str> = r.record.events().iter().map(|e| e.as_str()).collect();
            problems.push(format!(
                "{at}: a {} period cannot run from '{}' (allowed: {})",
                r.record.as_str(),
                r.from.as_str(),
                allowed.join(", ")
            ));
        }
        if !r.record.actions().contains(&r.action) {
            let done = match r.action {
                RetentionAction::Erase => "erased",
                RetentionAction::Anonymise => "anonymised",
                RetentionAction::Review => "reviewed",
            };
            problems.push(format!("{at}: a {} cannot be {done}", r.record.as_str()));
        }
        match &r.purpose {
            Some(p) if !inv.purposes.contains_key(p) => {
                problems.push(format!("{at} names unknown purpose '{p}'"));
            }
            Some(_) if !matches!(r.record, RetainedRecord::Contact | RetainedRecord::ConsentRecord) => {
                problems.push(format!(
                    "{at}: only contact and consent_record rules may be limited to a purpose"
                ));
            }
            _ => {}
        }
        if r.from == RetentionEvent::ConsentWithdrawn && r.purpose.is_none() {
            problems.push(format!("{at}: a period from consent_withdrawn must name the purpose"));
        }
        if r.keep_proof && !(r.record == RetainedRecord::Contact && r.action == RetentionAction::Erase) {
            problems.push(format!("{at}: keep_proof applies to contacts that are erased"));
        }
    }
}

/// The rules in force: the declared ones, or when none are declared, the
/// periods the record types and purposes name (contacts, interactions and
/// deals are erased at the end of their record type's period; a purpose's
/// own period applies to the contacts collected for it, from their last
/// interaction).
#[must_use]
pub fn rules_in_force(inv: &Inventory) -> Vec<RetentionRule> {
    if !inv.retention.is_empty() {
        return inv.retention.clone();
    }
    let mut out = Vec::new();
    for (rt, record) in [
        (CONTACT, RetainedRecord::Contact),
        (INTERACTION, RetainedRecord::Interaction),
        (DEAL, RetainedRecord::Deal),
    ] {
        if let Some(t) = inv.record_type(rt) {
            out.push(RetentionRule {
                name: format!("{rt}-default"),
                record,
                purpose: None,
                days: t.retention_days,
                from: match t.retention_trigger {
                    crate::inventory::RetentionTrigger::Created => RetentionEvent::Created,
                    crate::inventory::RetentionTrigger::LastUpdate => RetentionEvent::LastUpdate,
                },
                action: RetentionAction::Erase,
                keep_proof: false,
                description: Some(format!("the '{rt}' record type's retention_days")),
            });
        }
    }
    for (name, p) in &inv.purposes {
        if let (Some(days), true) = (p.retention_days, p.collection) {
            out.push(RetentionRule {
                name: format!("{name}-purpose"),
                record: RetainedRecord::Contact,
                purpose: Some(name.clone()),
                days,
                from: RetentionEvent::LastInteraction,
                action: RetentionAction::Erase,
                keep_proof: false,
                description: Some(format!("the '{name}' purpose's retention_days")),
            });
        }
    }
    out
}

/// What is known about one contact to compute its end.
#[derive(Debug, Clone, Default)]
pub struct ContactFacts {
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    /// The latest interaction, if any.
    pub last_interaction: Option<DateTime<Utc>>,
    /// The latest deal closed (won or lost), if any; an open deal keeps the
    /// contract running, so `deal_closed` rules do not end while one is open.
    pub last_deal_closed: Option<DateTime<Utc>>,
    pub open_deal: bool,
    /// The collection purposes.
    pub purposes: Vec<String>,
    /// When consent for a purpose was withdrawn (and not given again).
    pub withdrawn: Vec<(String, DateTime<Utc>)>,
}

/// When and why a contact's retention ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactEnd {
    /// The latest end over the rules that apply: the contact is kept until then.
    pub at: DateTime<Utc>,
    /// The rule that ends last (the one the deletion cites).
    pub rule: String,
    pub action: RetentionAction,
    pub keep_proof: bool,
    /// Legal-obligation purposes whose own rule ends later than the others:
    /// at `narrow_at` everything they do not need goes; the rest stays
    /// until `at`.
    pub narrowed_by: Vec<String>,
    pub narrow_at: Option<DateTime<Utc>>,
    /// The rule whose end starts the narrowing (the last of the others).
    pub narrow_rule: Option<String>,
}

fn event_time(rule: &RetentionRule, f: &ContactFacts) -> Option<DateTime<Utc>> {
    match rule.from {
        RetentionEvent::Created => Some(f.created),
        RetentionEvent::LastUpdate => Some(f.updated.max(f.created)),
        RetentionEvent::LastInteraction => Some(f.last_interaction.unwrap_or(f.created).max(f.created)),
        // While a deal is open the contract runs: no end yet.
        RetentionEvent::DealClosed if f.open_deal => None,
        RetentionEvent::DealClosed => Some(f.last_deal_closed.unwrap_or(f.created)),
        RetentionEvent::ConsentWithdrawn => {
            let p = rule.purpose.as_deref()?;
            f.withdrawn.iter().filter(|(q, _)| q == p).map(|(_, t)| *t).max()
        }
        RetentionEvent::RequestClosed => None,
    }
}

/// The end of a contact's retention under `rules`, or `None` while some
/// applicable rule has not started running (an open deal, say) or none
/// applies.
#[must_use]
pub fn contact_end(inv: &Inventory, rules: &[RetentionRule], f: &ContactFacts) -> Option<ContactEnd> {
    let applicable: Vec<&RetentionRule> = rules
        .iter()
        .filter(|r| r.record == RetainedRecord::Contact)
        .filter(|r| r.purpose.as_ref().is_none_or(|p| f.purposes.contains(p)))
        .collect();
    if applicable.is_empty() {
        return None;
    }
    let mut ends = Vec::with_capacity(applicable.len());
    for r in &applicable {
        // A rule whose event has not happened yet keeps the contact.
        let start = event_time(r, f)?;
        ends.push((start + Duration::days(i64::from(r.days)), *r));
    }
    let legal = |r: &RetentionRule| {
        r.purpose
            .as_deref()
            .and_then(|p| inv.purpose(p))
            .is_some_and(|p| p.lawful_basis == LawfulBasis::LegalObligation)
    };
    let (at, last) = ends.iter().max_by_key(|(t, r)| (*t, r.name.clone()))?;
    let other = ends
        .iter()
        .filter(|(_, r)| !legal(r))
        .max_by_key(|(t, r)| (*t, r.name.clone()));
    let others = other.map(|(t, _)| *t);
    let narrowed_by: Vec<String> = ends
        .iter()
        .filter(|(t, r)| legal(r) && others.is_some_and(|o| *t > o))
        .filter_map(|(_, r)| r.purpose.clone())
        .collect();
    Some(ContactEnd {
        at: *at,
        rule: last.name.clone(),
        action: last.action,
        keep_proof: last.keep_proof,
        narrow_at: (!narrowed_by.is_empty()).then_some(others).flatten(),
        narrow_rule: other.filter(|_| !narrowed_by.is_empty()).map(|(_, r)| r.name.clone()),
        narrowed_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::days(i64::from(d))
    }

    fn rule(name: &str, purpose: Option<&str>, days: u32, from: RetentionEvent) -> RetentionRule {
        RetentionRule {
            name: name.into(),
            record: RetainedRecord::Contact,
            purpose: purpose.map(str::to_string),
            days,
            from,
            action: RetentionAction::Erase,
            keep_proof: false,
            description: None,
        }
    }

    fn inventory_with(extra: &str) -> Result<Inventory, crate::InventoryError> {
        Inventory::from_toml_str(&format!("{}\n{extra}", crate::inventory::DEFAULT_INVENTORY_TOML))
    }

    #[test]
    fn the_default_inventory_derives_its_rules() {
        let inv = Inventory::default_inventory();
        let rules = rules_in_force(&inv);
        assert!(rules.iter().any(|r| r.name == "contact-default" && r.days == 1095));
        assert!(rules.iter().any(|r| r.purpose.as_deref() == Some("sales")));
        let mut problems = Vec::new();
        validate_rules(&inv, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn the_record_of_processing_shows_the_schedules() {
        let inv = inventory_with(
            "[[retention]]\nname = \"sales-contacts\"\nrecord = \"contact\"\npurpose = \"sales\"\ndays = 730\nfrom = \"last_interaction\"\naction = \"erase\"\nkeep_proof = true\n",
        )
        .unwrap();
        let r = crate::ropa::record_of_processing(&inv, day(0));
        assert_eq!(r.retention_schedules.len(), 1);
        let md = r.to_markdown();
        assert!(
            md.contains("Retention schedules") && md.contains("`sales-contacts`"),
            "{md}"
        );
        assert!(md.contains("proof of erasure kept"));
        assert!(r.to_html().contains("sales-contacts"));
    }

    #[test]
    fn declared_rules_are_validated() {
        let err = inventory_with(
            "[[retention]]\nname = \"Bad Name\"\nrecord = \"deal\"\ndays = 0\nfrom = \"consent_withdrawn\"\naction = \"erase\"\npurpose = \"nope\"\nkeep_proof = true\n",
        )
        .unwrap_err()
        .to_string();
        for part in [
            "names are 1 to 64",
            "days must be between",
            "cannot run from 'consent_withdrawn'",
            "unknown purpose 'nope'",
            "keep_proof applies",
        ] {
            assert!(err.contains(part), "{part}: {err}");
        }
        let ok = inventory_with(
            "[[retention]]\nname = \"sales-contacts\"\nrecord = \"contact\"\npurpose = \"sales\"\ndays = 730\nfrom = \"last_interaction\"\naction = \"erase\"\nkeep_proof = true\n",
        )
        .unwrap();
        assert_eq!(rules_in_force(&ok).len(), 1, "declared rules replace the derived ones");
    }

    #[test]
    fn a_contact_is_kept_while_any_purpose_justifies_it() {
        let inv = Inventory::default_inventory();
        let rules = vec![
            rule("sales", Some("sales"), 100, RetentionEvent::LastInteraction),
            rule("support", Some("customer_service"), 300, RetentionEvent::Created),
        ];
        let mut f = ContactFacts {
            created: day(0),
            updated: day(0),
            purposes: vec!["sales".into()],
            ..ContactFacts::default()
        };
        assert_eq!(contact_end(&inv, &rules, &f).unwrap().at, day(100));
        // A later interaction extends it.
        f.last_interaction = Some(day(50));
        assert_eq!(contact_end(&inv, &rules, &f).unwrap().at, day(150));
        // A second purpose with a later end keeps it longer.
        f.purposes.push("customer_service".into());
        let end = contact_end(&inv, &rules, &f).unwrap();
        assert_eq!((end.at, end.rule.as_str()), (day(300), "support"));
        // No rule for its purposes: no end.
        f.purposes = vec!["analytics".into()];
        assert!(contact_end(&inv, &rules, &f).is_none());
    }

    #[test]
    fn an_open_deal_keeps_the_contract_running() {
        let inv = Inventory::default_inventory();
        let rules = vec![rule("contract", None, 30, RetentionEvent::DealClosed)];
        let mut f = ContactFacts {
            created: day(0),
            updated: day(0),
            open_deal: true,
            ..ContactFacts::default()
        };
        assert!(contact_end(&inv, &rules, &f).is_none());
        f.open_deal = false;
        f.last_deal_closed = Some(day(10));
        assert_eq!(contact_end(&inv, &rules, &f).unwrap().at, day(40));
    }

    #[test]
    fn a_legal_obligation_purpose_narrows_the_deletion() {
        let inv = inventory_with(
            "[purposes.invoicing]\ndescription = \"Invoices kept for tax law\"\nlawful_basis = \"legal_obligation\"\ncollection = true\n[purposes.invoicing.needs]\ncontact = [\"given_name\", \"family_name\"]\n",
        )
        .unwrap();
        let rules = vec![
            rule("sales", Some("sales"), 100, RetentionEvent::Created),
            rule("tax", Some("invoicing"), 3650, RetentionEvent::Created),
        ];
        let f = ContactFacts {
            created: day(0),
            updated: day(0),
            purposes: vec!["sales".into(), "invoicing".into()],
            ..ContactFacts::default()
        };
        let end = contact_end(&inv, &rules, &f).unwrap();
        assert_eq!(end.at, day(3650));
        assert_eq!(end.narrowed_by, ["invoicing"]);
        assert_eq!(end.narrow_at, Some(day(100)));
        assert_eq!(end.narrow_rule.as_deref(), Some("sales"));
    }
}
