//! The data inventory: the single source of truth for what personal data
//! Steward holds (record types, fields, categories), why (purposes and their
//! lawful basis), which fields each purpose needs, how long data is kept and
//! which roles may act for which purposes.
//!
//! Minimisation, purpose-scoped reads, role permissions, retention and the
//! record of processing are all derived from this one structure. It is loaded
//! from TOML (a shipped default, overridable from the data dir) and validated
//! as a whole before Steward starts.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// The default inventory shipped with Steward.
pub const DEFAULT_INVENTORY_TOML: &str = include_str!("default_inventory.toml");

/// Record types whose fixed shape the code relies on.
pub const CONTACT: &str = "contact";
pub const INTERACTION: &str = "interaction";
pub const DEAL: &str = "deal";
pub const ORGANIZATION: &str = "organization";

/// The purpose privacy officers act under; never a collection purpose, and
/// applicable to every subject.
pub const COMPLIANCE: &str = "compliance";

/// Roles built into Steward (CONTRACT.md); an inventory must define them all.
pub const BUILT_IN_ROLES: [&str; 6] = ["admin", "dpo", "sales", "support", "marketing", "auditor"];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    pub version: u32,
    pub categories: IndexMap<String, Category>,
    pub record_types: IndexMap<String, RecordType>,
    pub purposes: IndexMap<String, Purpose>,
    pub roles: IndexMap<String, Role>,
    /// Who is responsible for the processing (GDPR Art. 30(1)(a)). Optional
    /// in the TOML; the default is an obvious placeholder (see [`Controller`]).
    #[serde(default)]
    pub controller: Controller,
    /// The general description of the technical and organisational security
    /// measures (GDPR Art. 30(1)(g), Art. 32). Optional in the TOML; the
    /// default ([`default_security_measures`]) describes what Steward does.
    #[serde(default = "default_security_measures")]
    pub security_measures: Vec<String>,
    /// Retention schedules (`[[retention]]`); none declared: derived from
    /// the record types' and purposes' `retention_days` (see
    /// [`crate::retention::rules_in_force`]).
    #[serde(default)]
    pub retention: Vec<crate::retention::RetentionRule>,
    /// Who the recipients named by the purposes are and where
    /// (`[recipients."name"]`), for access requests (GDPR Art. 15(1)(c),
    /// 15(2)) and CCPA §1798.110; a name no table declares is listed as it
    /// is, with no transfer.
    #[serde(default)]
    pub recipients: IndexMap<String, Recipient>,
    /// The supervisory authority a data subject may complain to (GDPR
    /// Art. 15(1)(f), 77); a placeholder until declared.
    #[serde(default)]
    pub supervisory_authority: SupervisoryAuthority,
    /// Automated decision-making, including profiling (GDPR Art. 22,
    /// 15(1)(h)), `[[automated_decisions]]`; none unless declared.
    #[serde(default)]
    pub automated_decisions: Vec<AutomatedDecision>,
}

/// What kind of recipient receives personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientKind {
    /// The controller's own staff.
    Staff,
    /// A processor acting on the controller's instructions (Art. 28).
    Processor,
    /// A third party that receives data for its own purposes.
    ThirdParty,
    /// A public authority.
    Authority,
}

impl RecipientKind {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Staff => "staff",
            Self::Processor => "processor",
            Self::ThirdParty => "third_party",
            Self::Authority => "authority",
        }
    }
}

/// One `[recipients."name"]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    pub kind: RecipientKind,
    /// Where the recipient processes the data: ISO 3166-1 alpha-2.
    #[serde(default)]
    pub country: Option<String>,
    /// The safeguards of a transfer to a third country (Art. 46), or the
    /// adequacy decision it relies on (Art. 45); required when `country` is
    /// outside the EEA.
    #[serde(default)]
    pub safeguards: Option<String>,
}

