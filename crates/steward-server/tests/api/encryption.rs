//! Encryption at rest, end to end: nothing personal in any file or table,
//! search still works, and a moved or damaged ciphertext fails alone.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{assert_problem, Backend, TestApp};

crate::stories!(nothing_personal_at_rest, moved_or_damaged_ciphertext_fails_alone);

/// Distinctive values, as sent and as stored after normalisation.
const SECRETS: &[&str] = &[
    "Zebulonius",
    "Quetzalcoatlson",
    "zq.unique-person@example.org",
    "+4915123456789",
    "Kalamazoo Avenue 7731",
    "Xylophonetown",
    "Prefers-calls-after-nine-Zx81",
    "Discussed renewal of contract Zq-4471",
];

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn assert_clean(what: &str, haystack: &[u8]) {
    let text = String::from_utf8_lossy(haystack).to_lowercase();
    for secret in SECRETS {
        let s = secret.to_lowercase();
        assert!(!text.contains(&s), "{what} contains {secret} in plaintext");
        assert!(!text.contains(&hex(&s)), "{what} contains {secret} hex-encoded");
        assert!(!text.contains(&hex(secret)), "{what} contains {secret} hex-encoded");
    }
}

async fn nothing_personal_at_rest(app: &TestApp) {
    let id = app
        .create_contact(
            "support",
            json!({
                "given_name": "Zebulonius", "family_name": "Quetzalcoatlson", "email": "zq.unique-person@example.org",
                "phone": "+49 151 23456789", "street": "Kalamazoo Avenue 7731", "city": "Xylophonetown",
                "notes": "Prefers-calls-after-nine-Zx81", "purposes": ["customer_service"]
            }),
        )
        .await;
    let r = app
        .post(
            &format!("/api/v1/contacts/{id}/interactions"),
            "support",
            json!({"kind": "call", "summary": "Discussed renewal of contract Zq-4471"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Several updates leave older versions behind in pages and the WAL.
    for n in 0..3 {
        let r = app
            .call(
                Method::PATCH,
                &format!("/api/v1/contacts/{id}"),
                Some("support"),
                None,
                Some(json!({"postal_code": format!("Z{n}")})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }

    // An authorised user reads everything back, and exact search works.
    let r = app.get(&format!("/api/v1/contacts/{id}"), "support").await;
    assert_eq!(r.body["family_name"], "Quetzalcoatlson");
    assert_eq!(r.body["phone"], "+4915123456789");
    assert_eq!(r.body["notes"], "Prefers-calls-after-nine-Zx81");
    for query in [
        "email=ZQ.unique-person@example.org",
        "phone=%2B49%20151%20234%2056789",
        "q=quetzalcoatlson",
    ] {
        let r = app.get(&format!("/api/v1/contacts?{query}"), "support").await;
        assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1), "{query}: {}", r.text);
    }
    let r = app.get(&format!("/api/v1/contacts/{id}/interactions"), "support").await;
    assert_eq!(r.body["items"][0]["summary"], "Discussed renewal of contract Zq-4471");

    // No file under the data dir holds any of it: database, WAL, shared memory, keys.
    let mut files = 0;
    let mut stack = vec![app.data_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files += 1;
                assert_clean(&path.display().to_string(), &std::fs::read(&path).unwrap());
            }
        }
    }
    assert!(files >= 1, "the data dir was scanned (at least the master key)");
    if app.backend == Backend::Sqlite {
        assert!(
            app.data_dir().join("steward.db-wal").exists(),
            "the WAL was scanned too"
        );
    }

    // Nor does any table, read the way a dump would show it.
    if app.backend == Backend::Postgres {
        let client = app.pg_client().await;
        let tables = client
            .query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", &[])
            .await
            .unwrap();
        assert!(tables.len() >= 8);
        for t in tables {
            let name: String = t.get(0);
            for row in client
                .query(&format!("SELECT t::text FROM \"{name}\" t"), &[])
                .await
                .unwrap()
            {
                let text: String = row.get(0);
                assert_clean(&format!("table {name}"), text.as_bytes());
            }
        }
    }
}

async fn moved_or_damaged_ciphertext_fails_alone(app: &TestApp) {
    let a = app
        .create_contact("sales", json!({"given_name": "Alpha", "email": "alpha@example.org"}))
        .await;
    let b = app
        .create_contact("sales", json!({"given_name": "Bravo", "email": "bravo@example.org"}))
        .await;
    let c = app
        .create_contact(
            "sales",
            json!({"given_name": "Charlie", "email": "charlie@example.org"}),
        )
        .await;

    // A's ciphertext copied into B's row does not decrypt there.
    let a_fields = app.raw_fields(&a).await;
    app.set_raw_fields(&b, &a_fields).await;
    let r = app.get(&format!("/api/v1/contacts/{b}"), "sales").await;
    assert_problem(&r, 500);
    for name in ["Alpha", "alpha@", "Bravo", "bravo@"] {
        assert!(!r.text.contains(name), "the error names nothing personal: {}", r.text);
    }
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{a}"), "sales").await.body["given_name"],
        "Alpha"
    );

    // A flipped byte in C's ciphertext is detected.
    let mut c_fields = app.raw_fields(&c).await;
    let last = c_fields.len() - 1;
    c_fields[last] ^= 0x01;
    app.set_raw_fields(&c, &c_fields).await;
    assert_problem(&app.get(&format!("/api/v1/contacts/{c}"), "sales").await, 500);

    // The rest keeps working: the list shows the intact contact only.
    let r = app.get("/api/v1/contacts", "sales").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let names: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["given_name"].as_str())
        .collect();
    assert_eq!(names, ["Alpha"]);
    let fresh = app.create_contact("sales", json!({"given_name": "Delta"})).await;
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{fresh}"), "sales").await.status,
        StatusCode::OK
    );
}
