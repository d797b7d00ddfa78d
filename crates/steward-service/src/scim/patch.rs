//! SCIM PATCH (RFC 7644 §3.5.2) applied to a resource's JSON: `add`,
//! `remove` and `replace`, with a path that is an attribute
//! (`active`), a sub-attribute (`name.givenName`), or a value selection
//! (`emails[type eq "work"]`, `emails[type eq "work"].value`,
//! `members[value eq "…"]`), with or without the schema URN in front; or
//! no path and an object of attributes (as Entra ID and Okta send).
//!
//! The caller renders the resource, applies the operations here, then
//! parses the result exactly as it parses a PUT, so a PATCH can never
//! store what a PUT would refuse.

use serde_json::{Map, Value};

use super::ScimError;

pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// Most operations in one request.
pub const MAX_OPERATIONS: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Add,
    Remove,
    Replace,
}

/// Where an operation applies.
#[derive(Clone, Debug, PartialEq)]
pub struct Path {
    /// The attribute as written.
    pub attribute: String,
    /// `[sub eq value]`: the elements of a multi-valued attribute it selects.
    pub filter: Option<(String, Value)>,
    /// `.sub`: a sub-attribute.
    pub sub: Option<String>,
}

pub struct PatchOp {
    pub op: OpKind,
    /// `None` for a path that names an attribute of another schema
    /// (an extension Steward does not keep): the operation is ignored.
    pub path: Option<Option<Path>>,
    pub value: Option<Value>,
}

fn invalid_path() -> ScimError {
    ScimError::bad("invalidPath", "the path of a PATCH operation is not valid")
}

/// A member of `obj` by name, case-insensitively (attribute names are
/// case-insensitive, RFC 7643 §2.1).
pub fn member<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

/// The body as a JSON object whose `schemas`, when given, list `schema`;
/// `unlisted` is the error's sentence otherwise.
pub fn message_object<'a>(
    body: &'a Value,
    schema: &str,
    unlisted: &'static str,
) -> Result<&'a Map<String, Value>, ScimError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::bad("invalidSyntax", "the request body must be a JSON object"))?;
    if let Some(schemas) = member(obj, "schemas") {
        let listed = schemas
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(schema)));
        if !listed {
            return Err(ScimError::bad("invalidSyntax", unlisted));
        }
    }
    Ok(obj)
}

