//! What an access request must tell the person besides their data: GDPR
//! Art. 15(1)(a)–(h) and 15(2), and for CCPA requests the categories of
//! §1798.110(a). Derived from the data inventory (purposes, categories,
//! recipients, retention rules, the supervisory authority, automated
//! decisions) and from what is held about this person, so the statement
//! says what applies to them, not to everyone.

use serde_json::{json, Value};

use crate::inventory::{Inventory, RecipientKind, CONTACT};
use crate::retention::{rules_in_force, RetainedRecord};

/// How the person's record came to be (from the audit log's first
/// `contact.create` entry about them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Through the public form, confirmed from their own mailbox.
    FromThePerson,
    /// Entered by staff through the console or the API.
    Staff,
    /// Created by Steward itself (the command line acting as no user).
    Import,
    /// No entry says (e.g. the log was started later).
    Unknown,
}

impl Source {
    /// From the actor kind of the creating audit entry.
    #[must_use]
    pub fn from_actor_kind(kind: Option<&str>) -> Self {
        match kind {
            Some("anonymous") => Self::FromThePerson,
            Some("user" | "token") => Self::Staff,
            Some("system") => Self::Import,
            _ => Self::Unknown,
        }
    }

    fn describe(self) -> (Option<bool>, &'static str) {
        match self {
            Self::FromThePerson => (
                Some(true),
                "You gave us this data yourself, through our web form, and confirmed it from your mailbox.",
            ),
            Self::Staff => (
                None,
                "Our staff entered this data: from what you told us, or from business contacts and public sources such as your organisation's website.",
            ),
            Self::Import => (
                Some(false),
                "This data was loaded into our CRM from another of our systems or from a list we obtained.",
            ),
            Self::Unknown => (None, "Our records do not say where this data came from."),
        }
    }

    /// The CCPA category of source.
    fn ccpa_category(self) -> &'static str {
        match self {
            Self::FromThePerson => "directly from you",
            Self::Staff => "from you, through our staff, or from business contacts and publicly available sources",
            Self::Import => "from our other systems or from lists we obtained",
            Self::Unknown => "not recorded",
        }
    }
}

/// The rights a person has over their data (Art. 15(1)(e), and 20, 7(3)).
const RIGHTS: [(&str, &str, &str); 6] = [
    (
        "rectification",
        "Art. 16",
        "You may have inaccurate data corrected and incomplete data completed.",
    ),
    (
        "erasure",
        "Art. 17",
        "You may have your data erased where there is no longer a reason to keep it.",
    ),
    (
        "restriction",
        "Art. 18",
        "You may have the use of your data restricted while its accuracy or our use of it is contested.",
    ),
    (
        "objection",
        "Art. 21",
        "You may object to uses based on legitimate interests or a public task, and to direct marketing at any time.",
    ),
    (
        "portability",
        "Art. 20",
        "You may receive the data you gave us in a machine-readable form and have it sent to another controller.",
    ),
    (
        "withdraw_consent",
        "Art. 7(3)",
        "Where we rely on your consent you may withdraw it at any time; this does not affect what was done before.",
    ),
];

