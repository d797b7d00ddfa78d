//! JSON shapes of responses. Fields a purpose does not need are left out,
//! never shown as null.

use serde_json::{json, Map, Value};
use steward_domain::{Deal, Organization};
use steward_service::contacts::{ContactView, InteractionView, Page};
use steward_service::crm::DealView;

fn ts(t: chrono::DateTime<chrono::Utc>) -> Value {
    Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

#[must_use]
pub fn contact(c: &ContactView) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(c.id.to_string()));
    m.insert("purposes".into(), json!(c.purposes));
    for (k, v) in &c.fields {
        m.insert(k.clone(), Value::String(v.clone()));
    }
    m.insert("created_at".into(), ts(c.created_at));
    m.insert("updated_at".into(), ts(c.updated_at));
    m.insert("version".into(), json!(c.version));
    Value::Object(m)
}

#[must_use]
pub fn organization(o: &Organization) -> Value {
    json!({
        "id": o.id.to_string(),
        "name": o.name,
        "domain": o.domain,
        "created_at": ts(o.created_at),
        "updated_at": ts(o.updated_at),
    })
}

#[must_use]
pub fn deal(v: &DealView) -> Value {
    let d: &Deal = &v.deal;
    let mut m = Map::new();
    m.insert("id".into(), Value::String(d.id.to_string()));
    let all: [(&str, Value); 6] = [
        ("title", Value::String(d.title.clone())),
        ("stage", Value::String(d.stage.as_str().into())),
        ("amount", d.amount.map_or(Value::Null, |a| a.to_json())),
        (
            "currency",
            d.currency.map_or(Value::Null, |c| Value::String(c.as_str().into())),
        ),
        (
            "organization_id",
            d.organization_id.map_or(Value::Null, |o| Value::String(o.to_string())),
        ),
        (
            "contact_id",
            d.contact_id.map_or(Value::Null, |c| Value::String(c.to_string())),
        ),
    ];
    for (name, value) in all {
        if v.visible.iter().any(|f| f == name) {
            m.insert(name.into(), value);
        }
    }
    m.insert("created_at".into(), ts(d.created_at));
    m.insert("updated_at".into(), ts(d.updated_at));
    Value::Object(m)
}

#[must_use]
pub fn interaction(i: &InteractionView) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), Value::String(i.id.to_string()));
    m.insert("contact_id".into(), Value::String(i.contact_id.to_string()));
    m.insert("kind".into(), Value::String(i.kind.as_str().into()));
    if let Some(s) = &i.summary {
        m.insert("summary".into(), Value::String(s.clone()));
    }
    m.insert("occurred_at".into(), ts(i.occurred_at));
    m.insert("created_at".into(), ts(i.created_at));
    Value::Object(m)
}

#[must_use]
pub fn page<T>(p: &Page<T>, f: impl Fn(&T) -> Value) -> Value {
    json!({ "items": p.items.iter().map(f).collect::<Vec<_>>(), "next_cursor": p.next_cursor })
}
