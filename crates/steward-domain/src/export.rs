//! Data-subject export formats besides JSON: vCard 4.0 (RFC 6350) of the
//! contact, and a flat CSV (RFC 4180) of everything in the bundle.
//!
//! Both are pure functions of the JSON bundle (`steward-subject-export-v1`)
//! that the service builds, so every format says the same thing.

use serde_json::Value;

/// Escapes a vCard text value (RFC 6350 §3.4): backslash, comma and newline
/// always; semicolon too when `component` (inside N or ADR).
fn vcard_text(s: &str, component: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' if component => out.push_str("\\;"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line at 75 octets (RFC 6350 §3.2): CRLF then one space,
/// never inside a UTF-8 sequence. Returns the line with its CRLF.
fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 70 * 3 + 2);
    let mut width = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        // The first line holds 75 octets; continuation lines 74 after the space.
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += n;
    }
    out.push_str("\r\n");
    out
}

fn field<'a>(contact: &'a Value, name: &str) -> &'a str {
    contact.get(name).and_then(Value::as_str).unwrap_or("")
}

/// The contact of an export bundle (its JSON, or the typed bundle that
/// serialises to it) as one vCard 4.0.
#[must_use]
pub fn to_vcard<B: serde::Serialize + ?Sized>(bundle: &B) -> String {
    vcard_of(&serde_json::to_value(bundle).unwrap_or_default())
}

fn vcard_of(bundle: &Value) -> String {
    let mut out = String::new();
    let Some(contact) = bundle.pointer("/personal_data/contact") else {
        return out;
    };
    let given = field(contact, "given_name");
    let family = field(contact, "family_name");
    let mut lines = vec!["BEGIN:VCARD".to_string(), "VERSION:4.0".to_string()];
    let full = [given, family]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    lines.push(format!("FN:{}", vcard_text(&full, false)));
    lines.push(format!("N:{};{};;;", vcard_text(family, true), vcard_text(given, true)));
    let email = field(contact, "email");
    if !email.is_empty() {
        lines.push(format!("EMAIL:{}", vcard_text(email, false)));
    }
    let phone = field(contact, "phone");
    if !phone.is_empty() {
        lines.push(format!("TEL;VALUE=uri:tel:{phone}"));
    }
    let (street, city, postal, country) = (
        field(contact, "street"),
        field(contact, "city"),
        field(contact, "postal_code"),
        field(contact, "country"),
    );
    if [street, city, postal, country].iter().any(|s| !s.is_empty()) {
        lines.push(format!(
            "ADR:;;{};{};;{};{}",
            vcard_text(street, true),
            vcard_text(city, true),
            vcard_text(postal, true),
            vcard_text(country, true)
        ));
    }
    let title = field(contact, "job_title");
    if !title.is_empty() {
        lines.push(format!("TITLE:{}", vcard_text(title, false)));
    }
    let birth = field(contact, "birth_date");
    if birth.len() == 10 {
        // vCard 4 dates are ISO 8601 basic format: 19850412.
        lines.push(format!("BDAY:{}", birth.replace('-', "")));
    }
    let note = field(contact, "notes");
    if !note.is_empty() {
        lines.push(format!("NOTE:{}", vcard_text(note, false)));
    }
    if let Some(id) = bundle.get("subject_id").and_then(Value::as_str) {
        lines.push(format!("UID:urn:uuid:{id}"));
    }
    if let Some(rev) = bundle.pointer("/personal_data/updated_at").and_then(Value::as_str) {
        let basic: String = rev.chars().filter(|c| !matches!(c, '-' | ':')).collect();
        let basic = basic.split('.').next().unwrap_or_default().trim_end_matches('Z');
        lines.push(format!("REV:{basic}Z"));
    }
    lines.push("END:VCARD".into());
    for l in lines {
        out.push_str(&fold(&l));
    }
    out
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote, CR or LF.
/// A leading `=`, `+`, `-` or `@` is prefixed with `'` so that spreadsheets
/// do not run it as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value of the Art. 15 statement as text: lists of plain values joined
/// with "; ", anything else as JSON.
fn info_text(v: &Value) -> String {
    match v {
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            items.iter().map(scalar).collect::<Vec<_>>().join("; ")
        }
        other => scalar(other),
    }
}

fn flatten_info(section: &str, key: &str, value: &Value, rows: &mut Vec<[String; 4]>) {
    match value {
        Value::Object(obj) => {
            for (field, v) in obj {
                match v {
                    Value::Object(_) | Value::Array(_) if !matches!(v, Value::Array(a) if a.iter().all(|i| !i.is_object())) =>
                    {
                        flatten_info(section, &format!("{key}/{field}"), v, rows);
                    }
                    _ => rows.push([section.into(), key.into(), field.clone(), info_text(v)]),
                }
            }
        }
        Value::Array(items) if items.iter().any(Value::is_object) => {
            for (n, item) in items.iter().enumerate() {
                flatten_info(section, &format!("{key}/{n}"), item, rows);
            }
        }
        other => rows.push([section.into(), key.into(), "value".into(), info_text(other)]),
    }
}

