//! SCIM resources as JSON (RFC 7643 §4): a Steward staff account as a
//! `User`, a role as a `Group`; parsing a `User` from a POST, PUT or
//! patched body, and rendering both.
//!
//! Only the attributes below are kept: `userName`, `active`, `externalId`,
//! `name` (`givenName`, `familyName`, `middleName`, `formatted`),
//! `displayName`, `emails` (`value`, `type`, `primary`) and `groups`.
//! Everything else an identity provider sends (phone numbers, addresses,
//! titles, extension schemas) is not stored: data minimisation.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use steward_domain::UserId;

use super::patch::{member, message_object};
use super::ScimError;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// The User attributes as rendered (for PATCH).
pub const USER_ATTRIBUTES: &[&str] = &[
    "userName",
    "active",
    "externalId",
    "name",
    "displayName",
    "emails",
    "groups",
];
pub const USER_MULTI_VALUED: &[&str] = &["emails", "groups"];
pub const READ_ONLY: &[&str] = &["id", "meta"];

/// Longest accepted text of one attribute.
const MAX_TEXT: usize = 256;
/// Most e-mail addresses per account.
pub const MAX_EMAILS: usize = 10;

/// A staff account's profile as SCIM carries it: personal data, kept
/// sealed at rest and never written to logs or the audit log (no `Debug`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(default)]
    pub name: Name,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<Email>,
}

#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Name {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
}

impl Name {
    fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Email {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default)]
    pub primary: bool,
}

/// A User as a client sent it, parsed and checked.
pub struct UserInput {
    /// Lower-cased; a valid Steward username.
    pub user_name: String,
    pub active: bool,
    pub profile: Profile,
    /// `groups` as sent: `None` if absent, else the last group listed
    /// (a Steward account has one role), `Some(None)` for an empty list.
    pub group: Option<Option<String>>,
}

/// A staff account as SCIM shows it.
pub struct ScimUser {
    pub id: UserId,
    pub user_name: String,
    pub active: bool,
    pub role: String,
    pub profile: Profile,
    pub created: DateTime<Utc>,
    pub last_modified: DateTime<Utc>,
}

/// A role as a SCIM group, with its members (id, username).
pub struct ScimGroup {
    pub role: String,
    pub members: Vec<(UserId, String)>,
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::bad("invalidValue", detail)
}

fn text(v: &Value, attribute: &str) -> Result<Option<String>, ScimError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            let s = s.trim();
            if s.chars().count() > MAX_TEXT || s.chars().any(char::is_control) {
                Err(invalid(format!(
                    "{attribute} must be at most {MAX_TEXT} printable characters"
                )))
            } else if s.is_empty() {
                Ok(None)
            } else {
                Ok(Some(s.to_string()))
            }
        }
        _ => Err(invalid(format!("{attribute} must be a string"))),
    }
}

fn optional_text(obj: &Map<String, Value>, name: &str, attribute: &str) -> Result<Option<String>, ScimError> {
    member(obj, name).map_or(Ok(None), |v| text(v, attribute))
}

/// SCIM booleans; Entra ID sends `"True"` and `"False"` as strings.
fn boolean(v: &Value, attribute: &str) -> Result<bool, ScimError> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(invalid(format!("{attribute} must be true or false"))),
    }
}

