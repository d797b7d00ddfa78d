//! What an access request must tell the person besides their data: GDPR
//! Art. 15(1)(a)–(h) and 15(2), and for CCPA requests the categories of
//! §1798.110(a). Derived from the data inventory (purposes, categories,
//! recipients, retention rules, the supervisory authority, automated
//! decisions) and from what is held about this person, so the statement
//! says what applies to them, not to everyone.

use serde::{Deserialize, Serialize};

use crate::inventory::{Inventory, LawfulBasis, RecipientKind, CONTACT};
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

/// What an access export must tell the person besides their data (GDPR
/// Art. 15(1)(a)–(h) and 15(2)): the `information` member of the export
/// bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "Art15Information")]
pub struct Art15Information {
    /// Who is responsible for the data (Art. 15(1), 13(1)(a)–(b)).
    pub controller: Art15Controller,
    /// The purposes the data is held for, with their lawful basis (Art. 15(1)(a)).
    pub purposes: Vec<Art15Purpose>,
    /// The categories of the fields held, in the inventory's order (Art. 15(1)(b)).
    pub categories: Vec<Art15Category>,
    /// Who receives the data, each once with the purposes it serves (Art. 15(1)(c)).
    pub recipients: Vec<Art15Recipient>,
    /// How long the data is kept (Art. 15(1)(d)).
    pub storage: Art15Storage,
    /// The rights the person has (Art. 15(1)(e), 16–21, 7(3)).
    pub rights: Vec<Art15Right>,
    /// The right to complain to a supervisory authority (Art. 15(1)(f), 77).
    pub complaint: Art15Complaint,
    /// Where the data came from (Art. 15(1)(g)).
    pub source: Art15Source,
    /// Automated decision-making, including profiling (Art. 15(1)(h), 22).
    pub automated_decision_making: Art15AutomatedDecisionMaking,
    /// Transfers to third countries and their safeguards (Art. 15(2), 46).
    pub transfers: Vec<Art15Transfer>,
}

/// The controller, as the inventory's `[controller]` declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Art15Controller {
    pub name: String,
    /// Whom to write to.
    pub contact: String,
    /// The postal address.
    pub address: String,
    pub country: String,
    pub email: String,
    /// The data protection officer's address, when one is designated.
    pub dpo_email: Option<String>,
}

/// One purpose the person's data is held for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Art15Purpose {
    /// The purpose's name in the inventory.
    pub purpose: String,
    pub description: String,
    /// The GDPR Art. 6(1) basis the purpose relies on.
    pub lawful_basis: LawfulBasis,
}

/// One category of personal data held about the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Art15Category {
    /// The category's name in the inventory.
    pub category: String,
    pub description: String,
    /// A special category (GDPR Art. 9).
    pub special: bool,
    /// The contact fields held in this category.
    pub fields: Vec<String>,
}

/// One recipient of the person's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Art15Recipient {
    pub name: String,
    /// The declared kind; null when the recipient is not declared.
    #[schemars(extend("enum" = ["staff", "processor", "third_party", "authority", null]))]
    pub kind: Option<String>,
    /// ISO 3166-1 alpha-2 country, when declared.
    pub country: Option<String>,
    /// Outside the EEA.
    pub third_country: bool,
    /// The safeguards of a transfer outside the EEA, when declared.
    pub safeguards: Option<String>,
    /// The purposes (held) it receives data for.
    pub purposes: Vec<String>,
}

/// How long the data is kept, and by which rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Art15Storage {
    /// How the period is decided.
    pub criteria: String,
    /// The contact retention rules in force that apply to the person.
    pub rules: Vec<Art15StorageRule>,
}

/// One retention rule that applies to the person's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Art15StorageRule {
    /// The rule's name.
    pub rule: String,
    /// The purpose it is limited to; null: every contact.
    pub purpose: Option<String>,
    /// The period, in days.
    pub days: u32,
    /// The event the period runs from.
    #[schemars(extend("enum" = ["created", "last_update", "last_interaction", "deal_closed", "consent_withdrawn", "request_closed"]))]
    pub from: String,
    /// What happens at its end.
    #[schemars(extend("enum" = ["erase", "anonymise", "review"]))]
    pub then: String,
    pub description: Option<String>,
}

