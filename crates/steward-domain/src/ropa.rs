//! The record of processing activities (GDPR Art. 30(1)), derived entirely
//! from the data inventory — never maintained by hand — and rendered as JSON,
//! Markdown or a standalone HTML document.
//!
//! One processing activity per purpose (compliance included), each with
//! (b) its purpose and lawful basis, (c) the categories of data subjects and
//! of personal data (special categories flagged with their Art. 9 condition),
//! (d) recipients, (e) third-country transfers, (f) retention and consent
//! validity, and (g) a reference to the general description of the technical
//! and organisational security measures; plus (a) the controller and a summary
//! of every data category with the purposes that use it.

use chrono::{DateTime, SecondsFormat, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::inventory::{Controller, Inventory, LawfulBasis, Purpose, RetentionTrigger, CONTACT};

/// How the data subjects held in each subject record type are described;
/// other subject record types fall back to their inventory description.
const SUBJECT_DESCRIPTIONS: [(&str, &str); 1] = [(CONTACT, "customers and business contacts")];

const TITLE: &str = "Record of processing activities";
const SECURITY_HEADING: &str = "Technical and organisational security measures";

/// The Art. 30(1) record, derived entirely from the inventory (never maintained by hand).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecordOfProcessing {
    pub generated_at: DateTime<Utc>,
    pub inventory_version: u32,
    /// Art. 30(1)(a): the controller and its contact details, DPO included.
    pub controller: Controller,
    /// One per purpose, in inventory order.
    pub activities: Vec<ProcessingActivity>,
    /// Every data category of the inventory, with the purposes using it.
    pub data_categories: Vec<DataCategorySummary>,
    /// Art. 30(1)(f): the retention schedules in force (declared or derived).
    pub retention_schedules: Vec<crate::retention::RetentionRule>,
    /// Art. 30(1)(g): the general description of the security measures (Art. 32).
    pub security_measures: Vec<String>,
    /// Gaps in the inventory that make the record incomplete.
    pub warnings: Vec<String>,
}

/// One processing activity: everything done with personal data for one purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProcessingActivity {
    /// The purpose's name in the inventory.
    pub purpose: String,
    pub description: String,
    pub lawful_basis: LawfulBasisEntry,
    /// Whether data may be collected for this purpose (else it only uses data
    /// collected for other purposes).
    pub collection: bool,
    pub data_subjects: Vec<DataSubjects>,
    pub personal_data: Vec<PersonalDataCategory>,
    pub recipients: Vec<String>,
    /// Third-country transfers and their safeguards; empty: none.
    pub transfers: Vec<String>,
    pub retention: Retention,
    pub consent: ConsentTerms,
}

/// A lawful basis with its place in GDPR Art. 6(1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LawfulBasisEntry {
    pub basis: LawfulBasis,
    /// "Art. 6(1)(a)" … "Art. 6(1)(f)".
    pub article: String,
    /// "consent", "contract", "legal obligation", …
    pub name: String,
}

impl LawfulBasisEntry {
    #[must_use]
    pub fn new(basis: LawfulBasis) -> Self {
        Self {
            basis,
            article: format!("Art. 6(1)({})", lawful_basis_letter(basis)),
            name: lawful_basis_name(basis).into(),
        }
    }

    /// "Art. 6(1)(a) consent".
    #[must_use]
    pub fn label(&self) -> String {
        format!("{} {}", self.article, self.name)
    }
}

/// The letter of GDPR Art. 6(1) that establishes `basis`.
#[must_use]
pub fn lawful_basis_letter(basis: LawfulBasis) -> char {
    match basis {
        LawfulBasis::Consent => 'a',
        LawfulBasis::Contract => 'b',
        LawfulBasis::LegalObligation => 'c',
        LawfulBasis::VitalInterests => 'd',
        LawfulBasis::PublicTask => 'e',
        LawfulBasis::LegitimateInterest => 'f',
    }
}

/// The short name of `basis` as GDPR Art. 6(1) describes it.
#[must_use]
pub fn lawful_basis_name(basis: LawfulBasis) -> &'static str {
    match basis {
        LawfulBasis::Consent => "consent",
        LawfulBasis::Contract => "contract",
        LawfulBasis::LegalObligation => "legal obligation",
        LawfulBasis::VitalInterests => "vital interests",
        LawfulBasis::PublicTask => "public task",
        LawfulBasis::LegitimateInterest => "legitimate interests",
    }
}

/// A category of data subjects: the people held in a subject record type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DataSubjects {
    pub record_type: String,
    pub description: String,
}

/// A category of personal data a purpose processes, with the fields in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PersonalDataCategory {
    pub category: String,
    pub description: String,
    /// Special category under GDPR Art. 9.
    pub special: bool,
    /// The Art. 9(2) condition for a special category.
    pub condition: Option<String>,
    /// `<record_type>.<field>`, in inventory order.
    pub fields: Vec<String>,
}