/// The Art. 15 statement for a person whose data is held for `purposes`,
/// with the contact fields `held` (names), created as `source`.
#[must_use]
pub fn information(inv: &Inventory, purposes: &[String], held: &[&str], source: Source) -> Value {
    let c = &inv.controller;
    let purposes_json: Vec<Value> = purposes
        .iter()
        .filter_map(|p| inv.purpose(p).map(|spec| (p, spec)))
        .map(|(p, spec)| {
            json!({"purpose": p, "description": spec.description, "lawful_basis": spec.lawful_basis.as_str()})
        })
        .collect();
    // Categories of the fields held, in the inventory's order.
    let mut categories = Vec::new();
    for (name, cat) in &inv.categories {
        let fields: Vec<&str> = held
            .iter()
            .copied()
            .filter(|f| inv.field(CONTACT, f).is_some_and(|spec| &spec.category == name))
            .collect();
        if !fields.is_empty() {
            categories.push(
                json!({"category": name, "description": cat.description, "special": cat.special, "fields": fields}),
            );
        }
    }
    // Recipients of the purposes held, each once with the purposes it serves.
    let mut recipients: Vec<(String, Vec<String>)> = Vec::new();
    for p in purposes {
        for r in inv.purpose(p).map(|s| s.recipients.as_slice()).unwrap_or_default() {
            match recipients.iter_mut().find(|(n, _)| n == r) {
                Some((_, ps)) => ps.push(p.clone()),
                None => recipients.push((r.clone(), vec![p.clone()])),
            }
        }
    }
    let recipients_json: Vec<Value> = recipients
        .iter()
        .map(|(name, ps)| {
            let decl = inv.recipients.get(name);
            json!({"name": name, "kind": decl.map(|d| d.kind.as_str()), "country": decl.and_then(|d| d.country.clone()),
                   "third_country": decl.is_some_and(crate::inventory::Recipient::third_country),
                   "safeguards": decl.and_then(|d| d.safeguards.clone()), "purposes": ps})
        })
        .collect();
    let mut transfers: Vec<Value> = recipients
        .iter()
        .filter_map(|(name, _)| inv.recipients.get(name).map(|d| (name, d)))
        .filter(|(_, d)| d.third_country())
        .map(|(name, d)| json!({"recipient": name, "country": d.country, "safeguards": d.safeguards}))
        .collect();
    for p in purposes {
        for t in inv.purpose(p).map(|s| s.transfers.as_slice()).unwrap_or_default() {
            transfers.push(json!({"purpose": p, "declared": t}));
        }
    }
    // Storage: the contact rules in force that apply to this person.
    let storage: Vec<Value> = rules_in_force(inv)
        .into_iter()
        .filter(|r| r.record == RetainedRecord::Contact)
        .filter(|r| r.purpose.as_ref().is_none_or(|p| purposes.contains(p)))
        .map(|r| {
            json!({"rule": r.name, "purpose": r.purpose, "days": r.days, "from": r.from.as_str(),
                   "then": r.action.as_str(), "description": r.description})
        })
        .collect();
    let (from_you, source_text) = source.describe();
    let auth = &inv.supervisory_authority;
    let decisions: Vec<Value> = inv
        .automated_decisions
        .iter()
        .map(|d| json!({"name": d.name, "logic": d.logic, "consequences": d.consequences}))
        .collect();
    json!({
        "controller": {"name": c.name, "contact": c.contact, "address": c.street_address, "country": c.country,
                       "email": c.email, "dpo_email": c.dpo_email},
        "purposes": purposes_json,
        "categories": categories,
        "recipients": recipients_json,
        "storage": {
            "criteria": "We keep your data while any of the purposes above needs it: each rule's period runs from its start event, and the longest one that applies decides. A legal hold or a legal obligation can keep data longer; then only what it needs is kept.",
            "rules": storage,
        },
        "rights": RIGHTS.iter().map(|(right, article, text)| json!({"right": right, "article": article, "text": text})).collect::<Vec<_>>(),
        "complaint": {
            "text": "You have the right to lodge a complaint with a supervisory authority, in particular in the country where you live or work or where an infringement took place (GDPR Art. 77).",
            "authority": {"name": auth.name, "address": auth.address, "url": auth.url},
        },
        "source": {"collected_from_you": from_you, "text": source_text},
        "automated_decision_making": {
            "exists": !decisions.is_empty(),
            "decisions": decisions,
            "text": if inv.automated_decisions.is_empty() {
                "none: no decision about you is taken by automated means alone"
            } else {
                "the decisions listed are taken by automated means; you may ask for a person to review one (GDPR Art. 22(3))"
            },
        },
        "transfers": transfers,
    })
}

