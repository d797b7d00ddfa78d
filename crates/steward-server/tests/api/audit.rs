//! The audit trail over HTTP: what is recorded, that it holds no personal
//! data, that heads and proofs verify with an independent verifier written
//! here from RFC 9162, and that tampering is detected.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{assert_problem, AuditRow, TestApp};

crate::stories!(
    audit_records_every_access_without_personal_data,
    audit_heads_and_proofs_verify_independently,
    audit_tampering_is_detected
);

// ---- An independent RFC 9162 verifier (not the production code) ----

type H = [u8; 32];

fn sha(parts: &[&[u8]]) -> H {
    let mut d = Sha256::new();
    for p in parts {
        d.update(p);
    }
    d.finalize().into()
}

fn leaf(entry: &[u8]) -> H {
    sha(&[&[0], entry])
}

fn node(l: &H, r: &H) -> H {
    sha(&[&[1], l, r])
}

/// RFC 9162 §2.1.3.2.
fn verify_inclusion(leaf_hash: &H, index: u64, size: u64, path: &[H], root: &H) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in path {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && &r == root
}

/// RFC 9162 §2.1.4.2.
fn verify_consistency(first: u64, second: u64, first_root: &H, second_root: &H, path: &[H]) -> bool {
    if first == 0 || first > second {
        return false;
    }
    if first == second {
        return path.is_empty() && first_root == second_root;
    }
    let mut path: Vec<H> = path.to_vec();
    if first.is_power_of_two() {
        path.insert(0, *first_root);
    }
    let (mut f_n, mut s_n) = (first - 1, second - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let Some((head, rest)) = path.split_first() else {
        return false;
    };
    let (mut fr, mut sr) = (*head, *head);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node(c, &fr);
            sr = node(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    &fr == first_root && &sr == second_root && s_n == 0
}

fn h(v: &Value) -> H {
    B64.decode(v.as_str().unwrap()).unwrap().try_into().unwrap()
}

/// Checks a tree head's structure and Ed25519 signature; returns (size, root).
fn check_head(head: &Value) -> (u64, H) {
    let size = head["tree_size"].as_u64().unwrap();
    let root = h(&head["root_hash"]);
    let signed = B64.decode(head["signed_bytes"].as_str().unwrap()).unwrap();
    let mut expected = b"steward-audit-tree-head-v1\n".to_vec();
    expected.extend_from_slice(&size.to_be_bytes());
    expected.extend_from_slice(&head["timestamp_ms"].as_i64().unwrap().to_be_bytes());
    expected.extend_from_slice(&root);
    assert_eq!(signed, expected, "the signed bytes are as documented");
    let key = B64.decode(head["public_key"].as_str().unwrap()).unwrap();
    let sig = B64.decode(head["signature"].as_str().unwrap()).unwrap();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &key)
        .verify(&signed, &sig)
        .expect("the head's signature verifies");
    (size, root)
}

// ---- Stories ----

const SECRETS: &[&str] = &[
    "Audrina",
    "Vexholm",
    "audrina.vexholm@example.net",
    "+4930901820",
    "Secret-note-Q7",
];

async fn some_activity(app: &TestApp) -> String {
    let n = app.get("/api/v1/contacts?q=Vexholm", "sales").await.body["items"]
        .as_array()
        .map_or(0, Vec::len);
    let email = if n == 0 {
        "audrina.vexholm@example.net".to_string()
    } else {
        format!("audrina.vexholm{n}@example.net")
    };
    let id = app
        .create_contact("sales", json!({"given_name": "Audrina", "family_name": "Vexholm", "email": email, "phone": "+49 30 901820", "notes": "Secret-note-Q7"}))
        .await;
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{id}"), "sales").await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/api/v1/contacts?email={email}"), "sales")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/api/v1/contacts?q=Vexholm", "sales").await.status,
        StatusCode::OK
    );
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/contacts/{id}"),
            Some("sales"),
            None,
            Some(json!({"job_title": "Engineer"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_problem(&app.get(&format!("/api/v1/contacts/{id}"), "support").await, 403);
    assert_problem(
        &app.call(
            Method::GET,
            &format!("/api/v1/contacts/{id}"),
            Some("sales"),
            Some("analytics"),
            None,
        )
        .await,
        403,
    );
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            None,
            Some(json!({"username": "sales-user", "password": "Secret-note-Q7"})),
        )
        .await;
    assert_problem(&r, 401);
    id
}

async fn all_entries(app: &TestApp, role: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/audit?limit=200&cursor={c}"),
            None => "/api/v1/audit?limit=200".into(),
        };
        let r = app.get(&path, role).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        out.extend(r.body["items"].as_array().unwrap().iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

async fn audit_records_every_access_without_personal_data(app: &TestApp) {
    let id = some_activity(app).await;
    // Only dpo and auditor read the log.
    for role in ["sales", "support", "marketing", "admin"] {
        assert_problem(&app.get("/api/v1/audit", role).await, 403);
    }
    let entries = all_entries(app, "auditor").await;
    let for_subject: Vec<&Value> = entries
        .iter()
        .filter(|e| e["entry"]["subject_id"] == json!(id))
        .collect();
    let actions: Vec<(&str, &str)> = for_subject
        .iter()
        .map(|e| {
            (
                e["entry"]["action"].as_str().unwrap(),
                e["entry"]["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    for expected in [
        ("contact.create", "ok"),
        ("contact.read", "ok"),
        ("contact.search", "ok"),
        ("contact.update", "ok"),
        ("contact.read", "denied"),
    ] {
        assert!(actions.contains(&expected), "{expected:?} is recorded: {actions:?}");
    }
    let create = for_subject
        .iter()
        .find(|e| e["entry"]["action"] == "contact.create")
        .unwrap();
    let e = &create["entry"];
    assert_eq!(e["purpose"], "sales");
    assert_eq!(e["actor"]["role"], "sales");
    assert!(e["actor"]["token_id"].is_string() && e["actor"]["user_id"].is_string());
    assert!(e["request_id"].is_string(), "the request id is recorded");
    // The client address is recorded sealed under its month's key (so a
    // retention rule can anonymise it without changing the log), and shown
    // opened next to the entry.
    let sealed = e["client"].as_str().unwrap();
    assert!(sealed.starts_with("c1:") && !sealed.contains("127.0.0.1"), "{sealed}");
    assert_eq!(create["client_address"], "127.0.0.1", "the client address is recorded");
    let mut fields: Vec<&str> = e["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["email", "family_name", "given_name", "notes", "phone"],
        "field names, not values"
    );
    let read = for_subject
        .iter()
        .find(|e| e["entry"]["action"] == "contact.read" && e["entry"]["outcome"] == "ok")
        .unwrap();
    assert!(
        read["entry"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f != "street"),
        "reads record the fields returned"
    );
    let denied_purpose = entries
        .iter()
        .any(|e| e["entry"]["action"] == "purpose.resolve" && e["entry"]["outcome"] == "denied");
    assert!(denied_purpose, "a refused purpose is recorded");
    let failed_login = entries
        .iter()
        .find(|e| e["entry"]["action"] == "auth.login" && e["entry"]["outcome"] == "failed")
        .unwrap();
    assert!(failed_login["entry"]["actor"]["user_id"].is_string());

    // Filters: by subject (the subject's access log), by actor, by time.
    let r = app.get(&format!("/api/v1/audit?subject_id={id}"), "dpo").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), for_subject.len());
    let r = app.get("/api/v1/audit?actor=sales-user", "dpo").await;
    let by_actor = r.body["items"].as_array().unwrap();
    let sales_id = &create["entry"]["actor"]["user_id"];
    assert!(
        by_actor.iter().all(|e| &e["entry"]["actor"]["user_id"] == sales_id),
        "{by_actor:?}"
    );
    assert!(by_actor.iter().any(|e| e["entry"]["action"] == "contact.create"));
    let token = create["entry"]["actor"]["token_id"].as_str().unwrap();
    let r = app.get(&format!("/api/v1/audit?actor={token}"), "dpo").await;
    assert!(r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["entry"]["actor"]["token_id"] == json!(token)));
    let r = app.get("/api/v1/audit?from=2099-01-01T00:00:00Z", "dpo").await;
    assert_eq!(r.body["items"], json!([]));
    assert_problem(&app.get("/api/v1/audit?from=yesterday", "dpo").await, 422);
    let r = app.get(&format!("/api/v1/contacts/{id}/access-log"), "dpo").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["action"] == "contact.read" && i["purpose"] == "sales"));

    // No personal value anywhere in the log, in any form.
    let mut all_bytes = Vec::new();
    for e in &entries {
        let index = e["index"].as_u64().unwrap();
        let r = app.get(&format!("/api/v1/audit/entries/{index}"), "auditor").await;
        all_bytes.extend(B64.decode(r.body["entry_base64"].as_str().unwrap()).unwrap());
    }
    let text =
        String::from_utf8_lossy(&all_bytes).to_lowercase() + &serde_json::to_string(&entries).unwrap().to_lowercase();
    for s in SECRETS {
        assert!(!text.contains(&s.to_lowercase()), "the audit log contains {s}");
    }
    assert!(!text.contains("4930901820"));
}