/// Art. 30(1)(f): how long the data is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Retention {
    /// The purpose's own period, if it sets one.
    pub purpose_days: Option<u32>,
    /// The periods of the record types the purpose uses.
    pub record_types: Vec<RecordTypeRetention>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecordTypeRetention {
    pub record_type: String,
    pub days: u32,
    pub trigger: RetentionTrigger,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConsentTerms {
    /// The lawful basis is consent (Art. 6(1)(a)).
    pub required: bool,
    /// Consent must be renewed after this many days.
    pub valid_days: Option<u32>,
}

/// One data category of the inventory and where it is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DataCategorySummary {
    pub category: String,
    pub description: String,
    pub special: bool,
    pub condition: Option<String>,
    /// The personal fields in this category, `<record_type>.<field>`.
    pub personal_fields: Vec<String>,
    /// The purposes that need any of those fields.
    pub purposes: Vec<String>,
}

/// Derives the record of processing activities from `inv`.
#[must_use]
pub fn record_of_processing(inv: &Inventory, generated_at: DateTime<Utc>) -> RecordOfProcessing {
    let activities = inv
        .purposes
        .iter()
        .map(|(name, purpose)| activity(inv, name, purpose))
        .collect();
    let data_categories = inv
        .categories
        .iter()
        .map(|(name, c)| {
            let personal_fields: Vec<(&str, &str)> = personal_fields(inv)
                .filter(|(_, _, category)| *category == name.as_str())
                .map(|(rt, f, _)| (rt, f))
                .collect();
            let purposes = inv
                .purposes
                .keys()
                .filter(|p| personal_fields.iter().any(|(rt, f)| inv.purpose_needs(rt, p, f)))
                .cloned()
                .collect();
            DataCategorySummary {
                category: name.clone(),
                description: c.description.clone(),
                special: c.special,
                condition: c.condition.clone(),
                personal_fields: personal_fields.iter().map(|(rt, f)| format!("{rt}.{f}")).collect(),
                purposes,
            }
        })
        .collect();
    let mut warnings = Vec::new();
    if inv.controller.has_placeholders() {
        warnings.push(
            "The controller's details are placeholders: set the [controller] table in the data inventory \
             (Art. 30(1)(a))."
                .to_string(),
        );
    }
    for (name, purpose) in &inv.purposes {
        if purpose.retention_days.is_none() {
            warnings.push(format!(
                "Purpose '{name}' sets no retention period (retention_days); only the record types' periods apply."
            ));
        }
    }
    if inv.security_measures.is_empty() {
        warnings.push("No technical and organisational security measures are described (security_measures).".into());
    }
    RecordOfProcessing {
        generated_at,
        inventory_version: inv.version,
        controller: inv.controller.clone(),
        activities,
        data_categories,
        retention_schedules: crate::retention::rules_in_force(inv),
        security_measures: inv.security_measures.clone(),
        warnings,
    }
}

/// Every personal field of the inventory as (record type, field, category).
fn personal_fields(inv: &Inventory) -> impl Iterator<Item = (&str, &str, &str)> {
    inv.record_types.iter().flat_map(|(rt, spec)| {
        spec.fields
            .iter()
            .filter(|(_, f)| f.personal)
            .map(move |(name, f)| (rt.as_str(), name.as_str(), f.category.as_str()))
    })
}

fn activity(inv: &Inventory, name: &str, purpose: &Purpose) -> ProcessingActivity {
    let mut by_category: IndexMap<&str, Vec<String>> = IndexMap::new();
    for (rt, field, category) in personal_fields(inv) {
        if inv.purpose_needs(rt, name, field) {
            by_category.entry(category).or_default().push(format!("{rt}.{field}"));
        }
    }
    // Inventory order of categories; any unknown (unvalidated) ones last.
    by_category.sort_by_cached_key(|c, _| inv.categories.get_index_of(*c).unwrap_or(usize::MAX));
    let personal_data: Vec<PersonalDataCategory> = by_category
        .into_iter()
        .map(|(category, fields)| {
            let c = inv.categories.get(category);
            PersonalDataCategory {
                category: category.to_string(),
                description: c.map_or_else(|| "(not described in the inventory)".into(), |c| c.description.clone()),
                special: c.is_some_and(|c| c.special),
                condition: c.and_then(|c| c.condition.clone()),
                fields,
            }
        })
        .collect();
    let data_subjects = if personal_data.is_empty() {
        Vec::new()
    } else {
        inv.record_types
            .iter()
            .filter(|(_, r)| r.subject)
            .map(|(rt, r)| DataSubjects {
                record_type: rt.clone(),
                description: SUBJECT_DESCRIPTIONS
                    .iter()
                    .find(|(t, _)| t == rt)
                    .map_or_else(|| r.description.clone(), |(_, d)| (*d).to_string()),
            })
            .collect()
    };
    let record_types = inv
        .record_types
        .iter()
        .filter(|(rt, _)| purpose.needs.get(*rt).is_some_and(|f| !f.is_empty()))
        .map(|(rt, r)| RecordTypeRetention {
            record_type: rt.clone(),
            days: r.retention_days,
            trigger: r.retention_trigger,
        })
        .collect();
    ProcessingActivity {
        purpose: name.to_string(),
        description: purpose.description.clone(),
        lawful_basis: LawfulBasisEntry::new(purpose.lawful_basis),
        collection: purpose.collection,
        data_subjects,
        personal_data,
        recipients: purpose.recipients.clone(),
        transfers: purpose.transfers.clone(),
        retention: Retention {
            purpose_days: purpose.retention_days,
            record_types,
        },
        consent: ConsentTerms {
            required: purpose.lawful_basis == LawfulBasis::Consent,
            valid_days: purpose.consent_valid_days,
        },
    }
}

