//! Instance settings: named values stored in the database, with defaults,
//! changed by administrators (API) or the operator (CLI). Every change is
//! audited.

use std::collections::BTreeMap;

use steward_store::WriteOp;

use crate::auth::system_entry;
use crate::error::{ServiceError, ServiceResult};
use crate::Service;

/// A setting: its name, default, and what values it takes.
pub struct SettingSpec {
    pub name: &'static str,
    pub default: &'static str,
    pub description: &'static str,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Bool,
    /// An integer within bounds.
    Int(i64, i64),
    /// A calendar date (YYYY-MM-DD), or empty for none.
    Date,
    /// An identifier of 1 to 64 ASCII letters, digits, `_`, `-` or `.`,
    /// or empty for none.
    Identifier,
}

/// Every setting Steward knows.
pub const SETTINGS: &[SettingSpec] = &[
    SettingSpec {
        name: "require_mfa",
        default: "true",
        description: "Interactive sign-in of roles that can read personal data needs a second factor",
        kind: Kind::Bool,
    },
    SettingSpec {
        name: "require_training",
        default: "false",
        description: "Staff without current data-protection training may not access personal data",
        kind: Kind::Bool,
    },
    SettingSpec {
        name: "session_idle_minutes",
        default: "30",
        description: "A session unused this long expires",
        kind: Kind::Int(1, 24 * 60),
    },
    SettingSpec {
        name: "session_absolute_hours",
        default: "12",
        description: "A session expires this long after sign-in",
        kind: Kind::Int(1, 24 * 30),
    },
    SettingSpec {
        name: "lockout_threshold",
        default: "5",
        description: "Consecutive failed sign-ins that lock an account",
        kind: Kind::Int(1, 100),
    },
    SettingSpec {
        name: "consent_confirmation_days",
        default: "7",
        description: "How long the one-time code of a double opt-in stays valid",
        kind: Kind::Int(1, 30),
    },
    SettingSpec {
        name: "reconsent_grace_days",
        default: "30",
        description: "After a material privacy-notice version, consents given under older versions end this many days after its publication unless renewed",
        kind: Kind::Int(0, 365),
    },
    SettingSpec {
        name: "key_backup_verified_on",
        default: "",
        description: "The date (YYYY-MM-DD) a backup of the key files (master key, subject-key vault, audit signing key) was last made and checked; steward doctor warns when it is old or missing",
        kind: Kind::Date,
    },
    SettingSpec {
        name: "lockout_minutes",
        default: "15",
        description: "How long a locked account stays locked",
        kind: Kind::Int(1, 24 * 60),
    },
    SettingSpec {
        name: "drp_business_id",
        default: "",
        description: "This business's id in the Data Rights Protocol network (its business-id); empty turns the DRP endpoints for authorised agents off",
        kind: Kind::Identifier,
    },
];

/// The settings in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub require_mfa: bool,
    pub require_training: bool,
    pub session_idle_minutes: i64,
    pub session_absolute_hours: i64,
    pub lockout_threshold: u32,
    pub lockout_minutes: i64,
    pub consent_confirmation_days: i64,
    pub reconsent_grace_days: i64,
    pub key_backup_verified_on: Option<chrono::NaiveDate>,
    /// The Data Rights Protocol `business-id`; `None`: DRP is off.
    pub drp_business_id: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self::from_map(&BTreeMap::new())
    }
}

fn spec(name: &str) -> Option<&'static SettingSpec> {
    SETTINGS.iter().find(|s| s.name == name)
}

fn check(spec: &SettingSpec, value: &str) -> Result<String, String> {
    match spec.kind {
        Kind::Bool => match value.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => Ok("true".into()),
            "false" | "off" | "no" | "0" => Ok("false".into()),
            _ => Err("must be true or false".into()),
        },
        Kind::Int(lo, hi) => match value.trim().parse::<i64>() {
            Ok(n) if (lo..=hi).contains(&n) => Ok(n.to_string()),
            _ => Err(format!("must be a whole number from {lo} to {hi}")),
        },
        Kind::Date => {
            let v = value.trim();
            if v.is_empty() {
                return Ok(String::new());
            }
            chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map(|d| d.to_string())
                .map_err(|_| "must be a date as YYYY-MM-DD (or empty)".into())
        }
        Kind::Identifier => {
            let v = value.trim();
            let ok = v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if ok {
                Ok(v.to_string())
            } else {
                Err("must be 1 to 64 letters, digits, '_', '-' or '.' (or empty)".into())
            }
        }
    }
}

