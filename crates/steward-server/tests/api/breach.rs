//! Breach management over HTTP: an "attacker" token reads some contacts;
//! the incident is opened, scoped from the audit log (exactly those people
//! and fields), assessed, notified to the authority and to the people still
//! held (sealed outbox), contained and closed; the legal clock runs across
//! a daylight-saving change; bad input changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, error_fields, Resp, TestApp};

crate::stories!(
    breach_scoped_from_the_audit_log_end_to_end,
    the_72_hours_run_across_a_dst_change_and_late_needs_reasons,
    bad_incident_input_is_refused_and_changes_nothing,
);

const TITLE: &str = "Sales API token leaked in a public repository zq81";

async fn as_token(app: &TestApp, method: Method, path: &str, token: &str, body: Option<Value>) -> Resp {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    TestApp::read(req.send().await.expect("request")).await
}

async fn patch(app: &TestApp, path: &str, body: Value) -> Resp {
    app.call(Method::PATCH, path, Some("dpo"), None, Some(body)).await
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn open_incident(app: &TestApp, body: Value) -> String {
    let r = app.post("/api/v1/incidents", "dpo", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["id"].as_str().unwrap().to_string()
}

async fn breach_scoped_from_the_audit_log_end_to_end(app: &TestApp) {
    // Five people; the attacker reads three of them and changes one.
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            app.create_contact(
                "sales",
                json!({"given_name": format!("Person{i}"), "family_name": "Breachtest",
                       "email": format!("person{i}.breach@example.org"), "phone": format!("+4930123456{i}")}),
            )
            .await,
        );
    }
    let attacker = app.service.create_api_token("sales-user", None, None).await.unwrap();
    let attacker_id = app
        .service
        .authenticate(&attacker)
        .await
        .unwrap()
        .token_id
        .unwrap()
        .to_string();
    let mut read_fields: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for id in &ids[..3] {
        let r = as_token(app, Method::GET, &format!("/api/v1/contacts/{id}"), &attacker, None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let declared = &app.service.inventory().record_type("contact").unwrap().fields;
        let fields: BTreeSet<String> = r
            .body
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| declared.contains_key(*k))
            .cloned()
            .collect();
        assert!(fields.contains("email"), "{}", r.text);
        read_fields.insert(id.clone(), fields);
    }
    let r = as_token(
        app,
        Method::PATCH,
        &format!("/api/v1/contacts/{}", ids[1]),
        &attacker,
        Some(json!({"job_title": "Changed by the attacker"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The legitimate token reads someone else: not in the scope.
    let r = app.get(&format!("/api/v1/contacts/{}", ids[3]), "sales").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let now = chrono::Utc::now();
    let id = open_incident(
        app,
        json!({"title": TITLE, "description": "A developer pushed a token to a public repository.",
               "category": "confidentiality", "source": "compromised_account",
               "started_at": rfc3339(now - chrono::Duration::hours(1)), "aware_at": rfc3339(now)}),
    )
    .await;
    let r = app.get(&format!("/api/v1/incidents/{id}"), "auditor").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "open");
    assert_eq!(r.body["title"], TITLE);
    let regulator = &r.body["clocks"][0];
    assert_eq!(regulator["audience"], "regulator");
    assert_eq!(regulator["state"], "on_time");
    let remaining = regulator["remaining_seconds"].as_i64().unwrap();
    assert!((72 * 3600 - 120..=72 * 3600).contains(&remaining), "{remaining}");

    // The scope: exactly the three people the token read, with the fields it saw.
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/scope"),
            "dpo",
            json!({"token": attacker_id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let scope = r.body.clone();
    let subjects: BTreeMap<String, &Value> = scope["result"]["subjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["subject_id"].as_str().unwrap().to_string(), s))
        .collect();
    let expected: BTreeSet<String> = ids[..3].iter().cloned().collect();
    assert_eq!(
        subjects.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "{}",
        r.text
    );
    for (sid, fields) in &read_fields {
        let got: BTreeSet<String> = subjects[sid]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_string())
            .collect();
        let mut want = fields.clone();
        if sid == &ids[1] {
            want.insert("job_title".into());
        }
        assert_eq!(&got, &want, "fields of {sid}: {}", r.text);
        assert_eq!(subjects[sid]["purposes"], json!(["sales"]));
    }
    assert_eq!(subjects[&ids[1]]["actions"], json!(["read", "written"]));
    assert_eq!(subjects[&ids[0]]["actions"], json!(["read"]));
    let totals = &scope["result"]["totals"];
    assert_eq!(totals["subjects"], 3);
    assert_eq!(totals["by_action"]["read"], 3);
    assert_eq!(totals["by_action"]["written"], 1);
    assert_eq!(totals["by_field"]["email"], 3);
    assert_eq!(totals["by_category"]["contact"], 3);
    assert_eq!(totals["by_category"]["identity"], 3);
    assert_eq!(totals["by_purpose"]["sales"], 3);
    let tree_size = scope["tree_head"]["tree_size"].as_u64().unwrap();
    assert!(tree_size > 0);
    assert_eq!(scope["digest"].as_str().unwrap().len(), 64);
    // Scoping by user as well finds the legitimate read too.
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/scope"),
            "dpo",
            json!({"user": "sales-user", "token": attacker_id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["result"]["totals"]["subjects"], 3, "user AND token");
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/scope"),
            "dpo",
            json!({"token": attacker_id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // It re-verifies against the signed log later.
    let r = app
        .get(&format!("/api/v1/incidents/{id}/scope/verify"), "auditor")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["verified"], true, "{}", r.text);
    assert_eq!(r.body["digest_matches"], true);

    // Risk: proposed from the scope; an override needs a reason.
    let r = app
        .post(&format!("/api/v1/incidents/{id}/risk"), "dpo", json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["proposal"]["level"], "medium", "{}", r.text);
    assert_eq!(r.body["regulator_notification_required"], true);
    let r = app
        .post(&format!("/api/v1/incidents/{id}/risk"), "dpo", json!({"level": "high"}))
        .await;
    assert_problem(&r, 422);
    assert_eq!(error_fields(&r), ["reason"]);
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/risk"),
            "dpo",
            json!({"level": "high", "reason": "the phone numbers enable targeted vishing"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["assessment"]["overridden"], true);
    assert_eq!(r.body["subject_notification_required"], true);

    // Containment: the token is revoked from the incident.
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/containment"),
            "dpo",
            json!({"action": "revoke_token", "token": attacker_id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = as_token(
        app,
        Method::GET,
        &format!("/api/v1/contacts/{}", ids[0]),
        &attacker,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);

    // The Art. 33(3) notification, generated from the scope.
    let r = app.get(&format!("/api/v1/incidents/{id}/notification"), "dpo").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["subjects_affected"], 3);
    assert_eq!(r.body["risk_level"], "high");
    assert!(
        r.body["measures_taken"][0].as_str().unwrap().contains("revoked"),
        "{}",
        r.text
    );
    assert!(r.body["data_categories"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["category"] == "contact" && c["subjects"] == 3));
    let r = app
        .get(&format!("/api/v1/incidents/{id}/notification?format=markdown"), "dpo")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("Art. 33"), "{}", r.text);
    let r = app
        .get(&format!("/api/v1/incidents/{id}/notification?format=html"), "dpo")
        .await;
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/notify-regulator"),
            "dpo",
            json!({"reference": "DPA-2026-0042"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "notified");
    assert_eq!(r.body["clocks"][0]["state"], "met");
    let r = app
        .post(&format!("/api/v1/incidents/{id}/notify-regulator"), "dpo", json!({}))
        .await;
    assert_problem(&r, 409);

    // One affected person is erased before the notices go out: they stay erased.
    let r = app
        .post(
            "/api/v1/dsr",
            "dpo",
            json!({"kind": "erasure", "regime": "gdpr", "subject": {"contact_id": ids[2]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let dsr = r.body["id"].as_str().unwrap().to_string();
    for step in ["verify", "fulfill"] {
        let r = app.post(&format!("/api/v1/dsr/{dsr}/{step}"), "dpo", json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/notify-subjects"),
            "dpo",
            json!({"what_happened": "An access key to our CRM was published by mistake and used by a stranger."}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["queued"], 2, "{}", r.text);
    assert_eq!(r.body["no_longer_held"], 1);
    let notices: Vec<_> = app
        .service
        .outbox(true)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == "incident.notice")
        .collect();
    let to: BTreeSet<&str> = notices.iter().map(|m| m.message.to.as_str()).collect();
    assert_eq!(
        to,
        BTreeSet::from(["person0.breach@example.org", "person1.breach@example.org"])
    );
    assert!(
        notices[0].message.body.contains("e-mail address"),
        "{}",
        notices[0].message.body
    );
    assert!(notices[0].message.body.contains("published by mistake"));
    // Nobody is told twice.
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/notify-subjects"),
            "dpo",
            json!({"what_happened": "again"}),
        )
        .await;
    assert_eq!(r.body["queued"], 0, "{}", r.text);
    assert_eq!(r.body["already_notified"], 2);
    let count = app
        .service
        .outbox(true)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.kind == "incident.notice")
        .count();
    assert_eq!(count, 2);

    // Close; a closed incident does not change.
    let r = patch(app, &format!("/api/v1/incidents/{id}"), json!({"status": "closed"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "closed");
    assert!(r.body["closed_at"].is_string());
    assert!(r.body["due_at"].is_null());
    let r = patch(app, &format!("/api/v1/incidents/{id}"), json!({"title": "x"})).await;
    assert_problem(&r, 409);

    // The timeline tells the story; the audit log has the ids, never the text.
    let r = app.get(&format!("/api/v1/incidents/{id}/timeline"), "auditor").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let kinds: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    for k in [
        "opened",
        "scope",
        "risk",
        "containment",
        "regulator_notified",
        "subjects_notified",
        "updated",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let rows = app.audit_rows().await;
    let actions: Vec<&str> = rows.iter().map(|r| r.action.as_str()).collect();
    for a in [
        "incident.open",
        "incident.scope",
        "incident.contain",
        "incident.notice",
        "incident.notify_subjects",
    ] {
        assert!(actions.contains(&a), "{a} not audited");
    }
    for row in &rows {
        let text = String::from_utf8_lossy(&row.entry);
        assert!(!text.contains("zq81") && !text.contains("breach@example.org"), "{text}");
    }
    if app.backend == crate::helpers::Backend::Sqlite {
        let db = std::fs::read(app.data_dir().join("steward.db")).unwrap();
        let wal = std::fs::read(app.data_dir().join("steward.db-wal")).unwrap_or_default();
        for bytes in [&db, &wal] {
            assert!(
                !bytes.windows(4).any(|w| w == b"zq81"),
                "incident text in plaintext at rest"
            );
        }
    }
    assert!(app.service.verify_audit_log().await.is_ok());
}

async fn the_72_hours_run_across_a_dst_change_and_late_needs_reasons(app: &TestApp) {
    // Aware on Friday 27 March 2026, 10:00 in Berlin (+01:00); summer time
    // starts on Sunday: the deadline is Monday 11:00 CEST = 09:00 UTC.
    let id = open_incident(
        app,
        json!({"title": "Laptop lost on a train", "description": "An unencrypted export was on it.",
               "category": "confidentiality", "source": "lost_device",
               "started_at": "2026-03-26T18:00:00+01:00", "aware_at": "2026-03-27T10:00:00+01:00"}),
    )
    .await;
    let r = app.get(&format!("/api/v1/incidents/{id}"), "dpo").await;
    assert_eq!(r.body["clocks"][0]["due_at"], "2026-03-30T09:00:00Z", "{}", r.text);
    assert_eq!(r.body["clocks"][0]["state"], "overdue");
    assert_eq!(r.body["overdue"], true);
    let fresh = open_incident(
        app,
        json!({"title": "Fresh", "description": "Just now.", "category": "integrity", "source": "other",
               "aware_at": rfc3339(chrono::Utc::now())}),
    )
    .await;
    let r = app.get("/api/v1/incidents?overdue=true", "auditor").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let listed: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [id.as_str()], "only the overdue one");
    let r = app.get("/api/v1/incidents", "auditor").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["items"][0]["id"], fresh, "newest first");

    // Without a scope, the risk is estimated by hand.
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/risk"),
            "dpo",
            json!({"approximate_subjects": 40, "categories": ["identity", "contact", "address"], "keys_exposed": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["proposal"]["level"], "low", "unintelligible (Art. 34(3)(a))");

    let r = app
        .post(&format!("/api/v1/incidents/{id}/notify-regulator"), "dpo", json!({}))
        .await;
    assert_problem(&r, 422);
    assert_eq!(error_fields(&r), ["delay_reason"]);
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/notify-regulator"),
            "dpo",
            json!({"delay_reason": "the loss was reported to us by the finder only after the weekend"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["clocks"][0]["state"], "late");
    let r = app.get(&format!("/api/v1/incidents/{id}/notification"), "dpo").await;
    assert!(r.body["delay_reason"].as_str().unwrap().contains("finder"));

    // A US state regime counts days.
    let us = open_incident(
        app,
        json!({"title": "Vendor breach", "description": "Our mailing vendor was breached.",
               "category": "confidentiality", "source": "vendor", "regime": "us_state", "notification_days": 45,
               "aware_at": "2026-01-01T12:00:00Z"}),
    )
    .await;
    let r = app.get(&format!("/api/v1/incidents/{us}"), "dpo").await;
    assert_eq!(r.body["clocks"][0]["audience"], "subjects");
    assert_eq!(r.body["clocks"][0]["due_at"], "2026-02-15T12:00:00Z");
}

async fn bad_incident_input_is_refused_and_changes_nothing(app: &TestApp) {
    let base = json!({"title": "t", "description": "d", "category": "confidentiality", "source": "vendor",
                      "aware_at": "2026-01-02T00:00:00Z"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    for (body, field) in [
        (with("ended_at", json!("2025-12-31T00:00:00Z")).clone(), "ended_at"),
        (with("aware_at", json!("2999-01-01T00:00:00Z")), "aware_at"),
        (with("category", json!("secrecy")), "category"),
        (with("title", json!("  ")), "title"),
        (with("notification_days", json!(30)), "notification_days"),
    ] {
        let mut body = body;
        if field == "ended_at" {
            body["started_at"] = json!("2026-01-01T00:00:00Z");
        }
        let r = app.post("/api/v1/incidents", "dpo", body).await;
        assert_problem(&r, 422);
        assert_eq!(error_fields(&r), [field], "{}", r.text);
    }
    let r = app.post("/api/v1/incidents", "sales", base.clone()).await;
    assert_problem(&r, 403);
    let r = app.post("/api/v1/incidents", "auditor", base.clone()).await;
    assert_problem(&r, 403);
    let r = app.get("/api/v1/incidents", "sales").await;
    assert_problem(&r, 403);
    let r = app.get("/api/v1/incidents", "dpo").await;
    assert_eq!(r.body["items"], json!([]), "nothing was recorded");

    let unknown = uuid::Uuid::now_v7();
    let r = app.get(&format!("/api/v1/incidents/{unknown}"), "dpo").await;
    assert_problem(&r, 404);
    let r = app
        .post(
            &format!("/api/v1/incidents/{unknown}/scope"),
            "dpo",
            json!({"user": "sales-user"}),
        )
        .await;
    assert_problem(&r, 404);
    let r = app.get("/api/v1/incidents/not-an-id", "dpo").await;
    assert_problem(&r, 404);

    let id = open_incident(app, base.clone()).await;
    for (body, field) in [
        (
            json!({"user": "sales-user", "from": "2025-01-01T00:00:00Z", "to": "2026-06-01T00:00:00Z"}),
            "to",
        ),
        (
            json!({"user": "sales-user", "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}),
            "to",
        ),
        (json!({"user": "nobody-here", "from": "2026-01-01T00:00:00Z"}), "user"),
        (json!({"from": "2026-01-01T00:00:00Z"}), "user"),
        (json!({"user": "sales-user"}), "from"),
    ] {
        let r = app.post(&format!("/api/v1/incidents/{id}/scope"), "dpo", body).await;
        assert_problem(&r, 422);
        assert_eq!(error_fields(&r), [field], "{}", r.text);
    }
    let r = patch(app, &format!("/api/v1/incidents/{id}"), json!({"status": "notified"})).await;
    assert_problem(&r, 422);
    let r = patch(app, &format!("/api/v1/incidents/{id}"), json!({"status": "contained"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = patch(app, &format!("/api/v1/incidents/{id}"), json!({"status": "open"})).await;
    assert_problem(&r, 422);
    let r = app.get(&format!("/api/v1/incidents/{id}/scope"), "dpo").await;
    assert_problem(&r, 404);
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/notify-subjects"),
            "dpo",
            json!({"what_happened": "x"}),
        )
        .await;
    // Notices before a scope: a conflict with the incident's state.
    assert_problem(&r, 409);
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/containment"),
            "dpo",
            json!({"action": "explode"}),
        )
        .await;
    assert_problem(&r, 422);
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/evidence"),
            "dpo",
            json!({"name": "screenshot.png", "media_type": "image/png", "content_base64": "aGVsbG8gd29ybGQ="}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        r.body["sha256"],
        "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
    );
    let eid = r.body["id"].as_str().unwrap();
    let r = app
        .get(&format!("/api/v1/incidents/{id}/evidence/{eid}"), "auditor")
        .await;
    assert_eq!(r.body["content_base64"], "aGVsbG8gd29ybGQ=");
    let r = app
        .post(
            &format!("/api/v1/incidents/{id}/evidence"),
            "dpo",
            json!({"name": "x", "content_base64": "%%%"}),
        )
        .await;
    assert_problem(&r, 422);
}