/// The countries of the European Economic Area (EU and Iceland,
/// Liechtenstein, Norway), between which GDPR transfers are free.
pub const EEA: [&str; 30] = [
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV", "LT", "LU", "MT",
    "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
];

impl Recipient {
    /// Whether the recipient is in a third country (outside the EEA).
    #[must_use]
    pub fn third_country(&self) -> bool {
        self.country.as_deref().is_some_and(|c| !EEA.contains(&c))
    }
}

/// The `[supervisory_authority]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisoryAuthority {
    pub name: String,
    pub address: String,
    #[serde(default)]
    pub url: Option<String>,
}

impl Default for SupervisoryAuthority {
    fn default() -> Self {
        Self {
            name: "The data protection supervisory authority of your country or of the controller (set [supervisory_authority] in the inventory)".into(),
            address: "Not set (set [supervisory_authority] in the inventory)".into(),
            url: None,
        }
    }
}

/// One `[[automated_decisions]]` entry: a decision based solely on
/// automated processing that has legal or similarly significant effects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomatedDecision {
    pub name: String,
    /// Meaningful information about the logic involved.
    pub logic: String,
    /// The significance and the envisaged consequences for the person.
    pub consequences: String,
}

/// The controller's identity and contact details (GDPR Art. 30(1)(a)),
/// the `[controller]` table of the inventory.
///
/// When the table is absent the [`Default`] applies: placeholder values that
/// say where to set the real ones (`country = "ZZ"`, a user-assigned ISO
/// 3166 code that names no country; e-mail under `example.invalid`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Controller {
    /// Legal name of the controller (the organisation running Steward).
    pub name: String,
    /// The contact person for data protection (or the DPO's name).
    pub contact: String,
    pub street_address: String,
    /// ISO 3166-1 alpha-2 code, e.g. "DE".
    pub country: String,
    pub email: String,
    pub phone: String,
    #[serde(default)]
    pub url: Option<String>,
    /// Where the privacy policy is published.
    pub policy_url: String,
    /// The legal regime the controller is subject to, e.g. "EU".
    pub jurisdiction: String,
    /// The data protection officer's e-mail address, when one is designated.
    #[serde(default)]
    pub dpo_email: Option<String>,
}

/// What the placeholder controller's text fields say.
const CONTROLLER_PLACEHOLDER: &str = "(set [controller] in the inventory)";

impl Default for Controller {
    fn default() -> Self {
        Self {
            name: format!("Steward operator {CONTROLLER_PLACEHOLDER}"),
            contact: format!("Data protection contact {CONTROLLER_PLACEHOLDER}"),
            street_address: format!("Address not set {CONTROLLER_PLACEHOLDER}"),
            country: "ZZ".into(),
            email: "privacy@example.invalid".into(),
            phone: format!("Not set {CONTROLLER_PLACEHOLDER}"),
            url: None,
            policy_url: "https://example.invalid/privacy".into(),
            jurisdiction: "EU".into(),
            dpo_email: None,
        }
    }
}

impl Controller {
    /// Whether any detail is still a placeholder from the default.
    #[must_use]
    pub fn has_placeholders(&self) -> bool {
        let d = Self::default();
        [&self.name, &self.contact, &self.street_address, &self.phone]
            .iter()
            .any(|v| v.contains(CONTROLLER_PLACEHOLDER))
            || self.country == d.country
            || self.email == d.email
            || self.policy_url == d.policy_url
    }
}