impl RecordOfProcessing {
    /// The record as JSON (the serde form of this struct).
    ///
    /// # Panics
    /// Never: every map in the record has string keys.
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("the record of processing serialises to JSON")
    }

    /// The record as a Markdown (GitHub-flavoured) document; inventory text is escaped.
    #[must_use]
    pub fn to_markdown(&self) -> String {
        render_markdown(self.blocks())
    }

    /// The record as a standalone HTML document (inline CSS, no scripts);
    /// all text is HTML-escaped.
    #[must_use]
    pub fn to_html(&self) -> String {
        render_html(TITLE, &self.controller.name, self.blocks())
    }

    /// The document both renderings are made from.
    fn blocks(&self) -> Vec<Block> {
        let mut b = vec![
            Block::Heading {
                level: 1,
                id: None,
                content: vec![text(TITLE)],
            },
            Block::Para(vec![text(format!(
                "Under GDPR Art. 30(1). Generated at {} from data inventory version {}. This record is derived \
                 from the data inventory; change the inventory, not this document.",
                self.generated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                self.inventory_version
            ))]),
        ];
        b.extend(self.warnings.iter().cloned().map(Block::Warning));

        let c = &self.controller;
        b.push(heading(2, "controller", vec![text("Controller (Art. 30(1)(a))")]));
        let url = |u: &Option<String>| {
            u.as_ref()
                .map_or_else(|| vec![text("not given")], |u| vec![Inline::Url(u.clone())])
        };
        b.push(Block::Table {
            head: vec!["Detail", "Value"],
            rows: vec![
                vec![vec![text("Name")], vec![text(&c.name)]],
                vec![vec![text("Contact person")], vec![text(&c.contact)]],
                vec![vec![text("Street address")], vec![text(&c.street_address)]],
                vec![vec![text("Country")], vec![text(&c.country)]],
                vec![vec![text("E-mail")], vec![text(&c.email)]],
                vec![vec![text("Telephone")], vec![text(&c.phone)]],
                vec![vec![text("Website")], url(&c.url)],
                vec![vec![text("Privacy policy")], vec![Inline::Url(c.policy_url.clone())]],
                vec![vec![text("Jurisdiction")], vec![text(&c.jurisdiction)]],
                vec![
                    vec![text("Data protection officer")],
                    vec![text(c.dpo_email.as_deref().unwrap_or("none designated"))],
                ],
            ],
        });

        b.push(heading(2, "activities", vec![text("Processing activities")]));
        for (i, a) in self.activities.iter().enumerate() {
            b.extend(activity_blocks(i + 1, a));
        }

        b.push(heading(2, "data-categories", vec![text("Data categories")]));
        b.push(Block::Table {
            head: vec![
                "Category",
                "Description",
                "Special category (Art. 9)",
                "Personal fields",
                "Used by purposes",
            ],
            rows: self
                .data_categories
                .iter()
                .map(|d| {
                    vec![
                        vec![Inline::Code(d.category.clone())],
                        vec![text(&d.description)],
                        special_cell(d.special, d.condition.as_deref()),
                        code_list(&d.personal_fields, "none (no personal data)"),
                        code_list(&d.purposes, "none"),
                    ]
                })
                .collect(),
        });

        b.push(heading(
            2,
            "retention-schedules",
            vec![text("Retention schedules (Art. 30(1)(f))")],
        ));
        b.push(Block::Table {
            head: vec!["Rule", "Record", "Purpose", "Kept for", "Counted from", "At the end"],
            rows: self
                .retention_schedules
                .iter()
                .map(|r| {
                    vec![
                        vec![Inline::Code(r.name.clone())],
                        vec![Inline::Code(r.record.as_str().to_string())],
                        vec![r
                            .purpose
                            .as_ref()
                            .map_or_else(|| text("every purpose"), |p| Inline::Code(p.clone()))],
                        vec![text(format!("{} days", r.days))],
                        vec![text(r.from.as_str().replace('_', " "))],
                        vec![text(format!(
                            "{}{}",
                            r.action.as_str(),
                            if r.keep_proof { " (proof of erasure kept)" } else { "" }
                        ))],
                    ]
                })
                .collect(),
        });

        b.push(heading(
            2,
            "security-measures",
            vec![text(format!("{SECURITY_HEADING} (Art. 30(1)(g), Art. 32)"))],
        ));
        if self.security_measures.is_empty() {
            b.push(Block::Para(vec![text("None described.")]));
        } else {
            b.push(Block::List(
                self.security_measures.iter().map(|m| vec![text(m)]).collect(),
            ));
        }
        b
    }
}