async fn audit_heads_and_proofs_verify_independently(app: &TestApp) {
    some_activity(app).await;
    let first = app.get("/api/v1/audit/tree-head", "auditor").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let (size1, root1) = check_head(&first.body);
    assert!(size1 >= 10, "{size1}");
    some_activity(app).await;
    let second = app.get("/api/v1/audit/tree-head", "dpo").await;
    let (size2, root2) = check_head(&second.body);
    assert!(size2 > size1);
    assert_eq!(first.body["public_key"], second.body["public_key"]);

    // Every entry is included in the second tree, its leaf hash is SHA-256(0x00 || bytes).
    for index in 0..size2 {
        let entry = app.get(&format!("/api/v1/audit/entries/{index}"), "auditor").await;
        let bytes = B64.decode(entry.body["entry_base64"].as_str().unwrap()).unwrap();
        assert_eq!(leaf(&bytes), h(&entry.body["leaf_hash"]), "entry {index}");
        let p = app
            .get(
                &format!("/api/v1/audit/proof/inclusion?index={index}&tree_size={size2}"),
                "auditor",
            )
            .await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.text);
        let path: Vec<H> = p.body["audit_path"].as_array().unwrap().iter().map(h).collect();
        assert!(
            verify_inclusion(&leaf(&bytes), index, size2, &path, &root2),
            "inclusion of {index} in {size2}"
        );
        assert!(!verify_inclusion(&leaf(b"forged"), index, size2, &path, &root2));
    }
    // The second tree extends the first.
    let c = app
        .get(
            &format!("/api/v1/audit/proof/consistency?first={size1}&second={size2}"),
            "auditor",
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    let path: Vec<H> = c.body["consistency_path"].as_array().unwrap().iter().map(h).collect();
    assert!(verify_consistency(size1, size2, &root1, &root2, &path));
    assert!(!verify_consistency(size1, size2, &root2, &root1, &path));
    // Bad proof requests are problems, not crashes.
    assert_problem(
        &app.get(
            &format!("/api/v1/audit/proof/inclusion?index={size2}&tree_size={size2}"),
            "auditor",
        )
        .await,
        422,
    );
    assert_problem(
        &app.get("/api/v1/audit/proof/inclusion?index=0&tree_size=999999999", "auditor")
            .await,
        422,
    );
    assert_problem(
        &app.get("/api/v1/audit/proof/consistency?first=5&second=2", "auditor")
            .await,
        422,
    );
    assert_problem(
        &app.get("/api/v1/audit/proof/inclusion?index=x&tree_size=2", "auditor")
            .await,
        400,
    );
    assert_problem(&app.get("/api/v1/audit/entries/999999999", "auditor").await, 404);
    assert_problem(&app.get("/api/v1/audit/tree-head", "sales").await, 403);
    assert!(app.service.verify_audit_log().await.is_ok());
}