/// The technical and organisational measures Steward itself implements
/// (GDPR Art. 32), used when the inventory does not list its own.
#[must_use]
pub fn default_security_measures() -> Vec<String> {
    [
        "Encryption at rest: every personal field value is encrypted on its own with AES-256-GCM under a data key \
         that belongs to the data subject, bound to its record type, record, field, subject and key version",
        "Key management: the master key is kept outside the database; data keys are stored only wrapped by it and \
         can be rotated",
        "Search without plaintext: exact and word search use keyed blind indexes (HMAC-SHA-256), never stored \
         plaintext",
        "Encryption in transit: TLS 1.2 and 1.3 only with AEAD cipher suites and HSTS; TLS to PostgreSQL",
        "Authentication: passwords hashed with Argon2id; sessions and API tokens stored only as keyed hashes, with \
         expiry and revocation; account lockout and throttling",
        "Multi-factor authentication: a TOTP second factor (RFC 6238) is required for roles that can read personal \
         data",
        "Purpose-based access control and data minimisation: each request is made for a purpose the role may act \
         for, the data must have been collected for it and consent-based purposes need current consent; reads \
         return only the fields the purpose needs; administrators and auditors see no personal data",
        "Tamper-evident audit log of every access to personal data: an append-only Merkle tree (RFC 9162, SHA-256) \
         with Ed25519-signed tree heads; entries never contain personal values",
        "Erasure by crypto-shredding: destroying a subject's data key makes every copy of their data unreadable, \
         including old database pages and backups",
        "Retention schedules per record type and purpose, defined in the data inventory",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

/// A data category such as identity, contact details or health.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub description: String,
    /// Special category under GDPR Art. 9.
    #[serde(default)]
    pub special: bool,
    /// The Art. 9(2) condition that allows processing a special category.
    #[serde(default)]
    pub condition: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordType {
    pub description: String,
    /// Records of this type are the data subjects themselves.
    #[serde(default)]
    pub subject: bool,
    pub retention_days: u32,
    pub retention_trigger: RetentionTrigger,
    pub fields: IndexMap<String, FieldSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetentionTrigger {
    Created,
    LastUpdate,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub category: String,
    pub kind: FieldKind,
    /// Personal data: stored only through the field codec.
    pub personal: bool,
    #[serde(default)]
    pub search: Option<SearchKind>,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub max_length: Option<usize>,
    /// For `kind = "reference"`: the record type referred to.
    #[serde(default)]
    pub references: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    Email,
    Phone,
    Country,
    Date,
    Reference,
}

/// How a field can be searched. Both use keyed blind indexes, never plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchKind {
    /// Exact match on the whole normalised value.
    Exact,
    /// Match on any whole word (case-insensitive).
    Words,
}

/// GDPR Art. 6(1) lawful bases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LawfulBasis {
    Consent,
    Contract,
    LegalObligation,
    VitalInterests,
    PublicTask,
    LegitimateInterest,
}

impl LawfulBasis {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consent => "consent",
            Self::Contract => "contract",
            Self::LegalObligation => "legal_obligation",
            Self::VitalInterests => "vital_interests",
            Self::PublicTask => "public_task",
            Self::LegitimateInterest => "legitimate_interest",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Purpose {
    pub description: String,
    pub lawful_basis: LawfulBasis,
    /// Whether data may be collected for this purpose.
    pub collection: bool,
    #[serde(default)]
    pub recipients: Vec<String>,
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// Which fields of each record type this purpose needs.
    #[serde(default)]
    pub needs: IndexMap<String, Vec<String>>,
    /// Transfers to third countries or international organisations and their
    /// safeguards (GDPR Art. 30(1)(e)), e.g. "US: e-mail delivery processor,
    /// standard contractual clauses". Empty: no such transfers.
    #[serde(default)]
    pub transfers: Vec<String>,
    /// For consent-based purposes: consent must be renewed after this many days.
    #[serde(default)]
    pub consent_valid_days: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    pub description: String,
    #[serde(default)]
    pub default_purpose: Option<String>,
    #[serde(default)]
    pub purposes: Vec<String>,
    /// `<record_type>.read`, `<record_type>.write` or `<record_type>.delete`.
    #[serde(default)]
    pub actions: Vec<String>,
}

impl Role {
    #[must_use]
    pub fn allows_action(&self, record_type: &str, verb: Verb) -> bool {
        self.actions
            .iter()
            .any(|a| a.split_once('.') == Some((record_type, verb.as_str())))
    }
    #[must_use]
    pub fn allows_purpose(&self, purpose: &str) -> bool {
        self.purposes.iter().any(|p| p == purpose)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Read,
    Write,
    Delete,
}

impl Verb {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Delete => "delete",
        }
    }
}

/// Every problem found in an inventory, each with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryError {
    pub problems: Vec<String>,
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the data inventory is invalid: {}", self.problems.join("; "))
    }
}
impl std::error::Error for InventoryError {}