fn activity_blocks(n: usize, a: &ProcessingActivity) -> Vec<Block> {
    let mut b = vec![heading(
        3,
        &format!("purpose-{}", a.purpose),
        vec![text(format!("{n}. Purpose ")), Inline::Code(a.purpose.clone())],
    )];
    let consent = match (a.consent.required, a.consent.valid_days) {
        (true, Some(days)) => format!("required; consent must be renewed every {days} days"),
        (true, None) => "required; no validity period set".into(),
        (false, _) => format!("not required (lawful basis: {})", a.lawful_basis.label()),
    };
    let collection = if a.collection {
        "yes: data may be collected for this purpose"
    } else {
        "no: only data collected for other purposes is used"
    };
    let mut subjects = Vec::new();
    for (i, s) in a.data_subjects.iter().enumerate() {
        if i > 0 {
            subjects.push(text("; "));
        }
        subjects.push(text(format!("{} (", s.description)));
        subjects.push(Inline::Code(s.record_type.clone()));
        subjects.push(text(")"));
    }
    if subjects.is_empty() {
        subjects.push(text("none (no personal data)"));
    }
    let retention = a.retention.purpose_days.map_or_else(
        || "no period set for this purpose; the record types' periods below apply".to_string(),
        |d| format!("{d} days for this purpose; record types as below"),
    );
    let list = |items: &[String], sep: &str, none: &str| {
        if items.is_empty() {
            none.to_string()
        } else {
            items.join(sep)
        }
    };
    b.push(Block::Table {
        head: vec!["Item", "Entry"],
        rows: vec![
            vec![vec![text("Purpose (Art. 30(1)(b))")], vec![text(&a.description)]],
            vec![vec![text("Lawful basis")], vec![text(a.lawful_basis.label())]],
            vec![vec![text("Consent")], vec![text(consent)]],
            vec![vec![text("Collection")], vec![text(collection)]],
            vec![vec![text("Categories of data subjects (Art. 30(1)(c))")], subjects],
            vec![
                vec![text("Recipients (Art. 30(1)(d))")],
                vec![text(list(&a.recipients, ", ", "none"))],
            ],
            vec![
                vec![text("Third-country transfers (Art. 30(1)(e))")],
                vec![text(list(&a.transfers, "; ", "none"))],
            ],
            vec![vec![text("Retention (Art. 30(1)(f))")], vec![text(retention)]],
            vec![
                vec![text("Security measures (Art. 30(1)(g))")],
                vec![text(format!("see “{SECURITY_HEADING}” below"))],
            ],
        ],
    });
    b.push(Block::Para(vec![Inline::Strong(
        "Categories of personal data (Art. 30(1)(c))".into(),
    )]));
    if a.personal_data.is_empty() {
        b.push(Block::Para(vec![text("No personal data.")]));
    } else {
        b.push(Block::Table {
            head: vec!["Category", "Description", "Special category (Art. 9)", "Fields"],
            rows: a
                .personal_data
                .iter()
                .map(|d| {
                    vec![
                        vec![Inline::Code(d.category.clone())],
                        vec![text(&d.description)],
                        special_cell(d.special, d.condition.as_deref()),
                        code_list(&d.fields, "none"),
                    ]
                })
                .collect(),
        });
    }
    b.push(Block::Para(vec![Inline::Strong(
        "Retention by record type (Art. 30(1)(f))".into(),
    )]));
    if a.retention.record_types.is_empty() {
        b.push(Block::Para(vec![text("No record types are used.")]));
    } else {
        b.push(Block::Table {
            head: vec!["Record type", "Kept for", "Counted from"],
            rows: a
                .retention
                .record_types
                .iter()
                .map(|r| {
                    vec![
                        vec![Inline::Code(r.record_type.clone())],
                        vec![text(format!("{} days", r.days))],
                        vec![text(match r.trigger {
                            RetentionTrigger::Created => "creation",
                            RetentionTrigger::LastUpdate => "the last update",
                        })],
                    ]
                })
                .collect(),
        });
    }
    b
}

fn special_cell(special: bool, condition: Option<&str>) -> Vec<Inline> {
    if special {
        vec![
            Inline::Strong("yes".into()),
            text(format!(
                "; Art. 9(2) condition: {}",
                condition.unwrap_or("none declared")
            )),
        ]
    } else {
        vec![text("no")]
    }
}

fn code_list(items: &[String], none: &str) -> Vec<Inline> {
    if items.is_empty() {
        return vec![text(none)];
    }
    let mut out = Vec::with_capacity(items.len() * 2);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(text(", "));
        }
        out.push(Inline::Code(item.clone()));
    }
    out
}

