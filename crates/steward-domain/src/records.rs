//! CRM records: contacts (the data subjects), organisations, deals and
//! interactions, plus the validation of contact fields against the inventory.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{DealId, InteractionId, OrganizationId, SubjectId};
use crate::inventory::{FieldKind, Inventory, CONTACT};
use crate::values::{parse_date, Amount, CountryCode, CurrencyCode, EmailAddress, PhoneNumber};

/// One field-level problem, named by field. The message never echoes the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Parses one contact field value against its inventory spec and returns the
/// normalised text form that is stored.
pub fn normalise_contact_field(
    inventory: &Inventory,
    field: &str,
    value: &serde_json::Value,
) -> Result<String, FieldError> {
    let spec = inventory
        .field(CONTACT, field)
        .ok_or_else(|| FieldError::new(field, "is not a contact field in the data inventory"))?;
    let serde_json::Value::String(raw) = value else {
        return Err(FieldError::new(field, "must be a string"));
    };
    let err = |m: &str| FieldError::new(field, m);
    let out = match spec.kind {
        FieldKind::Text => {
            let t = raw.trim();
            if t.is_empty() {
                return Err(err("must not be empty"));
            }
            if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
                return Err(err("must not contain control characters"));
            }
            if let Some(max) = spec.max_length {
                if t.chars().count() > max {
                    return Err(FieldError::new(field, format!("must be at most {max} characters")));
                }
            }
            t.to_string()
        }
        FieldKind::Email => EmailAddress::parse(raw).map_err(|e| err(e.0))?.as_str().to_string(),
        FieldKind::Phone => PhoneNumber::parse(raw).map_err(|e| err(e.0))?.as_str().to_string(),
        FieldKind::Country => CountryCode::parse(raw).map_err(|e| err(e.0))?.as_str().to_string(),
        FieldKind::Date => parse_date(raw).map_err(|e| err(e.0))?.format("%Y-%m-%d").to_string(),
        FieldKind::Reference => raw
            .trim()
            .parse::<uuid::Uuid>()
            .map_err(|_| err("must be a record id (UUID)"))?
            .hyphenated()
            .to_string(),
    };
    Ok(out)
}

/// Words of a text used for word search: lower-cased runs of letters and digits.
pub fn search_words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: OrganizationId,
    pub name: String,
    pub domain: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Parses an internet domain name such as `example.com`.
pub fn parse_domain(input: &str) -> Result<String, &'static str> {
    let d = input.trim().trim_end_matches('.').to_lowercase();
    let ok = d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if ok {
        Ok(d)
    } else {
        Err("is not a valid domain name")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DealStage {
    Lead,
    Qualified,
    Proposal,
    Negotiation,
    Won,
    Lost,
}

impl DealStage {
    pub const ALL: [Self; 6] = [
        Self::Lead,
        Self::Qualified,
        Self::Proposal,
        Self::Negotiation,
        Self::Won,
        Self::Lost,
    ];
    /// The stages' names, and null (no stage given), for schemas.
    pub const NAMES_OR_NULL: [Option<&'static str>; 7] = [
        Some("lead"),
        Some("qualified"),
        Some("proposal"),
        Some("negotiation"),
        Some("won"),
        Some("lost"),
        None,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lead => "lead",
            Self::Qualified => "qualified",
            Self::Proposal => "proposal",
            Self::Negotiation => "negotiation",
            Self::Won => "won",
            Self::Lost => "lost",
        }
    }

    pub fn parse(s: &str) -> Result<Self, &'static str> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or("must be one of lead, qualified, proposal, negotiation, won, lost")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deal {
    pub id: DealId,
    pub title: String,
    pub stage: DealStage,
    pub amount: Option<Amount>,
    pub currency: Option<CurrencyCode>,
    pub organization_id: Option<OrganizationId>,
    /// The contact (data subject) this deal is linked to, if any.
    pub contact_id: Option<SubjectId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractionKind {
    Note,
    Call,
    Email,
    Meeting,
}

impl InteractionKind {
    pub const ALL: [Self; 4] = [Self::Note, Self::Call, Self::Email, Self::Meeting];
    /// The kinds' names, for schemas.
    pub const NAMES: [&'static str; 4] = ["note", "call", "email", "meeting"];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Note => "note",
            Self::Call => "call",
            Self::Email => "email",
            Self::Meeting => "meeting",
        }
    }

    pub fn parse(s: &str) -> Result<Self, &'static str> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or("must be one of note, call, email, meeting")
    }
}

/// An interaction with a contact. `summary` is personal (free text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    pub id: InteractionId,
    pub subject_id: SubjectId,
    pub kind: InteractionKind,
    pub summary: String,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn contact_fields_normalise_by_kind() {
        let inv = Inventory::default_inventory();
        let n = |f: &str, v: serde_json::Value| normalise_contact_field(&inv, f, &v);
        assert_eq!(n("email", json!("Ada@Example.com")), Ok("Ada@example.com".into()));
        assert_eq!(n("phone", json!("+44 20 7946 0958")), Ok("+442079460958".into()));
        assert_eq!(n("country", json!("gb")), Ok("GB".into()));
        assert_eq!(n("given_name", json!("  Ada ")), Ok("Ada".into()));
        assert_eq!(n("birth_date", json!("1815-12-10")), Ok("1815-12-10".into()));
        assert_eq!(n("given_name", json!(42)).unwrap_err().message, "must be a string");
        assert_eq!(n("shoe_size", json!("44")).unwrap_err().field, "shoe_size");
        assert!(n("birth_date", json!("10.12.1815")).is_err());
        assert!(n("organization_id", json!("acme")).is_err());
        let long = "x".repeat(201);
        assert!(n("given_name", json!(long)).is_err());
    }

    #[test]
    fn words_and_domains() {
        assert_eq!(
            search_words("Mary-Jane  O'Neil").collect::<Vec<_>>(),
            ["mary", "jane", "o", "neil"]
        );
        assert_eq!(parse_domain("Example.COM."), Ok("example.com".into()));
        assert!(parse_domain("nodot").is_err());
    }

    #[test]
    fn enums_parse() {
        assert_eq!(DealStage::parse("won"), Ok(DealStage::Won));
        assert!(DealStage::parse("WON").is_err());
        assert_eq!(InteractionKind::parse("meeting"), Ok(InteractionKind::Meeting));
        assert!(InteractionKind::parse("fax").is_err());
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    #[test]
    fn schema_names_are_the_parsed_names() {
        let stages: Vec<_> = DealStage::ALL.iter().map(|s| Some(s.as_str())).chain([None]).collect();
        assert_eq!(stages, DealStage::NAMES_OR_NULL);
        let kinds: Vec<_> = InteractionKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(kinds, InteractionKind::NAMES);
    }
}