/// Parses a User resource body.
pub fn parse_user(body: &Value) -> Result<UserInput, ScimError> {
    let obj = message_object(body, USER_SCHEMA, "a User must list the core User schema")?;
    if member(obj, "password").is_some_and(|p| !p.is_null()) {
        return Err(invalid(
            "passwords are not provisioned over SCIM; an administrator sets one in Steward",
        ));
    }
    let user_name = member(obj, "userName")
        .map(|v| text(v, "userName"))
        .transpose()?
        .flatten()
        .ok_or_else(|| invalid("userName is required"))?
        .to_lowercase();
    if crate::auth::validate_username(&user_name).is_err() {
        return Err(invalid(
            "userName must be 1 to 64 letters, digits, '.', '_' or '-' (not an e-mail address: usernames appear in the audit log)",
        ));
    }
    let active = member(obj, "active").map_or(Ok(true), |v| boolean(v, "active"))?;
    let external_id = optional_text(obj, "externalId", "externalId")?;
    let name = match member(obj, "name") {
        None | Some(Value::Null) => Name::default(),
        Some(Value::Object(n)) => Name {
            formatted: optional_text(n, "formatted", "name.formatted")?,
            family_name: optional_text(n, "familyName", "name.familyName")?,
            given_name: optional_text(n, "givenName", "name.givenName")?,
            middle_name: optional_text(n, "middleName", "name.middleName")?,
        },
        Some(_) => return Err(invalid("name must be an object")),
    };
    let display_name = optional_text(obj, "displayName", "displayName")?;
    let emails = match member(obj, "emails") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            if items.len() > MAX_EMAILS {
                return Err(invalid(format!("at most {MAX_EMAILS} emails are kept")));
            }
            let mut out: Vec<Email> = Vec::new();
            for item in items {
                let e = item
                    .as_object()
                    .ok_or_else(|| invalid("each of emails must be an object"))?;
                let value = optional_text(e, "value", "emails.value")?
                    .ok_or_else(|| invalid("each of emails needs a value"))?;
                let at = value.find('@');
                if value.chars().any(char::is_whitespace) || at.is_none_or(|i| i == 0 || i + 1 == value.len()) {
                    return Err(invalid("emails.value must be an e-mail address"));
                }
                let primary = member(e, "primary").map_or(Ok(false), |v| boolean(v, "emails.primary"))?;
                if primary {
                    // At most one primary (RFC 7643 §2.4): the last one marked wins.
                    for earlier in &mut out {
                        earlier.primary = false;
                    }
                }
                out.push(Email {
                    value,
                    kind: optional_text(e, "type", "emails.type")?,
                    primary,
                });
            }
            out
        }
        Some(_) => return Err(invalid("emails must be an array")),
    };
    let group = match member(obj, "groups") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::Array(items)) => {
            let mut last = None;
            for item in items {
                let g = item
                    .as_object()
                    .ok_or_else(|| invalid("each of groups must be an object"))?;
                let value = optional_text(g, "value", "groups.value")?
                    .ok_or_else(|| invalid("each of groups needs a value (the group's id)"))?;
                last = Some(value);
            }
            Some(last)
        }
        Some(_) => return Err(invalid("groups must be an array")),
    };
    Ok(UserInput {
        user_name,
        active,
        profile: Profile {
            external_id,
            name,
            display_name,
            emails,
        },
        group,
    })
}

pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The User resource; `base` is the SCIM base URL (`…/scim/v2`).
pub fn user_json(u: &ScimUser, base: &str) -> Value {
    let mut obj = Map::new();
    obj.insert("schemas".into(), json!([USER_SCHEMA]));
    obj.insert("id".into(), json!(u.id.to_string()));
    if let Some(x) = &u.profile.external_id {
        obj.insert("externalId".into(), json!(x));
    }
    obj.insert("userName".into(), json!(u.user_name));
    if !u.profile.name.is_empty() {
        let n = &u.profile.name;
        let mut name = Map::new();
        for (k, v) in [
            ("formatted", &n.formatted),
            ("familyName", &n.family_name),
            ("givenName", &n.given_name),
            ("middleName", &n.middle_name),
        ] {
            if let Some(v) = v {
                name.insert(k.into(), json!(v));
            }
        }
        obj.insert("name".into(), Value::Object(name));
    }
    if let Some(d) = &u.profile.display_name {
        obj.insert("displayName".into(), json!(d));
    }
    if !u.profile.emails.is_empty() {
        let emails: Vec<Value> = u
            .profile
            .emails
            .iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("value".into(), json!(e.value));
                if let Some(k) = &e.kind {
                    m.insert("type".into(), json!(k));
                }
                m.insert("primary".into(), json!(e.primary));
                Value::Object(m)
            })
            .collect();
        obj.insert("emails".into(), Value::Array(emails));
    }
    obj.insert("active".into(), json!(u.active));
    obj.insert(
        "groups".into(),
        json!([{
            "value": u.role,
            "display": u.role,
            "$ref": format!("{base}/Groups/{}", u.role),
            "type": "direct",
        }]),
    );
    obj.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": timestamp(u.created),
            "lastModified": timestamp(u.last_modified),
            "location": format!("{base}/Users/{}", u.id),
        }),
    );
    Value::Object(obj)
}