fn key_of(obj: &Map<String, Value>, name: &str) -> Option<String> {
    obj.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Parses a PatchOp request body.
pub fn parse_request(body: &Value, schema: &str) -> Result<Vec<PatchOp>, ScimError> {
    let obj = message_object(
        body,
        PATCH_SCHEMA,
        "a PATCH request must list the PatchOp message schema",
    )?;
    let ops = member(obj, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::bad("invalidSyntax", "a PATCH request needs an Operations array"))?;
    if ops.is_empty() || ops.len() > MAX_OPERATIONS {
        return Err(ScimError::bad(
            "invalidValue",
            format!("a PATCH request must have 1 to {MAX_OPERATIONS} operations"),
        ));
    }
    ops.iter()
        .map(|o| {
            let o = o
                .as_object()
                .ok_or_else(|| ScimError::bad("invalidSyntax", "each PATCH operation must be an object"))?;
            let op = match member(o, "op")
                .and_then(Value::as_str)
                .map(str::to_ascii_lowercase)
                .as_deref()
            {
                Some("add") => OpKind::Add,
                Some("remove") => OpKind::Remove,
                Some("replace") => OpKind::Replace,
                _ => {
                    return Err(ScimError::bad(
                        "invalidSyntax",
                        "a PATCH operation's op must be add, remove or replace",
                    ))
                }
            };
            let path = match member(o, "path") {
                None | Some(Value::Null) => Some(None),
                Some(Value::String(p)) => parse_path(p, schema)?.map(Some),
                Some(_) => return Err(invalid_path()),
            };
            let value = member(o, "value").cloned();
            if op != OpKind::Remove && value.is_none() {
                return Err(ScimError::bad(
                    "invalidSyntax",
                    "an add or replace operation needs a value",
                ));
            }
            if op == OpKind::Remove && path == Some(None) {
                return Err(ScimError::bad("noTarget", "a remove operation needs a path"));
            }
            Ok(PatchOp { op, path, value })
        })
        .collect()
}

/// Parses a path; `None` for an attribute of another schema than `schema`.
pub fn parse_path(raw: &str, schema: &str) -> Result<Option<Path>, ScimError> {
    let mut s = raw.trim();
    if s.len() > 512 {
        return Err(invalid_path());
    }
    if s.starts_with("urn:") {
        match s.strip_prefix(schema).and_then(|r| r.strip_prefix(':')) {
            Some(rest) => s = rest,
            None => return Ok(None),
        }
    }
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
    };
    let (head, filter, tail) = match s.find('[') {
        Some(open) => {
            let close = s.rfind(']').filter(|c| *c > open).ok_or_else(invalid_path)?;
            let inner = &s[open + 1..close];
            let (sub, rest) = inner.trim().split_once(char::is_whitespace).ok_or_else(invalid_path)?;
            let (op, value) = rest.trim().split_once(char::is_whitespace).ok_or_else(invalid_path)?;
            if !op.eq_ignore_ascii_case("eq") || !name_ok(sub) {
                return Err(ScimError::bad(
                    "invalidFilter",
                    "a value selection in a path must be one sub-attribute compared with eq",
                ));
            }
            let value: Value = serde_json::from_str(value.trim()).map_err(|_| invalid_path())?;
            if !(value.is_string() || value.is_boolean() || value.is_number()) {
                return Err(invalid_path());
            }
            (&s[..open], Some((sub.to_string(), value)), &s[close + 1..])
        }
        None => (s, None, ""),
    };
    let (attribute, sub) = match (filter.is_some(), head.split_once('.')) {
        (false, Some((a, sub))) => (a, Some(sub)),
        (true, Some(_)) => return Err(invalid_path()),
        (_, None) => (head, None),
    };
    let sub = match (sub, tail) {
        (Some(_), t) if !t.is_empty() => return Err(invalid_path()),
        (Some(sub), _) => Some(sub),
        (None, "") => None,
        (None, t) => Some(t.strip_prefix('.').ok_or_else(invalid_path)?),
    };
    if !name_ok(attribute) || sub.is_some_and(|s| !name_ok(s)) {
        return Err(invalid_path());
    }
    Ok(Some(Path {
        attribute: attribute.to_string(),
        filter,
        sub: sub.map(str::to_string),
    }))
}

fn matches(element: &Value, (sub, want): &(String, Value)) -> bool {
    let Some(obj) = element.as_object() else { return false };
    match (member(obj, sub), want) {
        (Some(Value::String(a)), Value::String(b)) => a.eq_ignore_ascii_case(b),
        (Some(a), b) => a == b,
        (None, _) => false,
    }
}

/// Merges `value`'s members into `target` (names matched case-insensitively).
fn merge(target: &mut Map<String, Value>, value: &Map<String, Value>) {
    for (k, v) in value {
        let key = key_of(target, k).unwrap_or_else(|| k.clone());
        target.insert(key, v.clone());
    }
}

/// What the caller's resource allows: its attribute names as rendered, the
/// multi-valued ones, and those no client may change.
pub struct Shape<'a> {
    pub attributes: &'a [&'a str],
    pub multi_valued: &'a [&'a str],
    pub read_only: &'a [&'a str],
    pub schema: &'a str,
}