async fn audit_tampering_is_detected(app: &TestApp) {
    some_activity(app).await;
    let r = app.get("/api/v1/audit/tree-head", "auditor").await;
    check_head(&r.body);
    let original = app.audit_rows().await;
    assert!(original.len() >= 10);
    app.service
        .verify_audit_log()
        .await
        .expect("the untouched log verifies");

    let edit = {
        let mut rows = original.clone();
        let text = String::from_utf8(rows[5].entry.clone())
            .unwrap()
            .replace("\"ok\"", "\"denied\"");
        rows[5].entry = text.into_bytes();
        rows
    };
    let insert = {
        let mut rows = original.clone();
        let mut copy = rows[3].clone();
        copy.idx = 5;
        for r in rows.iter_mut().skip(5) {
            r.idx += 1;
        }
        rows.insert(5, copy);
        rows
    };
    let delete = {
        let mut rows = original.clone();
        rows.remove(5);
        rows
    };
    let reorder = {
        let mut rows = original.clone();
        let (a, b) = (rows[5].clone(), rows[6].clone());
        rows[5] = AuditRow { idx: 5, ..b };
        rows[6] = AuditRow { idx: 6, ..a };
        rows
    };
    for (kind, rows) in [
        ("edit", edit),
        ("insert", insert),
        ("delete", delete),
        ("reorder", reorder),
    ] {
        app.set_audit_rows(&rows).await;
        let err = app.service.verify_audit_log().await.expect_err(kind).to_string();
        assert!(err.contains("entry 5"), "{kind}: {err}");
        // A tampered log is never signed over.
        app.set_audit_rows(&original).await;
    }
    app.service.verify_audit_log().await.expect("restored");
}