/// Renders a document as Markdown (GitHub-flavoured); all text is escaped.
pub(crate) fn render_markdown(blocks: Vec<Block>) -> String {
    let mut out = String::new();
    for block in blocks {
        match block {
            Block::Heading { level, content, .. } => {
                out.push_str(&"#".repeat(usize::from(level)));
                out.push(' ');
                out.push_str(&md_inlines(&content));
                out.push_str("\n\n");
            }
            Block::Para(content) => {
                out.push_str(&md_inlines(&content));
                out.push_str("\n\n");
            }
            Block::Warning(text) => {
                out.push_str("> **Warning:** ");
                out.push_str(&md_text(&text));
                out.push_str("\n\n");
            }
            Block::List(items) => {
                for item in items {
                    out.push_str("- ");
                    out.push_str(&md_inlines(&item));
                    out.push('\n');
                }
                out.push('\n');
            }
            Block::Table { head, rows } => {
                out.push_str(&format!("| {} |\n", head.join(" | ")));
                out.push_str(&format!("|{}\n", "---|".repeat(head.len())));
                for row in rows {
                    let cells: Vec<String> = row.iter().map(|c| md_inlines(c)).collect();
                    out.push_str(&format!("| {} |\n", cells.join(" | ")));
                }
                out.push('\n');
            }
        }
    }
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

/// Renders a document as standalone HTML titled `title — subtitle` (inline
/// CSS, no scripts); all text is HTML-escaped.
pub(crate) fn render_html(title: &str, subtitle: &str, blocks: Vec<Block>) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
    );
    out.push_str(&format!(
        "<title>{} — {}</title>\n<style>\n{CSS}</style>\n</head>\n<body>\n",
        html(title),
        html(subtitle)
    ));
    for block in blocks {
        match block {
            Block::Heading { level, id, content } => {
                let id = id.map(|id| format!(" id=\"{}\"", html(&id))).unwrap_or_default();
                out.push_str(&format!("<h{level}{id}>{}</h{level}>\n", html_inlines(&content)));
            }
            Block::Para(content) => out.push_str(&format!("<p>{}</p>\n", html_inlines(&content))),
            Block::Warning(text) => out.push_str(&format!(
                "<p class=\"warning\"><strong>Warning:</strong> {}</p>\n",
                html(&text)
            )),
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    out.push_str(&format!("<li>{}</li>\n", html_inlines(&item)));
                }
                out.push_str("</ul>\n");
            }
            Block::Table { head, rows } => {
                out.push_str("<table>\n<thead><tr>");
                for h in head {
                    out.push_str(&format!("<th scope=\"col\">{}</th>", html(h)));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for row in rows {
                    out.push_str("<tr>");
                    for (i, cell) in row.iter().enumerate() {
                        let tag = if i == 0 { "th scope=\"row\"" } else { "td" };
                        let close = if i == 0 { "th" } else { "td" };
                        out.push_str(&format!("<{tag}>{}</{close}>", html_inlines(cell)));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table>\n");
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// A rendering-neutral document: renderers escape all text.
pub(crate) enum Block {
    Heading {
        level: u8,
        id: Option<String>,
        content: Vec<Inline>,
    },
    Para(Vec<Inline>),
    Warning(String),
    List(Vec<Vec<Inline>>),
    Table {
        head: Vec<&'static str>,
        rows: Vec<Vec<Vec<Inline>>>,
    },
}

pub(crate) enum Inline {
    Text(String),
    Code(String),
    Strong(String),
    /// A link when it is an http(s) URL, else text.
    Url(String),
}

pub(crate) fn text(s: impl Into<String>) -> Inline {
    Inline::Text(s.into())
}

fn heading(level: u8, id: &str, content: Vec<Inline>) -> Block {
    Block::Heading {
        level,
        id: Some(id.to_string()),
        content,
    }
}

const CSS: &str = "body{font-family:system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif;max-width:62rem;\
margin:2rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b;background:#fff}
h1{font-size:1.8rem;margin-bottom:.3rem}
h2{font-size:1.4rem;margin-top:2.5rem;border-bottom:1px solid #ccc;padding-bottom:.2rem}
h3{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1.2rem}
th,td{border:1px solid #ccc;padding:.35rem .6rem;text-align:left;vertical-align:top}
thead th{background:#f0f0f0}
tbody th{font-weight:600;width:28%}
code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.92em}
.warning{background:#fff4e0;border-left:4px solid #d98200;padding:.5rem .8rem}
@media print{body{margin:0;max-width:none}h2,h3{break-after:avoid}tr{break-inside:avoid}}
";

/// Escapes text for HTML element content and attribute values.
fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_inlines(inlines: &[Inline]) -> String {
    inlines
        .iter()
        .map(|i| match i {
            Inline::Text(s) => html(s),
            Inline::Code(s) => format!("<code>{}</code>", html(s)),
            Inline::Strong(s) => format!("<strong>{}</strong>", html(s)),
            Inline::Url(u) if is_web_url(u) => format!("<a href=\"{0}\">{0}</a>", html(u)),
            Inline::Url(u) => html(u),
        })
        .collect()
}

fn is_web_url(u: &str) -> bool {
    (u.starts_with("https://") || u.starts_with("http://")) && !u.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Escapes text for Markdown: backslash-escapes the punctuation that could
/// start markup (raw HTML included) or end a table cell, and folds line breaks.
fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '&' | '~' | '#' | '!' => {
                out.push('\\');
                out.push(ch);
            }
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A code span when `s` is safe inside one (and inside a table cell), else escaped text.
fn md_code(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-:/@+=?%,;".contains(c))
    {
        format!("`{s}`")
    } else {
        md_text(s)
    }
}

fn md_inlines(inlines: &[Inline]) -> String {
    inlines
        .iter()
        .map(|i| match i {
            Inline::Text(s) => md_text(s),
            Inline::Code(s) | Inline::Url(s) => md_code(s),
            Inline::Strong(s) => format!("**{}**", md_text(s)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::DEFAULT_INVENTORY_TOML;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 14, 9, 26, 53).unwrap()
    }

    fn default_record() -> (Inventory, RecordOfProcessing) {
        let inv = Inventory::default_inventory();
        let r = record_of_processing(&inv, at());
        (inv, r)
    }

    #[test]
    fn every_purpose_is_an_activity_in_order() {
        let (inv, r) = default_record();
        let names: Vec<&str> = r.activities.iter().map(|a| a.purpose.as_str()).collect();
        let expected: Vec<&str> = inv.purposes.keys().map(String::as_str).collect();
        assert_eq!(names, expected, "one activity per purpose, none dropped, none added");
        for p in [
            "customer_service",
            "sales",
            "marketing_email",
            "analytics",
            "compliance",
        ] {
            assert!(names.contains(&p), "{p} is missing from the record");
        }
        assert_eq!(r.activities.len(), 5);
        for (a, (name, p)) in r.activities.iter().zip(&inv.purposes) {
            assert_eq!(&a.purpose, name);
            assert_eq!(a.description, p.description);
            assert_eq!(a.collection, p.collection);
            assert_eq!(a.lawful_basis.basis, p.lawful_basis);
        }
        assert_eq!(r.inventory_version, inv.version);
        assert_eq!(r.generated_at, at());
        assert_eq!(r.controller, inv.controller);
        assert_eq!(r.security_measures, inv.security_measures);
        assert!(!r.security_measures.is_empty());
    }

    #[test]
    fn lawful_bases_carry_their_art_6_letter() {
        let (_, r) = default_record();
        let label = |p: &str| {
            r.activities
                .iter()
                .find(|a| a.purpose == p)
                .unwrap()
                .lawful_basis
                .label()
        };
        assert_eq!(label("customer_service"), "Art. 6(1)(b) contract");
        assert_eq!(label("sales"), "Art. 6(1)(f) legitimate interests");
        assert_eq!(label("marketing_email"), "Art. 6(1)(a) consent");
        assert_eq!(label("analytics"), "Art. 6(1)(a) consent");
        assert_eq!(label("compliance"), "Art. 6(1)(c) legal obligation");
        let letters: String = [
            LawfulBasis::Consent,
            LawfulBasis::Contract,
            LawfulBasis::LegalObligation,
            LawfulBasis::VitalInterests,
            LawfulBasis::PublicTask,
            LawfulBasis::LegitimateInterest,
        ]
        .into_iter()
        .map(lawful_basis_letter)
        .collect();
        assert_eq!(letters, "abcdef");
    }

    #[test]
    fn categories_recipients_retention_and_consent_come_from_the_inventory() {
        let (inv, r) = default_record();
        for (a, (name, p)) in r.activities.iter().zip(&inv.purposes) {
            // Every personal field the purpose needs, under its category; nothing else.
            let mut expected = 0;
            for (rt, fields) in &p.needs {
                for f in fields {
                    let spec = inv.field(rt, f).unwrap();
                    let qualified = format!("{rt}.{f}");
                    let listed = a
                        .personal_data
                        .iter()
                        .find(|c| c.fields.contains(&qualified))
                        .map(|c| c.category.as_str());
                    if spec.personal {
                        expected += 1;
                        assert_eq!(listed, Some(spec.category.as_str()), "{name}: {qualified}");
                    } else {
                        assert_eq!(listed, None, "{name}: {qualified} is not personal data");
                    }
                }
            }
            assert_eq!(
                a.personal_data.iter().map(|c| c.fields.len()).sum::<usize>(),
                expected,
                "{name}"
            );
            for c in &a.personal_data {
                let spec = &inv.categories[&c.category];
                assert_eq!((c.special, &c.condition), (spec.special, &spec.condition));
                assert_eq!(c.description, spec.description);
            }
            assert_eq!(a.recipients, p.recipients, "{name}");
            assert!(!a.recipients.is_empty(), "{name}");
            assert_eq!(a.transfers, p.transfers, "{name}");
            assert_eq!(a.retention.purpose_days, p.retention_days, "{name}");
            assert!(p.retention_days.is_some(), "{name}");
            let rts: Vec<_> = a
                .retention
                .record_types
                .iter()
                .map(|r| r.record_type.as_str())
                .collect();
            let needed: Vec<_> = p.needs.keys().map(String::as_str).collect();
            assert_eq!(rts, needed, "{name}");
            for rr in &a.retention.record_types {
                let spec = inv.record_type(&rr.record_type).unwrap();
                assert_eq!((rr.days, rr.trigger), (spec.retention_days, spec.retention_trigger));
            }
            assert_eq!(a.consent.required, p.lawful_basis == LawfulBasis::Consent, "{name}");
            assert_eq!(a.consent.valid_days, p.consent_valid_days, "{name}");
            assert_eq!(
                a.data_subjects,
                [DataSubjects {
                    record_type: CONTACT.into(),
                    description: "customers and business contacts".into()
                }]
            );
        }
        let marketing = r.activities.iter().find(|a| a.purpose == "marketing_email").unwrap();
        assert_eq!(
            marketing.consent,
            ConsentTerms {
                required: true,
                valid_days: Some(730)
            }
        );

        // The summary: every category, with exactly the purposes that need its personal fields.
        let cats: Vec<_> = r.data_categories.iter().map(|c| c.category.as_str()).collect();
        assert_eq!(cats, inv.categories.keys().map(String::as_str).collect::<Vec<_>>());
        for c in &r.data_categories {
            for (purpose, p) in &inv.purposes {
                let uses = p.needs.iter().any(|(rt, fields)| {
                    fields.iter().any(|f| {
                        let spec = inv.field(rt, f).unwrap();
                        spec.personal && spec.category == c.category
                    })
                });
                assert_eq!(c.purposes.contains(purpose), uses, "{} / {purpose}", c.category);
            }
        }
        let business = r.data_categories.iter().find(|c| c.category == "business").unwrap();
        assert!(business.personal_fields.is_empty() && business.purposes.is_empty());
        let demographic = r.data_categories.iter().find(|c| c.category == "demographic").unwrap();
        assert_eq!(demographic.personal_fields, ["contact.birth_date"]);
        assert_eq!(demographic.purposes, ["analytics", "compliance"]);
        assert!(
            r.warnings.iter().any(|w| w.contains("[controller]")),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn markdown_has_a_section_and_table_per_purpose() {
        let (inv, r) = default_record();
        let md = r.to_markdown();
        assert!(md.starts_with("# Record of processing activities\n"));
        assert!(md.contains("Generated at 2025-03-14T09:26:53Z from data inventory version 1"));
        for (i, (name, p)) in inv.purposes.iter().enumerate() {
            let heading = format!("### {}. Purpose `{name}`\n", i + 1);
            let start = md
                .find(&heading)
                .unwrap_or_else(|| panic!("no section for {name}:\n{md}"));
            let section = &md[start..];
            let section = &section[..section[4..].find("\n### ").map_or(section.len(), |e| e + 4)];
            assert!(section.contains("| Item | Entry |\n|---|---|\n"), "{section}");
            let basis = LawfulBasisEntry::new(p.lawful_basis).label();
            assert!(section.contains(&format!("| Lawful basis | {basis} |")), "{section}");
            for recipient in &p.recipients {
                assert!(section.contains(&md_text(recipient)), "{name}: {recipient}");
            }
            if let Some(days) = p.retention_days {
                assert!(section.contains(&format!("{days} days for this purpose")), "{section}");
            }
            for rt in p.needs.keys() {
                let days = inv.record_type(rt).unwrap().retention_days;
                assert!(section.contains(&format!("| `{rt}` | {days} days |")), "{section}");
            }
            for (rt, fields) in &p.needs {
                for f in fields.iter().filter(|f| inv.field(rt, f).unwrap().personal) {
                    assert!(section.contains(&format!("`{rt}.{f}`")), "{section}");
                }
            }
            assert!(
                section.contains("| Third-country transfers (Art. 30(1)(e)) | none |"),
                "{section}"
            );
        }
        assert!(md.contains("consent must be renewed every 730 days"));
        assert!(md.contains("## Data categories\n"));
        assert!(md.contains("## Technical and organisational security measures"));
        for m in &inv.security_measures {
            assert!(md.contains(&format!("- {}\n", md_text(m))), "{m}");
        }
        assert!(md.contains("> **Warning:**"));
        assert!(md.contains("| Name | Steward operator (set \\[controller\\] in the inventory) |"));
    }

    #[test]
    fn html_is_a_standalone_document_and_escapes_inventory_text() {
        let toml = DEFAULT_INVENTORY_TOML
            .replace(
                "Sending marketing e-mail to people who agreed to it",
                "Newsletters <script>alert(1)</script> & offers | \\\"quoted\\\"",
            )
            .replace("recipients = [\"analysts\"]", "recipients = [\"analysts <b>\"]");
        let inv = Inventory::from_toml_str(&toml).unwrap();
        let r = record_of_processing(&inv, at());
        let doc = r.to_html();
        assert!(doc.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(doc.trim_end().ends_with("</html>"));
        assert!(doc.contains("<style>") && doc.contains("<meta charset=\"utf-8\">"));
        assert!(doc.contains("Newsletters &lt;script&gt;alert(1)&lt;/script&gt; &amp; offers | &quot;quoted&quot;"));
        assert!(doc.contains("analysts &lt;b&gt;"));
        assert!(!doc.contains("<script") && !doc.contains("<b>"), "{doc}");
        for (name, p) in &inv.purposes {
            assert!(doc.contains(&format!("<h3 id=\"purpose-{name}\">")), "{name}");
            assert!(doc.contains(&html(&LawfulBasisEntry::new(p.lawful_basis).label())));
            for recipient in &p.recipients {
                assert!(doc.contains(&html(recipient)), "{recipient}");
            }
        }
        assert!(doc.contains("<a href=\"https://example.invalid/privacy\">"));
        assert_eq!(doc.matches("<table>").count(), doc.matches("</table>").count());

        let md = r.to_markdown();
        assert!(
            md.contains("Newsletters \\<script\\>alert(1)\\</script\\> \\& offers \\| \"quoted\""),
            "{md}"
        );
        let raw_html = md.match_indices('<').filter(|(i, _)| !md[..*i].ends_with('\\'));
        assert_eq!(raw_html.count(), 0, "every < in the Markdown is escaped: {md}");
    }

    #[test]
    fn special_categories_and_transfers_are_shown() {
        let toml = DEFAULT_INVENTORY_TOML
            .replace(
                "[categories.demographic]\n",
                "[categories.demographic]\nspecial = true\ncondition = \"Art. 9(2)(a) explicit consent\"\n",
            )
            .replace(
                "consent_valid_days = 730\n[purposes.marketing_email.needs]",
                "consent_valid_days = 730\ntransfers = [\"US: e-mail delivery processor, standard contractual clauses\"]\n\
                 [purposes.marketing_email.needs]",
            );
        let inv = Inventory::from_toml_str(&toml).unwrap();
        let r = record_of_processing(&inv, at());
        let analytics = r.activities.iter().find(|a| a.purpose == "analytics").unwrap();
        let demo = analytics
            .personal_data
            .iter()
            .find(|c| c.category == "demographic")
            .unwrap();
        assert!(demo.special);
        assert_eq!(demo.condition.as_deref(), Some("Art. 9(2)(a) explicit consent"));
        let marketing = r.activities.iter().find(|a| a.purpose == "marketing_email").unwrap();
        assert_eq!(
            marketing.transfers,
            ["US: e-mail delivery processor, standard contractual clauses"]
        );
        let md = r.to_markdown();
        assert!(md.contains("**yes**; Art. 9(2) condition: Art. 9(2)(a) explicit consent"));
        assert!(md.contains("| Third-country transfers (Art. 30(1)(e)) | US: e-mail delivery processor, standard"));
        let doc = r.to_html();
        assert!(doc.contains("<strong>yes</strong>; Art. 9(2) condition: Art. 9(2)(a) explicit consent"));
    }

    #[test]
    fn json_round_trips() {
        let (inv, _) = default_record();
        let r = record_of_processing(&inv, Utc::now());
        let json = r.to_json();
        assert_eq!(serde_json::from_value::<RecordOfProcessing>(json.clone()).unwrap(), r);
        let text = serde_json::to_string(&json).unwrap();
        assert_eq!(serde_json::from_str::<RecordOfProcessing>(&text).unwrap(), r);
        let activities = json["activities"].as_array().unwrap();
        assert_eq!(activities.len(), inv.purposes.len());
        assert_eq!(json["activities"][2]["lawful_basis"]["article"], "Art. 6(1)(a)");
        assert_eq!(json["activities"][2]["lawful_basis"]["basis"], "consent");
        assert_eq!(
            json["activities"][0]["retention"]["record_types"][0]["trigger"],
            "last_update"
        );
        assert_eq!(json["controller"]["country"], "ZZ");
        assert_eq!(json["inventory_version"], 1);
    }

    #[test]
    fn markdown_escaping() {
        assert_eq!(
            md_text("a|b <i>_x_</i> & [l](u)\nnext"),
            "a\\|b \\<i\\>\\_x\\_\\</i\\> \\& \\[l\\](u) next"
        );
        assert_eq!(md_code("contact.given_name"), "`contact.given_name`");
        assert_eq!(md_code("a`b|c"), "a\\`b\\|c");
        assert_eq!(html("<a href='x'>&</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;");
        assert!(!is_web_url("javascript:alert(1)"));
    }
}