/// One right the person has over their data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Art15Right {
    #[schemars(extend("enum" = ["rectification", "erasure", "restriction", "objection", "portability", "withdraw_consent"]))]
    pub right: String,
    /// The GDPR article that grants it.
    pub article: String,
    pub text: String,
}

/// The right to lodge a complaint, and with whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Art15Complaint {
    pub text: String,
    pub authority: Art15Authority,
}

/// The supervisory authority, as the inventory declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Art15Authority {
    pub name: String,
    pub address: String,
    pub url: Option<String>,
}

/// Where the person's data came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Art15Source {
    /// True: from the person; false: not from them; null: not known (or
    /// partly from them).
    pub collected_from_you: Option<bool>,
    pub text: String,
}

/// Whether decisions about the person are taken by automated means alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Art15AutomatedDecisionMaking {
    /// Whether any is declared.
    pub exists: bool,
    pub decisions: Vec<Art15Decision>,
    pub text: String,
}

/// One declared automated decision (`[[automated_decisions]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Art15Decision {
    pub name: String,
    /// The logic involved.
    pub logic: String,
    /// Its significance and envisaged consequences.
    pub consequences: String,
}

/// A transfer to a third country: to a declared recipient outside the
/// EEA, or one a purpose declares in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Art15Transfer {
    /// Data reaches a recipient outside the EEA.
    Recipient {
        recipient: String,
        country: Option<String>,
        safeguards: Option<String>,
    },
    /// A transfer a purpose declares (`transfers` of the purpose).
    Declared { purpose: String, declared: String },
}