/// Role actions that are not about a record type.
pub const SYSTEM_ACTIONS: [&str; 2] = ["audit.read", "users.manage"];

/// Names used for record metadata in responses; no field may take them.
pub const RESERVED_FIELDS: [&str; 6] = ["id", "purposes", "created_at", "updated_at", "version", "subject_id"];

/// Fields (with their record type) that the code reads by name; an inventory
/// must declare them.
const REQUIRED_FIELDS: [(&str, &str); 13] = [
    (INTERACTION, "kind"),
    (INTERACTION, "occurred_at"),
    (INTERACTION, "summary"),
    (DEAL, "title"),
    (DEAL, "stage"),
    (DEAL, "amount"),
    (DEAL, "currency"),
    (DEAL, "organization_id"),
    (DEAL, "contact_id"),
    (ORGANIZATION, "name"),
    (ORGANIZATION, "domain"),
    (CONTACT, "email"),
    (CONTACT, "organization_id"),
];

impl Inventory {
    /// The shipped default inventory.
    ///
    /// # Panics
    /// Never in practice: a unit test proves the shipped file is valid.
    #[must_use]
    #[allow(clippy::expect_used)]
    pub fn default_inventory() -> Self {
        Self::from_toml_str(DEFAULT_INVENTORY_TOML).expect("the shipped inventory is valid")
    }

    /// Parses and validates an inventory.
    pub fn from_toml_str(s: &str) -> Result<Self, InventoryError> {
        let inv: Self = toml::from_str(s).map_err(|e| InventoryError {
            problems: vec![
                e.message().to_string() + &e.span().map(|r| format!(" (at byte {})", r.start)).unwrap_or_default(),
            ],
        })?;
        inv.validate()?;
        Ok(inv)
    }