/// Applies one operation to `resource`.
pub fn apply(resource: &mut Map<String, Value>, op: &PatchOp, shape: &Shape<'_>) -> Result<(), ScimError> {
    let path = match &op.path {
        None => return Ok(()),
        Some(p) => p,
    };
    let Some(path) = path else {
        // No path: the value is an object of attributes (or paths).
        let obj = op.value.as_ref().and_then(Value::as_object).ok_or_else(|| {
            ScimError::bad(
                "invalidValue",
                "an operation without a path needs an object as its value",
            )
        })?;
        for (k, v) in obj {
            if k.eq_ignore_ascii_case("schemas") {
                continue;
            }
            let one = PatchOp {
                op: op.op,
                path: parse_path(k, shape.schema)?.map(Some),
                value: Some(v.clone()),
            };
            apply(resource, &one, shape)?;
        }
        return Ok(());
    };
    if shape.read_only.iter().any(|a| a.eq_ignore_ascii_case(&path.attribute)) {
        return Err(ScimError::bad(
            "mutability",
            "the operation targets an attribute that cannot be changed",
        ));
    }
    if path.attribute.eq_ignore_ascii_case("schemas") {
        return Ok(());
    }
    let Some(canonical) = shape
        .attributes
        .iter()
        .find(|a| a.eq_ignore_ascii_case(&path.attribute))
    else {
        // Not an attribute Steward keeps: nothing to store or remove.
        return Ok(());
    };
    let key = key_of(resource, canonical).unwrap_or_else(|| (*canonical).to_string());
    let multi = shape.multi_valued.iter().any(|a| a.eq_ignore_ascii_case(canonical));
    match (&path.filter, &path.sub) {
        (None, None) => apply_whole(resource, &key, multi, op),
        (None, Some(sub)) => {
            if multi {
                return Err(invalid_path());
            }
            let target = resource.entry(key).or_insert_with(|| Value::Object(Map::new()));
            let Some(obj) = target.as_object_mut() else {
                return Err(invalid_path());
            };
            let sub_key = key_of(obj, sub).unwrap_or_else(|| sub.clone());
            match op.op {
                OpKind::Remove => {
                    obj.remove(&sub_key);
                }
                OpKind::Add | OpKind::Replace => {
                    obj.insert(sub_key, op.value.clone().unwrap_or(Value::Null));
                }
            }
            Ok(())
        }
        (Some(filter), sub) => {
            if !multi {
                return Err(invalid_path());
            }
            let Some(items) = resource.get_mut(&key).and_then(Value::as_array_mut) else {
                return match op.op {
                    OpKind::Remove => Ok(()),
                    _ => Err(ScimError::bad("noTarget", "the path's value selection matched nothing")),
                };
            };
            let hits: Vec<usize> = (0..items.len()).filter(|i| matches(&items[*i], filter)).collect();
            if hits.is_empty() {
                return match op.op {
                    OpKind::Remove => Ok(()),
                    _ => Err(ScimError::bad("noTarget", "the path's value selection matched nothing")),
                };
            }
            match (op.op, sub) {
                (OpKind::Remove, None) => {
                    let mut i = 0;
                    items.retain(|_| {
                        let keep = !hits.contains(&i);
                        i += 1;
                        keep
                    });
                }
                (OpKind::Remove, Some(sub)) => {
                    for i in hits {
                        if let Some(o) = items[i].as_object_mut() {
                            if let Some(k) = key_of(o, sub) {
                                o.remove(&k);
                            }
                        }
                    }
                }
                (OpKind::Add | OpKind::Replace, None) => {
                    let value = op.value.clone().unwrap_or(Value::Null);
                    for i in hits {
                        match (items[i].as_object_mut(), value.as_object()) {
                            (Some(o), Some(v)) => merge(o, v),
                            _ => items[i] = value.clone(),
                        }
                    }
                }
                (OpKind::Add | OpKind::Replace, Some(sub)) => {
                    for i in hits {
                        if let Some(o) = items[i].as_object_mut() {
                            let k = key_of(o, sub).unwrap_or_else(|| sub.clone());
                            o.insert(k, op.value.clone().unwrap_or(Value::Null));
                        }
                    }
                }
            }
            Ok(())
        }
    }
}