/// The Group resource; without members when `members` is false
/// (`excludedAttributes=members`).
pub fn group_json(g: &ScimGroup, base: &str, members: bool) -> Value {
    let mut obj = Map::new();
    obj.insert("schemas".into(), json!([GROUP_SCHEMA]));
    obj.insert("id".into(), json!(g.role));
    obj.insert("displayName".into(), json!(g.role));
    if members {
        let list: Vec<Value> = g
            .members
            .iter()
            .map(|(id, username)| {
                json!({
                    "value": id.to_string(),
                    "display": username,
                    "$ref": format!("{base}/Users/{id}"),
                    "type": "User",
                })
            })
            .collect();
        obj.insert("members".into(), Value::Array(list));
    }
    obj.insert(
        "meta".into(),
        json!({"resourceType": "Group", "location": format!("{base}/Groups/{}", g.role)}),
    );
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<UserInput, ScimError> {
        parse_user(&v)
    }

    #[test]
    fn the_rfc_example_parses_and_renders_back() {
        let u = parse(json!({
            "schemas": [USER_SCHEMA],
            "userName": "BJensen",
            "externalId": "bjensen",
            "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara"},
            "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
            "phoneNumbers": [{"value": "555-555-8377", "type": "work"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales"}
        }))
        .unwrap();
        assert_eq!(u.user_name, "bjensen");
        assert!(u.active);
        assert_eq!(u.group, None);
        assert_eq!(u.profile.name.given_name.as_deref(), Some("Barbara"));
        let user = ScimUser {
            id: UserId::new(),
            user_name: u.user_name,
            active: true,
            role: "sales".into(),
            profile: u.profile,
            created: Utc::now(),
            last_modified: Utc::now(),
        };
        let v = user_json(&user, "https://x/scim/v2");
        assert_eq!(v["emails"][0]["value"], json!("bjensen@example.com"));
        assert_eq!(v["groups"][0]["value"], json!("sales"));
        assert!(v.get("phoneNumbers").is_none(), "not kept");
        let again = parse_user(&v).unwrap();
        assert_eq!(again.group, Some(Some("sales".into())));
        assert!(again.profile == user.profile);
    }

    #[test]
    fn refusals_name_the_attribute_not_the_value() {
        for (body, needle) in [
            (json!({}), "userName is required"),
            (json!({"userName": "bj@example.com"}), "userName must be"),
            (json!({"userName": "bj", "password": "secret-value"}), "passwords"),
            (json!({"userName": "bj", "active": "maybe"}), "active"),
            (
                json!({"userName": "bj", "emails": [{"value": "not-an-address"}]}),
                "emails.value",
            ),
            (json!({"userName": "bj", "name": "Barbara"}), "name must be"),
            (json!({"userName": "bj", "schemas": ["urn:x"]}), "schema"),
        ] {
            let e = parse(body.clone())
                .err()
                .unwrap_or_else(|| panic!("{body} should fail"));
            assert_eq!(e.status, 400);
            assert!(e.detail.contains(needle), "{}: {}", body, e.detail);
            for secret in ["bj@example.com", "secret-value", "maybe", "not-an-address", "Barbara"] {
                assert!(!e.detail.contains(secret), "{}", e.detail);
            }
        }
    }

    #[test]
    fn string_booleans_one_primary_and_the_last_group() {
        let u = parse(json!({
            "userName": "bj",
            "active": "False",
            "emails": [{"value": "a@x.org", "primary": true}, {"value": "b@x.org", "primary": "True"}],
            "groups": [{"value": "sales"}, {"value": "support"}]
        }))
        .unwrap();
        assert!(!u.active);
        assert_eq!(
            u.profile.emails.iter().map(|e| e.primary).collect::<Vec<_>>(),
            vec![false, true]
        );
        assert_eq!(u.group, Some(Some("support".into())));
        assert_eq!(
            parse(json!({"userName": "bj", "groups": []})).unwrap().group,
            Some(None)
        );
    }
}
