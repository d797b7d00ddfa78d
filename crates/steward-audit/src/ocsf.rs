//! OCSF 1.x "API Activity" (class 6003) events for SIEM export.
//!
//! The mapping is deliberately shallow: the well-known OCSF attributes carry
//! what a SIEM correlates on (time, actor, operation, request id, source IP,
//! status), and everything Steward-specific goes to `unmapped`.

use serde_json::{json, Map, Value};

use crate::entry::{AuditEntry, Outcome};

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.3.0";

/// OCSF API Activity `activity_id` and its name, from the action's verb (the
/// part after the last dot).
fn activity(action: &str) -> (u8, &'static str) {
    let verb = action.rsplit('.').next().unwrap_or(action);
    match verb {
        "create" | "import" => (1, "Create"),
        "read" | "search" | "list" | "export" => (2, "Read"),
        "update" | "rotate" => (3, "Update"),
        "delete" | "erase" => (4, "Delete"),
        _ => (99, "Other"),
    }
}

fn insert_some(map: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(v) = value {
        map.insert(key.to_owned(), v.into());
    }
}

/// The entry as an OCSF API Activity event.
#[must_use]
pub fn to_ocsf(entry: &AuditEntry) -> Value {
    let r = &entry.record;
    let (activity_id, activity_name) = activity(&r.action);
    let (status, status_id) = match r.outcome {
        Outcome::Ok => ("Success", 1),
        Outcome::Denied | Outcome::Failed => ("Failure", 2),
    };

    let mut user = Map::new();
    insert_some(&mut user, "uid", r.actor.user_id.map(|u| u.to_string()));
    insert_some(&mut user, "name", r.actor.username.clone());
    let mut actor = Map::new();
    actor.insert("user".into(), Value::Object(user));

    let mut api = Map::new();
    api.insert("operation".into(), Value::String(r.action.clone()));
    if let Some(id) = &r.request_id {
        api.insert("request".into(), json!({ "uid": id }));
    }

    let mut src = Map::new();
    insert_some(&mut src, "ip", r.client.clone());

    let mut event = json!({
        "activity_id": activity_id,
        "activity_name": activity_name,
        "category_uid": 6,
        "category_name": "Application Activity",
        "class_uid": 6003,
        "class_name": "API Activity",
        "type_uid": 6003 * 100 + u32::from(activity_id),
        "type_name": format!("API Activity: {activity_name}"),
        "severity_id": 1,
        "severity": "Informational",
        "time": r.at.timestamp_millis(),
        "actor": actor,
        "api": api,
        "src_endpoint": src,
        "status": status,
        "status_id": status_id,
        "metadata": {
            "version": OCSF_VERSION,
            "product": { "name": "Steward", "vendor_name": "Steward" },
            "log_name": "audit",
            "sequence": entry.index,
        },
        "unmapped": {
            "subject_id": r.subject_id.map(|u| u.to_string()),
            "record_ids": r.record_ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "fields": r.fields,
            "purpose": r.purpose,
            "outcome": r.outcome.as_str(),
            "reason": r.reason,
            "actor_kind": r.actor.kind.as_str(),
            "token_id": r.actor.token_id.map(|u| u.to_string()),
            "role": r.actor.role,
        },
    });
    if let (Some(reason), Some(obj)) = (&r.reason, event.as_object_mut()) {
        obj.insert("status_detail".into(), Value::String(reason.clone()));
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Actor, ActorKind, AuditRecord};
    use chrono::TimeZone;
    use uuid::Uuid;

    #[test]
    fn maps_an_entry() {
        let user = Uuid::from_u128(1);
        let subject = Uuid::from_u128(2);
        let mut r = AuditRecord::new(
            chrono::Utc.with_ymd_and_hms(2026, 1, 31, 9, 30, 0).unwrap(),
            Actor {
                kind: ActorKind::User,
                user_id: Some(user),
                token_id: None,
                username: Some("alice".into()),
                role: Some("sales".into()),
            },
            "contact.read",
            Outcome::Denied,
        );
        r.subject_id = Some(subject);
        r.record_ids = vec![subject];
        r.fields = vec!["email".into()];
        r.purpose = Some("marketing".into());
        r.reason = Some("purpose not allowed for role".into());
        r.request_id = Some("req-9".into());
        r.client = Some("192.0.2.1".into());
        let e = AuditEntry {
            index: 41,
            prev: [0; 32],
            record: r,
        };
        let v = to_ocsf(&e);
        assert_eq!(v["class_uid"], 6003);
        assert_eq!(v["category_uid"], 6);
        assert_eq!(v["activity_id"], 2);
        assert_eq!(v["type_uid"], 600_302);
        assert_eq!(v["time"], 1_769_851_800_000_i64);
        assert_eq!(v["actor"]["user"]["uid"], user.to_string());
        assert_eq!(v["actor"]["user"]["name"], "alice");
        assert_eq!(v["api"]["operation"], "contact.read");
        assert_eq!(v["api"]["request"]["uid"], "req-9");
        assert_eq!(v["src_endpoint"]["ip"], "192.0.2.1");
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["status_id"], 2);
        assert_eq!(v["status_detail"], "purpose not allowed for role");
        assert_eq!(v["metadata"]["product"]["name"], "Steward");
        assert_eq!(v["metadata"]["log_name"], "audit");
        assert_eq!(v["metadata"]["sequence"], 41);
        assert_eq!(v["unmapped"]["subject_id"], subject.to_string());
        assert_eq!(v["unmapped"]["record_ids"][0], subject.to_string());
        assert_eq!(v["unmapped"]["fields"][0], "email");
        assert_eq!(v["unmapped"]["purpose"], "marketing");
        assert_eq!(v["unmapped"]["outcome"], "denied");
    }

    #[test]
    fn activity_ids() {
        assert_eq!(activity("contact.create").0, 1);
        assert_eq!(activity("contact.search").0, 2);
        assert_eq!(activity("key.rotate").0, 3);
        assert_eq!(activity("contact.erase").0, 4);
        assert_eq!(activity("auth.login").0, 99);
    }
}