impl Settings {
    fn from_map(values: &BTreeMap<String, String>) -> Self {
        let get = |name: &str| {
            let spec = spec(name);
            values
                .get(name)
                .and_then(|v| spec.and_then(|s| check(s, v).ok()))
                .or_else(|| spec.map(|s| s.default.to_string()))
                .unwrap_or_default()
        };
        let int = |name: &str| get(name).parse::<i64>().unwrap_or(0);
        Self {
            require_mfa: get("require_mfa") == "true",
            require_training: get("require_training") == "true",
            session_idle_minutes: int("session_idle_minutes"),
            session_absolute_hours: int("session_absolute_hours"),
            lockout_threshold: u32::try_from(int("lockout_threshold")).unwrap_or(5),
            lockout_minutes: int("lockout_minutes"),
            consent_confirmation_days: int("consent_confirmation_days"),
            reconsent_grace_days: int("reconsent_grace_days"),
            key_backup_verified_on: chrono::NaiveDate::parse_from_str(&get("key_backup_verified_on"), "%Y-%m-%d").ok(),
            drp_business_id: Some(get("drp_business_id")).filter(|v| !v.is_empty()),
        }
    }
}

impl Service {
    /// The settings in force (cached for a moment; changes take effect at
    /// once, in this process and — through the store's access epoch — in
    /// every other process on the same database, e.g. a running server
    /// when the CLI changes a setting).
    pub async fn settings(&self) -> ServiceResult<Settings> {
        self.auth.sync_epoch(self.store.access_epoch());
        if let Some(s) = self.auth.cached_settings() {
            return Ok(s);
        }
        let values: BTreeMap<String, String> = self.store.get_settings().await?.into_iter().collect();
        let settings = Settings::from_map(&values);
        self.auth.cache_settings(&settings);
        Ok(settings)
    }

    /// Whether the user has current data-protection training (cached briefly).
    pub(crate) async fn trained(&self, user: steward_domain::UserId) -> ServiceResult<bool> {
        self.auth.sync_epoch(self.store.access_epoch());
        if let Some(t) = self.auth.cached_training(user) {
            return Ok(t);
        }
        let records = self.store.list_training(Some(user)).await?;
        let current = crate::admin::training_current(&records, chrono::Utc::now().date_naive());
        self.auth.cache_training(user, current);
        Ok(current)
    }

    /// Every setting with its current value, for display.
    pub async fn settings_table(&self) -> ServiceResult<Vec<(&'static str, String, &'static str)>> {
        let values: BTreeMap<String, String> = self.store.get_settings().await?.into_iter().collect();
        Ok(SETTINGS
            .iter()
            .map(|s| {
                (
                    s.name,
                    values.get(s.name).cloned().unwrap_or_else(|| s.default.to_string()),
                    s.description,
                )
            })
            .collect())
    }

    /// Changes a setting (validated); recorded in the audit log.
    pub async fn set_setting(&self, name: &str, value: &str, audit: WriteOp) -> ServiceResult<String> {
        let spec = spec(name).ok_or_else(|| {
            let names: Vec<_> = SETTINGS.iter().map(|s| s.name).collect();
            ServiceError::invalid("name", format!("must be one of {}", names.join(", ")))
        })?;
        let value = check(spec, value).map_err(|m| ServiceError::invalid(spec.name, m))?;
        self.store
            .write(vec![
                WriteOp::PutSetting {
                    name: spec.name.into(),
                    value: value.clone(),
                },
                audit,
            ])
            .await?;
        self.auth.forget_tokens();
        tracing::info!(setting = spec.name, "setting changed");
        Ok(value)
    }

