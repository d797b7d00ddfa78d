//! Retention schedules enforced on contacts, with time driven as an input
//! (no sleeps): each rule kind and edge — erase with a proof, review only,
//! a hold blocks, a legal-obligation purpose narrows, a later interaction
//! extends, a dry run changes nothing, a bounded batch resumes.

use chrono::{Duration, Utc};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{assert_problem, spawn_app_with_inventory, Backend, TestApp};

const SCHEDULES: &str = r#"
[purposes.invoicing]
description = "Invoices kept for tax law"
lawful_basis = "legal_obligation"
collection = true
[purposes.invoicing.needs]
contact = ["given_name", "family_name"]

[[retention]]
name = "sales-contacts"
record = "contact"
purpose = "sales"
days = 100
from = "last_interaction"
action = "erase"
keep_proof = true

[[retention]]
name = "support-review"
record = "contact"
purpose = "customer_service"
days = 50
from = "created"
action = "review"

[[retention]]
name = "sent-mail"
record = "outbox_mail"
days = 30
from = "created"
action = "erase"

[[retention]]
name = "tax"
record = "contact"
purpose = "invoicing"
days = 3650
from = "created"
action = "erase"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_schedules_are_enforced() {
    let app = spawn_app_with_inventory(Backend::Sqlite, Some(SCHEDULES))
        .await
        .unwrap();
    schedules_are_enforced(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_schedules_are_enforced() {
    let Some(app) = spawn_app_with_inventory(Backend::Postgres, Some(SCHEDULES)).await else {
        eprintln!("skipped: STEWARD_TEST_DATABASE_URL is not set");
        return;
    };
    schedules_are_enforced(&app).await;
    app.stop().await;
}

async fn contact(app: &TestApp, name: &str, purposes: &[&str]) -> String {
    app.create_contact(
        "sales",
        json!({"given_name": name, "family_name": "Retained", "email": format!("{name}@retention.example.org"),
               "purposes": purposes}),
    )
    .await
}

async fn schedules_are_enforced(app: &TestApp) {
    let t0 = Utc::now();
    let a = contact(app, "alma", &["sales"]).await;
    let b = contact(app, "bert", &["sales"]).await;
    let c = contact(app, "cleo", &["sales"]).await;
    let d = contact(app, "dora", &["sales", "invoicing"]).await;
    let e = contact(app, "emil", &["customer_service"]).await;
    // A meeting planned in 40 days extends Bert's period.
    let r = app
        .post(
            &format!("/api/v1/contacts/{b}/interactions"),
            "sales",
            json!({"kind": "meeting", "summary": "renewal", "occurred_at": (t0 + Duration::days(40)).to_rfc3339()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Cleo is under a legal hold.
    let r = app
        .post(
            &format!("/api/v1/contacts/{c}/legal-holds"),
            "dpo",
            json!({"reason": "litigation"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let hold = r.body["id"].as_str().unwrap().to_string();

    let svc = &app.service;
    // Nothing is due today.
    let now = svc.retention_run(Utc::now(), false, 100).await.unwrap();
    assert_eq!((now.erased, now.narrowed, now.review, now.held), (0, 0, 0, 0));

    // The preview for the next 101 days, by rule.
    let preview = svc.retention_preview(Utc::now(), 101).await.unwrap();
    let count = |rule: &str, action: &str| {
        preview
            .iter()
            .find(|c| c.rule == rule && c.action == action)
            .map_or(0, |c| c.count)
    };
    assert_eq!(count("sales-contacts", "erase"), 2, "{preview:?}"); // Alma and Cleo (held, but due)
    assert_eq!(count("sales-contacts", "narrow"), 1, "{preview:?}"); // Dora
    assert_eq!(count("support-review", "review"), 1, "{preview:?}"); // Emil
    assert!(svc.retention_preview(Utc::now(), 100_000).await.is_err());

    let day101 = t0 + Duration::days(101);
    // A dry run reports and changes nothing.
    let dry = svc.retention_run(day101, true, 100).await.unwrap();
    assert_eq!(
        (dry.erased, dry.narrowed, dry.review, dry.held),
        (1, 1, 1, 1),
        "{dry:?}"
    );
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{a}"), "sales").await.status,
        StatusCode::OK
    );
    let audit_before = app.audit_rows().await.len();

    // A bounded batch: one contact now, the rest on the next run.
    let first = svc.retention_run(day101, false, 1).await.unwrap();
    assert_eq!(first.erased + first.narrowed, 1, "{first:?}");
    assert_eq!(first.remaining, 1, "{first:?}");
    let second = svc.retention_run(day101, false, 100).await.unwrap();
    assert_eq!(second.erased + second.narrowed, 1, "{second:?}");
    assert_eq!((second.held, second.review, second.remaining), (1, 1, 0), "{second:?}");
    // Run again: nothing more happens.
    let again = svc.retention_run(day101, false, 100).await.unwrap();
    assert_eq!((again.erased, again.narrowed), (0, 0), "{again:?}");

    // Alma is gone, with a proof of erasure: she is not re-created silently.
    assert_problem(&app.get(&format!("/api/v1/contacts/{a}"), "sales").await, 404);
    let r = app
        .post(
            "/api/v1/contacts",
            "sales",
            json!({"given_name": "Alma", "email": "alma@retention.example.org"}),
        )
        .await;
    assert_problem(&r, 409);
    // Dora keeps only what tax law needs, restricted.
    let r = app.get(&format!("/api/v1/contacts/{d}"), "dpo").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["given_name"], "dora");
    assert!(r.body.get("email").is_none_or(serde_json::Value::is_null), "{}", r.text);
    assert_eq!(r.body["purposes"], json!(["invoicing"]));
    // Bert (extended), Cleo (held) and Emil (review) stay.
    for id in [&b, &c] {
        assert_eq!(
            app.get(&format!("/api/v1/contacts/{id}"), "sales").await.status,
            StatusCode::OK
        );
    }
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{e}"), "support").await.status,
        StatusCode::OK
    );
    let review = svc.retention_review_list(day101).await.unwrap();
    assert_eq!(review.len(), 1);
    assert_eq!(review[0].subject_id.unwrap().to_string(), e);
    assert_eq!(review[0].record, "contact");

    // Every deletion is audited, pseudonymously, with its rule.
    let rows = app.audit_rows().await;
    let new: Vec<_> = rows[audit_before..].iter().collect();
    let erase = new
        .iter()
        .find(|r| r.action == "retention.erase")
        .expect("erase audited");
    assert_eq!(erase.subject.unwrap().to_string(), a);
    let text = String::from_utf8_lossy(&erase.entry);
    assert!(
        text.contains("retention rule sales-contacts") && text.contains("\"kind\":\"system\""),
        "{text}"
    );
    assert!(new.iter().any(|r| r.action == "retention.narrow"));
    for r in &new {
        assert!(!String::from_utf8_lossy(&r.entry).contains("retention.example.org"));
    }

    // Bert's period ends 100 days after his meeting.
    let later = svc.retention_run(t0 + Duration::days(141), false, 100).await.unwrap();
    assert_eq!(later.erased, 1, "{later:?}");
    assert_problem(&app.get(&format!("/api/v1/contacts/{b}"), "sales").await, 404);

    // Released, Cleo goes at the next run.
    let r = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/contacts/{c}/legal-holds/{hold}"),
            Some("dpo"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let released = svc.retention_run(t0 + Duration::days(141), false, 100).await.unwrap();
    assert_eq!((released.erased, released.held), (1, 0), "{released:?}");

    // After ten years Dora's tax records go too.
    let tax = svc.retention_run(t0 + Duration::days(3651), false, 100).await.unwrap();
    assert_eq!(tax.erased, 1, "{tax:?}");
    assert_problem(&app.get(&format!("/api/v1/contacts/{d}"), "dpo").await, 404);
    assert!(svc.verify_audit_log().await.is_ok());

    // The same over the API, for the privacy officer only.
    let r = app.get("/api/v1/retention/preview?days=60", "dpo").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["rule"] == "support-review" && i["action"] == "review" && i["count"] == 1));
    assert_problem(&app.get("/api/v1/retention/preview", "sales").await, 403);
    assert_problem(&app.get("/api/v1/retention/preview", "auditor").await, 403);
    assert_problem(&app.get("/api/v1/retention/preview?days=100000", "dpo").await, 422);
    let r = app.post("/api/v1/retention/run", "dpo", json!({"dry_run": true})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["dry_run"], true);
    assert_eq!(r.body["erased"], 0, "nothing is due today: {}", r.text);
    assert_problem(&app.post("/api/v1/retention/run", "support", json!({})).await, 403);
    let r = app.get("/api/v1/retention/review", "dpo").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["items"], json!([]), "Emil's review is not due today");

    // Sent mail goes 30 days after it was queued; unsent mail stays.
    for email in ["first@retention.example.org", "second@retention.example.org"] {
        let r = app
            .call(
                reqwest::Method::POST,
                "/api/v1/public/dsr",
                None,
                None,
                Some(json!({"kind": "access", "regime": "gdpr", "email": email})),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    }
    let mail = svc.outbox(false).await.unwrap();
    let sent = mail.iter().find(|m| m.message.to.starts_with("first@")).unwrap().id;
    let unsent = mail.iter().find(|m| m.message.to.starts_with("second@")).unwrap().id;
    svc.mark_sent(sent).await.unwrap();
    let preview = svc.retention_preview(Utc::now(), 31).await.unwrap();
    let p = preview.iter().find(|c| c.rule == "sent-mail").unwrap();
    assert_eq!((p.count, p.enforced), (1, true), "{preview:?}");
    let early = svc
        .retention_run(Utc::now() + Duration::days(29), false, 100)
        .await
        .unwrap();
    assert_eq!(early.outbox_purged, 0);
    let month = svc
        .retention_run(Utc::now() + Duration::days(31), false, 100)
        .await
        .unwrap();
    assert_eq!(month.outbox_purged, 1, "{month:?}");
    let left: Vec<_> = svc.outbox(false).await.unwrap().iter().map(|m| m.id).collect();
    assert!(!left.contains(&sent) && left.contains(&unsent), "{left:?}");
    assert!(app
        .audit_rows()
        .await
        .iter()
        .any(|r| r.action == "retention.purge_outbox"));
}

const RECORD_SCHEDULES: &str = r#"
[[retention]]
name = "leads"
record = "contact"
purpose = "sales"
days = 90
from = "created"
action = "anonymise"

[[retention]]
name = "calls"
record = "interaction"
days = 30
from = "created"
action = "anonymise"

[[retention]]
name = "closed-deals"
record = "deal"
days = 60
from = "deal_closed"
action = "anonymise"

[[retention]]
name = "withdrawn-consent"
record = "consent_record"
purpose = "marketing_email"
days = 20
from = "consent_withdrawn"
action = "erase"

[[retention]]
name = "closed-requests"
record = "dsr_case"
days = 40
from = "request_closed"
action = "erase"

[[retention]]
name = "bundles"
record = "export_bundle"
days = 10
from = "created"
action = "erase"

[[retention]]
name = "incidents"
record = "incident"
days = 50
from = "request_closed"
action = "review"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_record_schedules_are_enforced() {
    let app = spawn_app_with_inventory(Backend::Sqlite, Some(RECORD_SCHEDULES))
        .await
        .unwrap();
    record_schedules_are_enforced(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_record_schedules_are_enforced() {
    let Some(app) = spawn_app_with_inventory(Backend::Postgres, Some(RECORD_SCHEDULES)).await else {
        eprintln!("skipped: STEWARD_TEST_DATABASE_URL is not set");
        return;
    };
    record_schedules_are_enforced(&app).await;
    app.stop().await;
}

/// Interactions, deals, consent records, closed requests, export bundles
/// and incidents by their own rules; anonymisation keeps counts linked to
/// no one; the report lists per rule what each run did.
async fn record_schedules_are_enforced(app: &TestApp) {
    let t0 = Utc::now();
    let svc = &app.service;
    let lena = app
        .create_contact(
            "sales",
            json!({"given_name": "Lena", "email": "lena@records.example.org", "country": "DE",
                   "purposes": ["sales", "marketing_email"]}),
        )
        .await;
    let r = app
        .post(
            &format!("/api/v1/contacts/{lena}/interactions"),
            "sales",
            json!({"kind": "call", "summary": "asked about prices", "occurred_at": t0.to_rfc3339()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .post(
            "/api/v1/deals",
            "sales",
            json!({"title": "Pilot", "stage": "won", "amount": "1200.00", "currency": "EUR", "contact_id": lena}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let deal = r.body["id"].as_str().unwrap().to_string();
    for granted in [true, false] {
        let r = app
            .post(
                &format!("/api/v1/contacts/{lena}/consents"),
                "marketing",
                json!({"purpose": "marketing_email", "granted": granted, "source": "phone"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    }
    // An access request fulfilled today (with its export bundle).
    let r = app
        .post(
            "/api/v1/dsr",
            "dpo",
            json!({"kind": "access", "regime": "gdpr", "subject": {"email": "lena@records.example.org"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let request = r.body["id"].as_str().unwrap().to_string();
    for (step, body) in [("verify", json!({"method": "signed letter"})), ("fulfill", json!({}))] {
        let r = app.post(&format!("/api/v1/dsr/{request}/{step}"), "dpo", body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    // A closed incident.
    let r = app
        .post(
            "/api/v1/incidents",
            "dpo",
            json!({"title": "Misdirected mail", "description": "One letter.", "category": "confidentiality",
                   "source": "other", "aware_at": t0.to_rfc3339()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let incident = r.body["id"].as_str().unwrap().to_string();
    let r = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/incidents/{incident}"),
            Some("dpo"),
            None,
            Some(json!({"status": "closed"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let count = |items: &[steward_service::retention::RuleCount], rule: &str| {
        items.iter().find(|c| c.rule == rule).map_or(0, |c| c.count)
    };
    let preview = svc.retention_preview(t0, 45).await.unwrap();
    for (rule, n) in [
        ("calls", 1),
        ("withdrawn-consent", 2),
        ("closed-requests", 1),
        ("bundles", 1),
        ("closed-deals", 0),
        ("incidents", 0),
        ("leads", 0),
    ] {
        assert_eq!(count(&preview, rule), n, "{rule}: {preview:?}");
    }
    assert!(preview.iter().all(|c| c.enforced), "{preview:?}");

    // Day 11: the export bundle goes; the request stays.
    let d11 = svc.retention_run(t0 + Duration::days(11), false, 100).await.unwrap();
    assert_eq!(d11.records.get("export_bundle"), Some(&1), "{d11:?}");
    let r = app.get(&format!("/api/v1/dsr/{request}"), "dpo").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_problem(&app.get(&format!("/api/v1/dsr/{request}/export"), "dpo").await, 410);

    // Day 31: the call is counted by kind and month, then deleted; the
    // withdrawn consent's records go (the contact stays, still without it).
    let d31 = svc.retention_run(t0 + Duration::days(31), false, 100).await.unwrap();
    assert_eq!(d31.records.get("interaction"), Some(&1), "{d31:?}");
    assert_eq!(d31.records.get("consent_record"), Some(&2), "{d31:?}");
    let r = app.get(&format!("/api/v1/contacts/{lena}/interactions"), "sales").await;
    assert_eq!(r.body["items"], json!([]), "{}", r.text);
    let r = app.get(&format!("/api/v1/contacts/{lena}/consents"), "dpo").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["items"], json!([]), "{}", r.text);
    assert_problem(&app.get(&format!("/api/v1/contacts/{lena}"), "marketing").await, 403);

    // Day 41: the closed request goes. Day 51: the incident is listed for review.
    let d41 = svc.retention_run(t0 + Duration::days(41), false, 100).await.unwrap();
    assert_eq!(d41.records.get("dsr_case"), Some(&1), "{d41:?}");
    assert_problem(&app.get(&format!("/api/v1/dsr/{request}"), "dpo").await, 404);
    let review = svc.retention_review_list(t0 + Duration::days(51)).await.unwrap();
    assert_eq!(review.len(), 1, "{review:?}");
    assert_eq!(
        (review[0].record, review[0].id.to_string()),
        ("incident", incident.clone())
    );
    let d51 = svc.retention_run(t0 + Duration::days(51), false, 100).await.unwrap();
    assert_eq!(d51.review, 1, "{d51:?}");
    assert_eq!(
        app.get(&format!("/api/v1/incidents/{incident}"), "dpo").await.status,
        StatusCode::OK
    );

    // Day 61: the won deal loses its contact link, keeps its amount.
    let d61 = svc.retention_run(t0 + Duration::days(61), false, 100).await.unwrap();
    assert_eq!(d61.records.get("deal"), Some(&1), "{d61:?}");
    let r = app.get(&format!("/api/v1/deals/{deal}"), "sales").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["contact_id"].is_null(), "{}", r.text);
    assert_eq!(r.body["amount"], json!(1200), "the amount stays");

    // Day 91: Lena is anonymised: gone, her country counted.
    let d91 = svc.retention_run(t0 + Duration::days(91), false, 100).await.unwrap();
    assert_eq!(d91.anonymised, 1, "{d91:?}");
    assert_problem(&app.get(&format!("/api/v1/contacts/{lena}"), "sales").await, 404);

    // The report: per run and rule, totals, and the aggregates kept.
    let history = svc.retention_history(t0 - Duration::days(1)).await.unwrap();
    let total = |rule: &str, action: &str| {
        history
            .totals
            .iter()
            .find(|c| c.rule == rule && c.action == action)
            .map_or(0, |c| c.count)
    };
    assert_eq!(total("bundles", "erase"), 1, "{history:?}");
    assert_eq!(total("calls", "anonymise"), 1);
    assert_eq!(total("withdrawn-consent", "erase"), 2);
    assert_eq!(total("closed-requests", "erase"), 1);
    assert_eq!(total("closed-deals", "anonymise"), 1);
    assert_eq!(total("leads", "anonymise"), 1);
    assert_eq!(history.runs.len(), 6, "{history:?}");
    let month = t0.format("%Y-%m").to_string();
    let agg: Vec<(String, String, String, u64)> = history
        .aggregates
        .iter()
        .map(|a| (a.record.clone(), a.attribute.clone(), a.value.clone(), a.count))
        .collect();
    assert!(
        agg.contains(&("interaction".into(), "kind".into(), "call".into(), 1)),
        "{agg:?}"
    );
    assert!(
        agg.contains(&("contact".into(), "country".into(), "DE".into(), 1)),
        "{agg:?}"
    );
    assert!(history
        .aggregates
        .iter()
        .any(|a| a.record == "interaction" && a.period == month));

    // Every deletion is audited by the system with its rule, naming no one.
    let rows = app.audit_rows().await;
    for action in [
        "retention.erase_export_bundle",
        "retention.anonymise_interaction",
        "retention.erase_consent_record",
        "retention.erase_dsr_case",
        "retention.anonymise_deal",
        "retention.anonymise",
    ] {
        let row = rows
            .iter()
            .find(|r| r.action == action)
            .unwrap_or_else(|| panic!("{action} audited"));
        let text = String::from_utf8_lossy(&row.entry);
        assert!(
            text.contains("retention rule") && text.contains("\"kind\":\"system\""),
            "{text}"
        );
    }
    for r in &rows {
        let text = String::from_utf8_lossy(&r.entry);
        assert!(
            !text.contains("records.example.org") && !text.contains("Lena"),
            "{text}"
        );
    }
    assert!(svc.verify_audit_log().await.is_ok());

    // Over the API, for the privacy officer only.
    let since = (t0 - Duration::days(1)).format("%Y-%m-%d").to_string();
    let r = app.get(&format!("/api/v1/retention/report?since={since}"), "dpo").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.body["totals"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["rule"] == "leads" && t["count"] == 1));
    assert!(r.body["aggregates"].as_array().unwrap().len() >= 2, "{}", r.text);
    assert_problem(&app.get("/api/v1/retention/report", "sales").await, 403);
    assert_problem(&app.get("/api/v1/retention/report?since=yesterday", "dpo").await, 400);
}

const AUDIT_SCHEDULE: &str = r#"
[[retention]]
name = "client-addresses"
record = "audit_metadata"
days = 30
from = "created"
action = "anonymise"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_audit_addresses_are_anonymised() {
    let app = spawn_app_with_inventory(Backend::Sqlite, Some(AUDIT_SCHEDULE))
        .await
        .unwrap();
    audit_addresses_are_anonymised(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_audit_addresses_are_anonymised() {
    let Some(app) = spawn_app_with_inventory(Backend::Postgres, Some(AUDIT_SCHEDULE)).await else {
        eprintln!("skipped: STEWARD_TEST_DATABASE_URL is not set");
        return;
    };
    audit_addresses_are_anonymised(&app).await;
    app.stop().await;
}

/// Client addresses in the audit log are sealed per month; an
/// `audit_metadata` rule ratchets the key past the months it covers: their
/// addresses can neither be opened nor matched by a breach scope any more,
/// and the log (hash tree) is untouched and verifies.
async fn audit_addresses_are_anonymised(app: &TestApp) {
    let svc = &app.service;
    let id = contact(app, "ines", &["sales"]).await;
    let url = format!("/api/v1/audit?subject_id={id}&limit=50");
    let r = app.get(&url, "auditor").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let create = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entry"]["action"] == "contact.create")
        .unwrap()
        .clone();
    assert_eq!(create["client_address"], "127.0.0.1", "{create}");
    let sealed = create["entry"]["client"].as_str().unwrap().to_string();
    assert!(sealed.starts_with("c1:"), "{sealed}");
    for r in app.audit_rows().await {
        assert!(!String::from_utf8_lossy(&r.entry).contains("127.0.0.1"));
    }

    let preview = svc.retention_preview(Utc::now(), 70).await.unwrap();
    let p = preview.iter().find(|c| c.rule == "client-addresses").unwrap();
    assert!(p.count >= 1 && p.enforced, "{preview:?}");
    // Nothing is due yet: the addresses stay readable.
    let now = svc.retention_run(Utc::now(), false, 100).await.unwrap();
    assert!(!now.records.contains_key("audit_metadata"), "{now:?}");
    assert_eq!(
        app.get(&url, "auditor").await.body["items"][0]["client_address"],
        "127.0.0.1"
    );

    // Two months and more later, this month's addresses are anonymised.
    let later = svc
        .retention_run(Utc::now() + Duration::days(70), false, 100)
        .await
        .unwrap();
    assert!(
        later.records.get("audit_metadata").copied().unwrap_or(0) >= 1,
        "{later:?}"
    );
    let r = app.get(&url, "auditor").await;
    let create_after = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entry"]["action"] == "contact.create")
        .unwrap();
    assert!(create_after["client_address"].is_null(), "{create_after}");
    assert_eq!(
        create_after["entry"]["client"],
        sealed.as_str(),
        "the entry itself is unchanged"
    );
    assert!(svc.verify_audit_log().await.is_ok());
    assert!(app
        .audit_rows()
        .await
        .iter()
        .any(|r| r.action == "retention.anonymise_audit_metadata"));
    // Running again changes nothing more.
    let again = svc
        .retention_run(Utc::now() + Duration::days(70), false, 100)
        .await
        .unwrap();
    assert!(!again.records.contains_key("audit_metadata"), "{again:?}");
}