fn apply_whole(resource: &mut Map<String, Value>, key: &str, multi: bool, op: &PatchOp) -> Result<(), ScimError> {
    let value = op.value.clone();
    match op.op {
        OpKind::Remove => {
            match (multi, value.as_ref().and_then(Value::as_array), resource.get_mut(key)) {
                // `remove` of members with a value (Entra ID): those elements only.
                (true, Some(gone), Some(Value::Array(items))) => {
                    items.retain(|item| {
                        !gone.iter().any(|g| match (g.as_object(), item.as_object()) {
                            (Some(g), Some(i)) => member(g, "value").is_some_and(|gv| {
                                member(i, "value").is_some_and(|iv| match (gv, iv) {
                                    (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
                                    (a, b) => a == b,
                                })
                            }),
                            _ => g == item,
                        })
                    });
                }
                _ => {
                    resource.remove(key);
                }
            }
            Ok(())
        }
        OpKind::Add if multi => {
            let new: Vec<Value> = match value {
                Some(Value::Array(a)) => a,
                Some(v) => vec![v],
                None => Vec::new(),
            };
            match resource.get_mut(key) {
                Some(Value::Array(items)) => items.extend(new),
                _ => {
                    resource.insert(key.to_string(), Value::Array(new));
                }
            }
            Ok(())
        }
        OpKind::Add | OpKind::Replace => {
            let value = value.unwrap_or(Value::Null);
            let value = match value {
                Value::Array(a) if !multi && a.len() == 1 => a.into_iter().next().unwrap_or(Value::Null),
                Value::Object(o) if multi => Value::Array(vec![Value::Object(o)]),
                v => v,
            };
            match (resource.get_mut(key), &value) {
                (Some(Value::Object(existing)), Value::Object(v)) if !multi => merge(existing, v),
                _ => {
                    resource.insert(key.to_string(), value);
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
    const SHAPE: Shape<'static> = Shape {
        attributes: &[
            "userName",
            "active",
            "name",
            "displayName",
            "emails",
            "externalId",
            "groups",
        ],
        multi_valued: &["emails", "groups"],
        read_only: &["id", "meta"],
        schema: USER,
    };

    fn run(resource: Value, ops: Value) -> Result<Value, ScimError> {
        let ops = parse_request(&json!({"schemas": [PATCH_SCHEMA], "Operations": ops}), USER)?;
        let Value::Object(mut r) = resource else {
            panic!("object")
        };
        for op in &ops {
            apply(&mut r, op, &SHAPE)?;
        }
        Ok(Value::Object(r))
    }

    fn user() -> Value {
        json!({
            "userName": "bjensen",
            "active": true,
            "name": {"givenName": "Barbara", "familyName": "Jensen"},
            "emails": [
                {"value": "bj@example.com", "type": "work", "primary": true},
                {"value": "babs@example.org", "type": "home"}
            ],
            "groups": [{"value": "sales"}]
        })
    }

    #[test]
    fn paths_parse() {
        let p = parse_path("name.givenName", USER).unwrap().unwrap();
        assert_eq!(
            (p.attribute.as_str(), p.sub.as_deref(), p.filter),
            ("name", Some("givenName"), None)
        );
        let p = parse_path(r#"emails[type eq "work"].value"#, USER).unwrap().unwrap();
        assert_eq!(p.attribute, "emails");
        assert_eq!(p.filter, Some(("type".into(), json!("work"))));
        assert_eq!(p.sub.as_deref(), Some("value"));
        let p = parse_path(&format!("{USER}:name.familyName"), USER).unwrap().unwrap();
        assert_eq!((p.attribute.as_str(), p.sub.as_deref()), ("name", Some("familyName")));
        assert!(parse_path(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            USER
        )
        .unwrap()
        .is_none());
        for bad in [
            "",
            "a b",
            "emails[type]",
            "emails[type eq work]",
            "emails[type eq \"x\"",
            "name.",
            ".x",
            "a.b.c",
        ] {
            assert!(parse_path(bad, USER).is_err(), "{bad}");
        }
        let e = parse_path(r#"emails[type ne "work"]"#, USER).unwrap_err();
        assert_eq!(e.scim_type, Some("invalidFilter"));
    }

    #[test]
    fn replace_active_and_a_sub_attribute() {
        let r = run(
            user(),
            json!([
                {"op": "replace", "path": "active", "value": false},
                {"op": "Replace", "path": "name.givenName", "value": "Babs"}
            ]),
        )
        .unwrap();
        assert_eq!(r["active"], json!(false));
        assert_eq!(r["name"], json!({"givenName": "Babs", "familyName": "Jensen"}));
    }

    #[test]
    fn no_path_merges_attributes() {
        let r = run(
            user(),
            json!([{"op": "replace", "value": {"ACTIVE": false, "name.familyName": "J", "displayName": "BJ"}}]),
        )
        .unwrap();
        assert_eq!(r["active"], json!(false));
        assert_eq!(r["name"]["familyName"], json!("J"));
        assert_eq!(r["name"]["givenName"], json!("Barbara"));
        assert_eq!(r["displayName"], json!("BJ"));
    }

    #[test]
    fn value_selections() {
        let r = run(
            user(),
            json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "b@example.com"}]),
        )
        .unwrap();
        assert_eq!(r["emails"][0]["value"], json!("b@example.com"));
        assert_eq!(r["emails"][1]["value"], json!("babs@example.org"));
        let r = run(user(), json!([{"op": "remove", "path": "emails[type eq \"HOME\"]"}])).unwrap();
        assert_eq!(r["emails"].as_array().unwrap().len(), 1);
        let e = run(
            user(),
            json!([{"op": "replace", "path": "emails[type eq \"other\"]", "value": {"value": "x@y"}}]),
        )
        .unwrap_err();
        assert_eq!((e.status, e.scim_type), (400, Some("noTarget")));
    }

    #[test]
    fn add_appends_and_replace_overwrites_multi_valued() {
        let r = run(
            user(),
            json!([{"op": "add", "path": "groups", "value": [{"value": "support"}]}]),
        )
        .unwrap();
        assert_eq!(r["groups"], json!([{"value": "sales"}, {"value": "support"}]));
        let r = run(
            user(),
            json!([{"op": "replace", "path": "emails", "value": [{"value": "n@example.com"}]}]),
        )
        .unwrap();
        assert_eq!(r["emails"], json!([{"value": "n@example.com"}]));
        let r = run(
            user(),
            json!([{"op": "remove", "path": "groups", "value": [{"value": "SALES"}]}]),
        )
        .unwrap();
        assert_eq!(r["groups"], json!([]));
        let r = run(user(), json!([{"op": "remove", "path": "groups"}])).unwrap();
        assert!(r.get("groups").is_none());
    }

    #[test]
    fn refusals() {
        let e = run(user(), json!([{"op": "replace", "path": "id", "value": "x"}])).unwrap_err();
        assert_eq!(e.scim_type, Some("mutability"));
        let e = run(user(), json!([{"op": "remove"}])).unwrap_err();
        assert_eq!(e.scim_type, Some("noTarget"));
        let e = run(user(), json!([{"op": "move", "path": "active"}])).unwrap_err();
        assert_eq!(e.scim_type, Some("invalidSyntax"));
        let e = run(user(), json!([])).unwrap_err();
        assert_eq!(e.scim_type, Some("invalidValue"));
        let e = parse_request(
            &json!({"schemas": ["x"], "Operations": [{"op": "remove", "path": "a"}]}),
            USER,
        )
        .err()
        .unwrap();
        assert_eq!(e.scim_type, Some("invalidSyntax"));
        // Attributes Steward does not keep are ignored.
        let r = run(user(), json!([{"op": "replace", "path": "title", "value": "Boss"}])).unwrap();
        assert!(r.get("title").is_none());
    }
}