/// The categories a CCPA access request (right to know) must give, from
/// the same facts (§1798.110(a)(1)–(4); the specific pieces are the
/// bundle's `personal_data`).
#[must_use]
pub fn ccpa(inv: &Inventory, purposes: &[String], held: &[&str], source: Source) -> Value {
    let categories: Vec<&str> = inv
        .categories
        .iter()
        .filter(|(name, _)| {
            held.iter()
                .any(|f| inv.field(CONTACT, f).is_some_and(|spec| &spec.category == *name))
        })
        .map(|(_, c)| c.description.as_str())
        .collect();
    let business: Vec<&str> = purposes
        .iter()
        .filter_map(|p| inv.purpose(p))
        .map(|s| s.description.as_str())
        .collect();
    let mut third: Vec<Value> = Vec::new();
    for p in purposes {
        for r in inv.purpose(p).map(|s| s.recipients.as_slice()).unwrap_or_default() {
            let kind = inv.recipients.get(r).map(|d| d.kind);
            if kind.is_some_and(|k| k != RecipientKind::Staff) && !third.iter().any(|t| t["name"] == r.as_str()) {
                third.push(json!({"name": r, "kind": kind.map(RecipientKind::as_str)}));
            }
        }
    }
    json!({
        "categories_of_personal_information": categories,
        "categories_of_sources": [source.ccpa_category()],
        "business_or_commercial_purposes": business,
        "categories_of_third_parties": third,
        "specific_pieces": "personal_data",
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn inv() -> Inventory {
        Inventory::default_inventory()
    }

    #[test]
    fn names_what_applies_to_the_person() {
        let purposes = vec!["sales".to_string(), "marketing_email".to_string()];
        let i = information(&inv(), &purposes, &["email", "given_name", "job_title"], Source::Staff);
        let cats: Vec<&str> = i["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["category"].as_str().unwrap())
            .collect();
        assert_eq!(cats, ["identity", "contact", "professional"]);
        let names: Vec<&str> = i["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sales staff", "marketing staff", "e-mail delivery processor"]);
        assert_eq!(i["recipients"][2]["third_country"], true);
        assert_eq!(i["transfers"][0]["country"], "US");
        assert!(i["transfers"][0]["safeguards"].as_str().unwrap().contains("Art. 46"));
        let rules: Vec<&str> = i["storage"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["purpose"].as_str().unwrap_or("*"))
            .collect();
        assert!(
            rules.contains(&"sales") && rules.contains(&"marketing_email"),
            "{rules:?}"
        );
        assert!(!rules.contains(&"analytics"), "rules of purposes not held are left out");
        let rights: Vec<&str> = i["rights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["right"].as_str().unwrap())
            .collect();
        for r in ["rectification", "erasure", "restriction", "objection"] {
            assert!(rights.contains(&r));
        }
        assert!(i["complaint"]["authority"]["name"]
            .as_str()
            .unwrap()
            .contains("supervisory authority"));
        assert_eq!(i["automated_decision_making"]["exists"], false);
        assert!(i["automated_decision_making"]["text"]
            .as_str()
            .unwrap()
            .starts_with("none"));
        assert_eq!(i["source"]["collected_from_you"], Value::Null);
        assert_eq!(
            information(&inv(), &purposes, &[], Source::FromThePerson)["source"]["collected_from_you"],
            true
        );
    }

    #[test]
    fn ccpa_categories() {
        let purposes = vec!["marketing_email".to_string()];
        let c = ccpa(&inv(), &purposes, &["email"], Source::Import);
        assert_eq!(c["categories_of_personal_information"].as_array().unwrap().len(), 1);
        assert_eq!(
            c["categories_of_sources"][0],
            "from our other systems or from lists we obtained"
        );
        assert_eq!(
            c["business_or_commercial_purposes"][0],
            "Sending marketing e-mail to people who agreed to it"
        );
        assert_eq!(
            c["categories_of_third_parties"],
            json!([{"name": "e-mail delivery processor", "kind": "processor"}])
        );
    }

    #[test]
    fn declarations_are_checked() {
        let text = include_str!("default_inventory.toml").replace(
            "safeguards = \"standard contractual clauses (GDPR Art. 46(2)(c)) with the processor\"\n",
            "",
        );
        let err = Inventory::from_toml_str(&text).unwrap_err();
        assert!(
            err.problems
                .iter()
                .any(|p| p.contains("e-mail delivery processor") && p.contains("safeguards")),
            "{err:?}"
        );
        let text = format!(
            "{}\n[[automated_decisions]]\nname = \"credit limit\"\nlogic = \"a score\"\nconsequences = \"a deposit\"\n",
            include_str!("default_inventory.toml")
        );
        let with = Inventory::from_toml_str(&text).unwrap();
        let i = information(&with, &["sales".to_string()], &[], Source::Unknown);
        assert_eq!(i["automated_decision_making"]["exists"], true);
        assert_eq!(i["automated_decision_making"]["decisions"][0]["name"], "credit limit");
    }
}