    /// [`Service::set_setting`] by the operator (CLI).
    pub async fn set_setting_locally(&self, name: &str, value: &str) -> ServiceResult<String> {
        let audit = system_entry("setting.change", &[], Some(format!("{name} changed")));
        self.set_setting(name, value, audit).await
    }
}

/// The JSON schema of a settings change (`PUT /api/v1/settings`), from
/// [`SETTINGS`]: each known setting with its type and bounds; unknown names
/// are refused. (The API also takes the values as text, as the command
/// line does.)
#[must_use]
pub fn change_schema() -> serde_json::Value {
    serde_json::json!({"type": "object", "properties": property_schemas(), "additionalProperties": false})
}

/// The JSON Schema of the settings as `GET /api/v1/settings` answers them:
/// every setting, each of the JSON type of its kind ([`json_value`]).
#[must_use]
pub fn settings_schema() -> serde_json::Value {
    let required: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
    serde_json::json!({"type": "object", "required": required, "properties": property_schemas(), "additionalProperties": false})
}

/// A stored setting's text as the JSON value of its kind: a boolean, an
/// integer, or a string (dates and identifiers, empty for none). Text a
/// kind cannot read (never stored: every change is checked) stays a string.
#[must_use]
pub fn json_value(name: &str, text: &str) -> serde_json::Value {
    use serde_json::Value;
    match spec(name).map(|s| s.kind) {
        Some(Kind::Bool) if text == "true" || text == "false" => Value::Bool(text == "true"),
        Some(Kind::Int(..)) => text.parse::<i64>().map_or_else(|_| Value::from(text), Value::from),
        _ => Value::from(text),
    }
}

fn property_schemas() -> serde_json::Map<String, serde_json::Value> {
    let mut props = serde_json::Map::new();
    for s in SETTINGS {
        let mut schema = match s.kind {
            Kind::Bool => serde_json::json!({"type": "boolean"}),
            Kind::Int(lo, hi) => serde_json::json!({"type": "integer", "minimum": lo, "maximum": hi}),
            Kind::Date => {
                serde_json::json!({"type": "string", "anyOf": [{"format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}, {"const": ""}]})
            }
            Kind::Identifier => serde_json::json!({"type": "string", "pattern": "^[A-Za-z0-9_.-]{0,64}$"}),
        };
        if let Some(obj) = schema.as_object_mut() {
            obj.insert("description".into(), s.description.into());
            let default = match s.kind {
                Kind::Date | Kind::Identifier => serde_json::Value::from(s.default),
                _ => serde_json::from_str(s.default).unwrap_or_else(|_| s.default.into()),
            };
            obj.insert("default".into(), default);
        }
        props.insert(s.name.into(), schema);
    }
    props
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_answer_in_the_json_type_of_their_kind() {
        use serde_json::json;
        assert_eq!(json_value("require_mfa", "false"), json!(false));
        assert_eq!(json_value("lockout_threshold", "7"), json!(7));
        // An identifier made of digits is still a string, as its schema says.
        assert_eq!(json_value("drp_business_id", "12345"), json!("12345"));
        assert_eq!(json_value("key_backup_verified_on", ""), json!(""));
        let schema = settings_schema();
        assert_eq!(schema["required"].as_array().map(Vec::len), Some(SETTINGS.len()));
        assert_eq!(schema["properties"], change_schema()["properties"]);
    }

    #[test]
    fn defaults_and_validation() {
        let d = Settings::default();
        assert!(d.require_mfa && !d.require_training);
        assert_eq!((d.session_idle_minutes, d.lockout_threshold), (30, 5));
        let mut m = BTreeMap::new();
        m.insert("require_mfa".to_string(), "off".to_string());
        m.insert("lockout_threshold".to_string(), "9999".to_string());
        let s = Settings::from_map(&m);
        assert!(!s.require_mfa);
        assert_eq!(
            s.lockout_threshold, 5,
            "an out-of-range stored value falls back to the default"
        );
        assert!(check(spec("lockout_threshold").unwrap(), "0").is_err());
        assert_eq!(check(spec("require_training").unwrap(), "YES"), Ok("true".into()));
    }
}