/// The whole bundle as CSV rows `section,record_id,field,value` (CRLF line
/// ends): one row per contact field, per interaction field, per consent
/// field, per deal field, per purpose field and per access-log entry field.
/// Takes the bundle's JSON or the typed bundle that serialises to it (rows
/// follow the JSON's sorted member order either way).
#[must_use]
pub fn to_csv<B: serde::Serialize + ?Sized>(bundle: &B) -> String {
    csv_of(&serde_json::to_value(bundle).unwrap_or_default())
}

fn csv_of(bundle: &Value) -> String {
    let mut rows: Vec<[String; 4]> = Vec::new();
    let subject = bundle.get("subject_id").map(scalar).unwrap_or_default();
    if let Some(contact) = bundle.pointer("/personal_data/contact").and_then(Value::as_object) {
        for (k, v) in contact {
            rows.push(["contact".into(), subject.clone(), k.clone(), scalar(v)]);
        }
    }
    for (section, key) in [
        ("interaction", "interactions"),
        ("deal", "deals"),
        ("consent", "consents"),
        ("purpose", "purposes"),
        ("access", "access_log"),
    ] {
        for (n, item) in bundle
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let id = item.get("id").map_or_else(|| n.to_string(), scalar);
            if let Some(obj) = item.as_object() {
                for (k, v) in obj.iter().filter(|(k, _)| k.as_str() != "id") {
                    rows.push([section.into(), id.clone(), k.clone(), scalar(v)]);
                }
            }
        }
    }
    // The Art. 15 statement (and the CCPA categories): one row per item
    // field, the record id naming the item (`recipients/2`, `complaint`).
    for section in ["information", "ccpa"] {
        let Some(info) = bundle.get(section).and_then(Value::as_object) else {
            continue;
        };
        for (key, value) in info {
            flatten_info(section, key, value, &mut rows);
        }
    }
    let mut out = String::from("section,record_id,field,value\r\n");
    for r in rows {
        out.push_str(&r.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bundle() -> Value {
        json!({
            "subject_id": "0190f0c2-0000-7000-8000-000000000001",
            "personal_data": {"contact": {
                "given_name": "Zoë", "family_name": "O'Brien; Jr", "email": "zoe@example.org", "phone": "+442079460018",
                "street": "1 Long Road, Flat 2", "city": "London", "postal_code": "N1 9GU", "country": "GB",
                "birth_date": "1985-04-12", "notes": "Line one\nline two, with comma \\ and backslash — and a very long tail that needs folding ääää",
            }, "updated_at": "2026-11-29T10:11:12.345678Z"},
            "interactions": [{"id": "i1", "kind": "call", "summary": "said \"hi\", then left"}],
            "consents": [{"id": "c1", "purpose": "marketing_email", "status": "granted"}],
            "deals": [], "purposes": [{"purpose": "sales", "lawful_basis": "legitimate_interest"}],
            "access_log": [{"at": "2026-11-29T10:00:00Z", "action": "contact.read"}],
        })
    }

    #[test]
    fn vcard_is_rfc_6350() {
        let v = to_vcard(&bundle());
        assert!(v.starts_with("BEGIN:VCARD\r\nVERSION:4.0\r\n"), "{v}");
        assert!(v.ends_with("END:VCARD\r\n"));
        assert!(!v.replace("\r\n", "").contains('\n'), "every line ends with CRLF");
        for line in v.split("\r\n") {
            assert!(line.len() <= 75, "folded at 75 octets: {line:?} ({})", line.len());
        }
        let unfolded = v.replace("\r\n ", "");
        assert!(unfolded.contains("FN:Zoë O'Brien; Jr\r\n"), "{unfolded}");
        assert!(unfolded.contains("N:O'Brien\\; Jr;Zoë;;;\r\n"), "{unfolded}");
        assert!(unfolded.contains("TEL;VALUE=uri:tel:+442079460018\r\n"));
        assert!(
            unfolded.contains("ADR:;;1 Long Road\\, Flat 2;London;;N1 9GU;GB\r\n"),
            "{unfolded}"
        );
        assert!(unfolded.contains("BDAY:19850412\r\n"));
        assert!(unfolded.contains("NOTE:Line one\\nline two\\, with comma \\\\ and backslash — and a very long tail that needs folding ääää\r\n"), "{unfolded}");
        assert!(unfolded.contains("UID:urn:uuid:0190f0c2-0000-7000-8000-000000000001\r\n"));
        assert!(unfolded.contains("REV:20261129T101112Z\r\n"), "{unfolded}");
    }

    #[test]
    fn folding_never_splits_a_character() {
        let line = format!("NOTE:{}", "ä".repeat(100));
        let folded = fold(&line);
        for part in folded.split("\r\n") {
            assert!(part.len() <= 75);
        }
        assert_eq!(folded.replace("\r\n ", ""), format!("{line}\r\n"));
    }

    #[test]
    fn csv_quotes_and_neutralises_formulas() {
        let c = to_csv(&bundle());
        assert!(c.starts_with("section,record_id,field,value\r\n"));
        assert!(
            c.contains("interaction,i1,summary,\"said \"\"hi\"\", then left\"\r\n"),
            "{c}"
        );
        assert!(
            c.contains("contact,0190f0c2-0000-7000-8000-000000000001,phone,+442079460018\r\n"),
            "{c}"
        );
        assert!(c.contains("consent,c1,status,granted\r\n"));
        assert!(c.contains("access,0,action,contact.read\r\n"));
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-12"), "-12");
        assert!(c.contains("\"Line one\nline two"));
    }
}