/// The Art. 15 statement for a person whose data is held for `purposes`,
/// with the contact fields `held` (names), created as `source`.
#[must_use]
pub fn information(inv: &Inventory, purposes: &[String], held: &[&str], source: Source) -> Art15Information {
    let c = &inv.controller;
    let purposes_out: Vec<Art15Purpose> = purposes
        .iter()
        .filter_map(|p| inv.purpose(p).map(|spec| (p, spec)))
        .map(|(p, spec)| Art15Purpose {
            purpose: p.clone(),
            description: spec.description.clone(),
            lawful_basis: spec.lawful_basis,
        })
        .collect();
    // Categories of the fields held, in the inventory's order.
    let mut categories = Vec::new();
    for (name, cat) in &inv.categories {
        let fields: Vec<String> = held
            .iter()
            .copied()
            .filter(|f| inv.field(CONTACT, f).is_some_and(|spec| &spec.category == name))
            .map(String::from)
            .collect();
        if !fields.is_empty() {
            categories.push(Art15Category {
                category: name.clone(),
                description: cat.description.clone(),
                special: cat.special,
                fields,
            });
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
    let recipients_out: Vec<Art15Recipient> = recipients
        .iter()
        .map(|(name, ps)| {
            let decl = inv.recipients.get(name);
            Art15Recipient {
                name: name.clone(),
                kind: decl.map(|d| d.kind.as_str().to_string()),
                country: decl.and_then(|d| d.country.clone()),
                third_country: decl.is_some_and(crate::inventory::Recipient::third_country),
                safeguards: decl.and_then(|d| d.safeguards.clone()),
                purposes: ps.clone(),
            }
        })
        .collect();
    let mut transfers: Vec<Art15Transfer> = recipients
        .iter()
        .filter_map(|(name, _)| inv.recipients.get(name).map(|d| (name, d)))
        .filter(|(_, d)| d.third_country())
        .map(|(name, d)| Art15Transfer::Recipient {
            recipient: name.clone(),
            country: d.country.clone(),
            safeguards: d.safeguards.clone(),
        })
        .collect();
    for p in purposes {
        for t in inv.purpose(p).map(|s| s.transfers.as_slice()).unwrap_or_default() {
            transfers.push(Art15Transfer::Declared {
                purpose: p.clone(),
                declared: t.clone(),
            });
        }
    }
    // Storage: the contact rules in force that apply to this person.
    let storage: Vec<Art15StorageRule> = rules_in_force(inv)
        .into_iter()
        .filter(|r| r.record == RetainedRecord::Contact)
        .filter(|r| r.purpose.as_ref().is_none_or(|p| purposes.contains(p)))
        .map(|r| Art15StorageRule {
            from: r.from.as_str().to_string(),
            then: r.action.as_str().to_string(),
            rule: r.name,
            purpose: r.purpose,
            days: r.days,
            description: r.description,
        })
        .collect();
    let (from_you, source_text) = source.describe();
    let auth = &inv.supervisory_authority;
    let decisions: Vec<Art15Decision> = inv
        .automated_decisions
        .iter()
        .map(|d| Art15Decision {
            name: d.name.clone(),
            logic: d.logic.clone(),
            consequences: d.consequences.clone(),
        })
        .collect();
    Art15Information {
        controller: Art15Controller {
            name: c.name.clone(),
            contact: c.contact.clone(),
            address: c.street_address.clone(),
            country: c.country.clone(),
            email: c.email.clone(),
            dpo_email: c.dpo_email.clone(),
        },
        purposes: purposes_out,
        categories,
        recipients: recipients_out,
        storage: Art15Storage {
            criteria: "We keep your data while any of the purposes above needs it: each rule's period runs from its start event, and the longest one that applies decides. A legal hold or a legal obligation can keep data longer; then only what it needs is kept.".into(),
            rules: storage,
        },
        rights: RIGHTS
            .iter()
            .map(|(right, article, text)| Art15Right {
                right: (*right).into(),
                article: (*article).into(),
                text: (*text).into(),
            })
            .collect(),
        complaint: Art15Complaint {
            text: "You have the right to lodge a complaint with a supervisory authority, in particular in the country where you live or work or where an infringement took place (GDPR Art. 77).".into(),
            authority: Art15Authority {
                name: auth.name.clone(),
                address: auth.address.clone(),
                url: auth.url.clone(),
            },
        },
        source: Art15Source {
            collected_from_you: from_you,
            text: source_text.into(),
        },
        automated_decision_making: Art15AutomatedDecisionMaking {
            exists: !decisions.is_empty(),
            decisions,
            text: if inv.automated_decisions.is_empty() {
                "none: no decision about you is taken by automated means alone"
            } else {
                "the decisions listed are taken by automated means; you may ask for a person to review one (GDPR Art. 22(3))"
            }
            .into(),
        },
        transfers,
    }
}

/// What a CCPA access request (right to know) must give besides the
/// specific pieces (§1798.110(a)(1)–(4)): the `ccpa` member of the export
/// bundle of a CCPA request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(rename = "CcpaInformation")]
pub struct CcpaInformation {
    /// The categories of personal information held (their descriptions).
    pub categories_of_personal_information: Vec<String>,
    /// The categories of sources it was collected from.
    pub categories_of_sources: Vec<String>,
    /// The business or commercial purposes it is collected for.
    pub business_or_commercial_purposes: Vec<String>,
    /// The third parties (not the business's own staff) it is disclosed to.
    pub categories_of_third_parties: Vec<CcpaThirdParty>,
    /// Where the specific pieces are: always `personal_data` (the bundle's member).
    #[schemars(extend("const" = "personal_data"))]
    pub specific_pieces: String,
}

/// A recipient, not the business's own staff, that receives the data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CcpaThirdParty {
    pub name: String,
    #[schemars(extend("enum" = ["processor", "third_party", "authority"]))]
    pub kind: String,
}

/// The categories a CCPA access request (right to know) must give, from
/// the same facts (§1798.110(a)(1)–(4); the specific pieces are the
/// bundle's `personal_data`).
#[must_use]
pub fn ccpa(inv: &Inventory, purposes: &[String], held: &[&str], source: Source) -> CcpaInformation {
    let categories: Vec<String> = inv
        .categories
        .iter()
        .filter(|(name, _)| {
            held.iter()
                .any(|f| inv.field(CONTACT, f).is_some_and(|spec| &spec.category == *name))
        })
        .map(|(_, c)| c.description.clone())
        .collect();
    let business: Vec<String> = purposes
        .iter()
        .filter_map(|p| inv.purpose(p))
        .map(|s| s.description.clone())
        .collect();
    let mut third: Vec<CcpaThirdParty> = Vec::new();
    for p in purposes {
        for r in inv.purpose(p).map(|s| s.recipients.as_slice()).unwrap_or_default() {
            let Some(kind) = inv.recipients.get(r).map(|d| d.kind) else {
                continue;
            };
            if kind != RecipientKind::Staff && !third.iter().any(|t| &t.name == r) {
                third.push(CcpaThirdParty {
                    name: r.clone(),
                    kind: kind.as_str().into(),
                });
            }
        }
    }
    CcpaInformation {
        categories_of_personal_information: categories,
        categories_of_sources: vec![source.ccpa_category().into()],
        business_or_commercial_purposes: business,
        categories_of_third_parties: third,
        specific_pieces: "personal_data".into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{json, Value};

    fn inv() -> Inventory {
        Inventory::default_inventory()
    }

    #[test]
    fn names_what_applies_to_the_person() {
        let purposes = vec!["sales".to_string(), "marketing_email".to_string()];
        let i = serde_json::to_value(information(
            &inv(),
            &purposes,
            &["email", "given_name", "job_title"],
            Source::Staff,
        ))
        .unwrap();
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
            information(&inv(), &purposes, &[], Source::FromThePerson)
                .source
                .collected_from_you,
            Some(true)
        );
    }

    #[test]
    fn ccpa_categories() {
        let purposes = vec!["marketing_email".to_string()];
        let c = serde_json::to_value(ccpa(&inv(), &purposes, &["email"], Source::Import)).unwrap();
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
        let i = serde_json::to_value(information(&with, &["sales".to_string()], &[], Source::Unknown)).unwrap();
        assert_eq!(i["automated_decision_making"]["exists"], true);
        assert_eq!(i["automated_decision_making"]["decisions"][0]["name"], "credit limit");
    }

    /// The statement keeps its member names, and reads back as written,
    /// both kinds of transfer included.
    #[test]
    fn members_and_round_trip() {
        let text = include_str!("default_inventory.toml").replace(
            "recipients = [\"marketing staff\", \"e-mail delivery processor\"]\n",
            "recipients = [\"marketing staff\", \"e-mail delivery processor\"]\ntransfers = [\"US: e-mail delivery processor, standard contractual clauses\"]\n",
        );
        let with = Inventory::from_toml_str(&text).unwrap();
        let purposes = vec!["marketing_email".to_string()];
        let i = information(&with, &purposes, &["email"], Source::FromThePerson);
        let v = serde_json::to_value(&i).unwrap();
        assert_eq!(
            v["transfers"][1],
            json!({"purpose": "marketing_email", "declared": "US: e-mail delivery processor, standard contractual clauses"})
        );
        assert_eq!(
            v["transfers"][0].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["country", "recipient", "safeguards"]
        );
        assert_eq!(
            v["recipients"][0].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["country", "kind", "name", "purposes", "safeguards", "third_country"]
        );
        assert_eq!(
            v["storage"]["rules"][0].as_object().unwrap().keys().collect::<Vec<_>>(),
            ["days", "description", "from", "purpose", "rule", "then"]
        );
        assert_eq!(v["source"]["collected_from_you"], true);
        assert_eq!(serde_json::from_value::<Art15Information>(v).unwrap(), i);
        let c = ccpa(&with, &purposes, &["email"], Source::FromThePerson);
        assert_eq!(
            serde_json::from_value::<CcpaInformation>(serde_json::to_value(&c).unwrap()).unwrap(),
            c
        );
    }
}