    /// Loads `path` if it exists, else the shipped default.
    pub fn load_or_default(path: &Path) -> Result<Self, InventoryError> {
        match std::fs::read_to_string(path) {
            Ok(s) => Self::from_toml_str(&s).map_err(|mut e| {
                e.problems.insert(0, format!("in {}", path.display()));
                e
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default_inventory()),
            Err(e) => Err(InventoryError {
                problems: vec![format!("cannot read {}: {e}", path.display())],
            }),
        }
    }

    fn validate(&self) -> Result<(), InventoryError> {
        let mut p = Vec::new();
        if self.version != 1 {
            p.push(format!("version {} is not supported (expected 1)", self.version));
        }
        let country = &self.controller.country;
        if !(country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase())) {
            p.push(format!(
                "controller.country '{country}' must be an ISO 3166-1 alpha-2 code: two upper-case letters such as \"DE\""
            ));
        }
        for (name, c) in &self.categories {
            if c.special && c.condition.as_deref().is_none_or(str::is_empty) {
                p.push(format!(
                    "category '{name}' is a special category (GDPR Art. 9) and must declare a condition"
                ));
            }
        }
        let subjects: Vec<_> = self
            .record_types
            .iter()
            .filter(|(_, r)| r.subject)
            .map(|(n, _)| n)
            .collect();
        if subjects.as_slice() != [CONTACT] {
            p.push("exactly one record type, 'contact', must be marked subject = true".into());
        }
        for rt in [CONTACT, INTERACTION, DEAL, ORGANIZATION] {
            if !self.record_types.contains_key(rt) {
                p.push(format!("record type '{rt}' is missing"));
            }
        }
        for (rt, field) in REQUIRED_FIELDS {
            if self.record_types.get(rt).is_some_and(|r| !r.fields.contains_key(field)) {
                p.push(format!("record type '{rt}' must declare field '{field}'"));
            }
        }
        if let Some(spec) = self.field(CONTACT, "email") {
            if spec.kind != FieldKind::Email || !spec.personal {
                p.push("field 'contact.email' must be a personal field of kind 'email'".into());
            }
        }
        for (rt_name, rt) in &self.record_types {
            for (f_name, f) in &rt.fields {
                let at = format!("field '{rt_name}.{f_name}'");
                if RESERVED_FIELDS.contains(&f_name.as_str()) {
                    p.push(format!("{at}: the name is reserved for record metadata"));
                }
                if !is_identifier(f_name) {
                    p.push(format!("{at}: names are lower-case letters, digits and underscores"));
                }
                if !self.categories.contains_key(&f.category) {
                    p.push(format!("{at} has unknown category '{}'", f.category));
                }
                match (&f.kind, &f.references) {
                    (FieldKind::Reference, Some(target)) if !self.record_types.contains_key(target) => {
                        p.push(format!("{at} references unknown record type '{target}'"));
                    }
                    (FieldKind::Reference, None) => p.push(format!("{at} is a reference and must name 'references'")),
                    (k, Some(_)) if *k != FieldKind::Reference => {
                        p.push(format!("{at}: only reference fields may name 'references'"));
                    }
                    _ => {}
                }
                if (f.search.is_some() || f.unique) && rt_name != CONTACT {
                    p.push(format!("{at}: search and unique are supported on contact fields only"));
                }
                if f.unique && f.search != Some(SearchKind::Exact) {
                    p.push(format!("{at}: a unique field must have search = \"exact\""));
                }
            }
        }
        let mut has_compliance = false;
        for (name, purpose) in &self.purposes {
            if name == COMPLIANCE {
                has_compliance = true;
                if purpose.collection {
                    p.push("purpose 'compliance' must not be a collection purpose".into());
                }
            }
            if !is_identifier(name) {
                p.push(format!(
                    "purpose '{name}': names are lower-case letters, digits and underscores"
                ));
            }
            match purpose.consent_valid_days {
                Some(_) if purpose.lawful_basis != LawfulBasis::Consent => p.push(format!(
                    "purpose '{name}': consent_valid_days applies only to consent-based purposes (lawful_basis = \"consent\")"
                )),
                Some(0) => p.push(format!("purpose '{name}': consent_valid_days must be at least 1")),
                _ => {}
            }
            for (rt, fields) in &purpose.needs {
                let Some(rt_spec) = self.record_types.get(rt) else {
                    p.push(format!("purpose '{name}' needs fields of unknown record type '{rt}'"));
                    continue;
                };
                for f in fields {
                    if !rt_spec.fields.contains_key(f) {
                        p.push(format!("purpose '{name}' needs unknown field '{rt}.{f}'"));
                    }
                }
            }
        }
        if !has_compliance {
            p.push("purpose 'compliance' is missing".into());
        }
        for role in BUILT_IN_ROLES {
            if !self.roles.contains_key(role) {
                p.push(format!("built-in role '{role}' is missing"));
            }
        }
        for (name, role) in &self.roles {
            for purpose in &role.purposes {
                if !self.purposes.contains_key(purpose) {
                    p.push(format!("role '{name}' names unknown purpose '{purpose}'"));
                }
            }
            if let Some(d) = &role.default_purpose {
                if !role.purposes.contains(d) {
                    p.push(format!(
                        "role '{name}': default purpose '{d}' is not among its purposes"
                    ));
                }
            }
            for action in &role.actions {
                let ok = SYSTEM_ACTIONS.contains(&action.as_str())
                    || action.split_once('.').is_some_and(|(rt, verb)| {
                        self.record_types.contains_key(rt) && matches!(verb, "read" | "write" | "delete")
                    });
                if !ok {
                    p.push(format!(
                        "role '{name}' has invalid action '{action}' (expected <record_type>.read|write|delete, audit.read or users.manage)"
                    ));
                }
            }
        }
        for (name, r) in &self.recipients {
            if let Some(c) = &r.country {
                if !(c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())) {
                    p.push(format!(
                        "recipient '{name}': country '{c}' must be an ISO 3166-1 alpha-2 code such as \"US\""
                    ));
                }
            }
            if r.third_country() && r.safeguards.as_deref().is_none_or(|s| s.trim().is_empty()) {
                p.push(format!(
                    "recipient '{name}' is in a third country and must declare its safeguards (GDPR Art. 45 or 46)"
                ));
            }
        }
        for d in &self.automated_decisions {
            if [&d.name, &d.logic, &d.consequences].iter().any(|s| s.trim().is_empty()) {
                p.push("an automated decision must give its name, logic and consequences".into());
            }
        }
        crate::retention::validate_rules(self, &mut p);
        if p.is_empty() {
            Ok(())
        } else {
            Err(InventoryError { problems: p })
        }
    }

    #[must_use]
    pub fn record_type(&self, name: &str) -> Option<&RecordType> {
        self.record_types.get(name)
    }

    #[must_use]
    pub fn field(&self, record_type: &str, field: &str) -> Option<&FieldSpec> {
        self.record_types.get(record_type)?.fields.get(field)
    }

    #[must_use]
    pub fn purpose(&self, name: &str) -> Option<&Purpose> {
        self.purposes.get(name)
    }

    #[must_use]
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    /// The fields of `record_type` that `purpose` needs (empty when none or unknown).
    #[must_use]
    pub fn fields_for_purpose(&self, record_type: &str, purpose: &str) -> &[String] {
        self.purposes
            .get(purpose)
            .and_then(|p| p.needs.get(record_type))
            .map_or(&[], Vec::as_slice)
    }

    /// Whether `purpose` needs `field` of `record_type`.
    #[must_use]
    pub fn purpose_needs(&self, record_type: &str, purpose: &str, field: &str) -> bool {
        self.fields_for_purpose(record_type, purpose).iter().any(|f| f == field)
    }

    /// The union of fields that any of `purposes` needs: what may be stored
    /// for a record collected for those purposes (data minimisation).
    #[must_use]
    pub fn fields_for_purposes<'a>(&'a self, record_type: &str, purposes: &[String]) -> BTreeSet<&'a str> {
        purposes
            .iter()
            .flat_map(|p| self.fields_for_purpose(record_type, p))
            .map(String::as_str)
            .collect()
    }

    /// The personal fields of `record_type`.
    pub fn personal_fields<'a>(&'a self, record_type: &str) -> impl Iterator<Item = (&'a str, &'a FieldSpec)> {
        self.record_types
            .get(record_type)
            .into_iter()
            .flat_map(|r| r.fields.iter())
            .filter(|(_, f)| f.personal)
            .map(|(n, f)| (n.as_str(), f))
    }

    /// The purposes data may be collected for.
    pub fn collection_purposes(&self) -> impl Iterator<Item = &str> {
        self.purposes
            .iter()
            .filter(|(_, p)| p.collection)
            .map(|(n, _)| n.as_str())
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && s.as_bytes()[0].is_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_inventory_is_valid_and_matches_the_contract() {
        let inv = Inventory::default_inventory();
        let needs = |purpose: &str| inv.fields_for_purpose(CONTACT, purpose).join(",");
        assert_eq!(
            needs("customer_service"),
            "given_name,family_name,email,phone,organization_id,street,city,postal_code,country,notes"
        );
        assert_eq!(
            needs("sales"),
            "given_name,family_name,email,phone,job_title,organization_id,country,notes"
        );
        assert_eq!(needs("marketing_email"), "given_name,family_name,email");
        assert_eq!(needs("analytics"), "country,birth_date");
        assert_eq!(inv.fields_for_purpose(CONTACT, COMPLIANCE).len(), 12);
        let basis = |p: &str| inv.purpose(p).map(|p| p.lawful_basis.as_str());
        assert_eq!(basis("customer_service"), Some("contract"));
        assert_eq!(basis("sales"), Some("legitimate_interest"));
        assert_eq!(basis("marketing_email"), Some("consent"));
        assert_eq!(basis("analytics"), Some("consent"));
        assert_eq!(basis("compliance"), Some("legal_obligation"));
        let default = |r: &str| inv.role(r).and_then(|r| r.default_purpose.clone());
        assert_eq!(default("support").as_deref(), Some("customer_service"));
        assert_eq!(default("sales").as_deref(), Some("sales"));
        assert_eq!(default("marketing").as_deref(), Some("marketing_email"));
        assert_eq!(default("dpo").as_deref(), Some("compliance"));
        assert_eq!(default("admin"), None);
        assert_eq!(default("auditor"), None);
        assert!(!inv.collection_purposes().any(|p| p == COMPLIANCE));
    }

    #[test]
    fn minimisation_union() {
        let inv = Inventory::default_inventory();
        let f = inv.fields_for_purposes(CONTACT, &["marketing_email".into(), "analytics".into()]);
        assert_eq!(
            f.into_iter().collect::<Vec<_>>(),
            ["birth_date", "country", "email", "family_name", "given_name"]
        );
    }

    #[test]
    fn validation_names_each_problem() {
        let bad = DEFAULT_INVENTORY_TOML
            .replace(
                "contact = [\"country\", \"birth_date\"]",
                "contact = [\"country\", \"shoe_size\"]",
            )
            .replace("default_purpose = \"sales\"", "default_purpose = \"analytics\"")
            .replace(
                "[categories.demographic]\n",
                "[categories.demographic]\nspecial = true\n",
            );
        let err = Inventory::from_toml_str(&bad).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("purpose 'analytics' needs unknown field 'contact.shoe_size'"),
            "{text}"
        );
        assert!(
            text.contains("role 'sales': default purpose 'analytics' is not among its purposes"),
            "{text}"
        );
        assert!(text.contains("category 'demographic' is a special category"), "{text}");
        let syntax = Inventory::from_toml_str("version = ").unwrap_err();
        assert!(syntax.to_string().starts_with("the data inventory is invalid"));
        let reserved = DEFAULT_INVENTORY_TOML
            .replace("job_title = {", "version = {")
            .replace("\"job_title\"", "\"version\"");
        assert!(Inventory::from_toml_str(&reserved)
            .unwrap_err()
            .to_string()
            .contains("field 'contact.version': the name is reserved"));
        let missing_role = DEFAULT_INVENTORY_TOML.replace("[roles.auditor]", "[roles.reviewer]");
        assert!(Inventory::from_toml_str(&missing_role)
            .unwrap_err()
            .to_string()
            .contains("built-in role 'auditor' is missing"));
    }

    #[test]
    fn controller_and_security_measures_default_and_ship_as_placeholders() {
        let inv = Inventory::default_inventory();
        assert_eq!(
            inv.controller,
            Controller::default(),
            "the shipped table repeats the default"
        );
        assert!(inv.controller.has_placeholders());
        assert_eq!(inv.security_measures, default_security_measures());
        assert_eq!(inv.purpose("marketing_email").unwrap().consent_valid_days, Some(730));
        assert_eq!(inv.purpose("analytics").unwrap().consent_valid_days, Some(730));
        assert_eq!(inv.purpose("sales").unwrap().consent_valid_days, None);
        assert!(inv.purposes.values().all(|p| p.transfers.is_empty()));

        // Older inventories without the new keys still load, with the defaults.
        let start = DEFAULT_INVENTORY_TOML.find("# --- Technical").unwrap();
        let end = DEFAULT_INVENTORY_TOML.find("# --- Data categories").unwrap();
        let old = format!("{}{}", &DEFAULT_INVENTORY_TOML[..start], &DEFAULT_INVENTORY_TOML[end..])
            .replace("consent_valid_days = 730\n", "");
        assert!(!old.contains("[controller]") && !old.contains("security_measures"));
        let inv = Inventory::from_toml_str(&old).unwrap();
        assert_eq!(inv.controller, Controller::default());
        assert_eq!(inv.security_measures, default_security_measures());

        let real = DEFAULT_INVENTORY_TOML
            .replace(
                "name = \"Steward operator (set [controller] in the inventory)\"",
                "name = \"Acme GmbH\"",
            )
            .replace(
                "contact = \"Data protection contact (set [controller] in the inventory)\"",
                "contact = \"Jo Doe\"",
            )
            .replace(
                "street_address = \"Address not set (set [controller] in the inventory)\"",
                "street_address = \"Hauptstr. 1, 10115 Berlin\"",
            )
            .replace("country = \"ZZ\"", "country = \"DE\"")
            .replace(
                "email = \"privacy@example.invalid\"",
                "email = \"privacy@acme.example\"",
            )
            .replace(
                "phone = \"Not set (set [controller] in the inventory)\"",
                "phone = \"+49 30 1234567\"",
            )
            .replace(
                "policy_url = \"https://example.invalid/privacy\"",
                "policy_url = \"https://acme.example/privacy\"",
            );
        let inv = Inventory::from_toml_str(&real).unwrap();
        assert_eq!(inv.controller.name, "Acme GmbH");
        assert!(!inv.controller.has_placeholders());
    }

    #[test]
    fn validation_of_controller_country_and_consent_validity() {
        for bad in ["de", "DEU", "D", "", "D1"] {
            let toml = DEFAULT_INVENTORY_TOML.replace("country = \"ZZ\"", &format!("country = \"{bad}\""));
            let text = Inventory::from_toml_str(&toml).unwrap_err().to_string();
            assert!(
                text.contains(&format!(
                    "controller.country '{bad}' must be an ISO 3166-1 alpha-2 code"
                )),
                "{text}"
            );
        }
        let toml = DEFAULT_INVENTORY_TOML
            .replace(
                "[purposes.sales.needs]",
                "consent_valid_days = 365\n[purposes.sales.needs]",
            )
            .replace(
                "consent_valid_days = 730\n[purposes.analytics.needs]",
                "consent_valid_days = 0\n[purposes.analytics.needs]",
            );
        let text = Inventory::from_toml_str(&toml).unwrap_err().to_string();
        assert!(
            text.contains("purpose 'sales': consent_valid_days applies only to consent-based purposes"),
            "{text}"
        );
        assert!(
            text.contains("purpose 'analytics': consent_valid_days must be at least 1"),
            "{text}"
        );
        assert!(!text.contains("marketing_email"), "{text}");
        let unknown = DEFAULT_INVENTORY_TOML.replace("jurisdiction = \"EU\"", "jurisdiction = \"EU\"\nfax = \"1\"");
        assert!(Inventory::from_toml_str(&unknown)
            .unwrap_err()
            .to_string()
            .contains("fax"));
    }

    #[test]
    fn role_actions() {
        let inv = Inventory::default_inventory();
        let sales = inv.role("sales").unwrap();
        assert!(sales.allows_action(CONTACT, Verb::Read));
        assert!(sales.allows_action(DEAL, Verb::Write));
        let admin = inv.role("admin").unwrap();
        assert!(!admin.allows_action(CONTACT, Verb::Read));
    }
}
